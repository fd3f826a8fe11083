"""The one exception family of imagespec.

Core code raises these and never exits; the CLI turns them into one line per
problem and an exit code.  A user mistake never becomes a traceback.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True, order=True)
class Pos:
    """A place in a site file: path relative to the site root, 1-based line and column."""

    path: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.col}"
        return self.path


@dataclass(frozen=True)
class Problem:
    """One finding of validation: an error, or a warning that --strict turns into one."""

    pos: Pos
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        tag = "warning: " if self.severity == "warning" else ""
        return visible(f"{self.pos}: {tag}{self.message}")


class ImagespecError(Exception):
    """Base of every error imagespec reports to the user."""

    exit_code = 1

    def lines(self) -> list[str]:
        """The message as the lines the CLI prints."""
        return [visible(line) for line in str(self).splitlines() or [""]]


class ConfigError(ImagespecError):
    """The site's files are wrong; carries every problem found, not only the first."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.pos, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class UsageError(ImagespecError):
    """The command line asks for something that does not exist or does not fit."""


class GitError(ImagespecError):
    """A git repository or revision could not be read."""


def visible(text: str) -> str:
    """text with control and invisible characters escaped (\\x1b, \\u202e).

    Messages quote values from the repository; printed raw, an escape sequence
    would rewrite the admin's terminal or a CI log.
    """
    if all(unicodedata.category(c) not in ("Cc", "Cf") for c in text):
        return text
    return "".join(
        c if unicodedata.category(c) not in ("Cc", "Cf") else f"\\u{ord(c):04x}" for c in text
    )


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return "; did you mean 'x'?" for the nearest known name, or ''."""
    close = difflib.get_close_matches(name, sorted(set(choices)), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def choice_list(choices: Iterable[str]) -> str:
    """Render known names for an error message."""
    names = sorted(set(choices))
    return ", ".join(names) if names else "(none)"


def first_line(text: Optional[str]) -> str:
    """The first line of an error text from a library, for one-line messages."""
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""
