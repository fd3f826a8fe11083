"""Which director(s) a command acts on (SPEC §8 director choice)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..errors import UsageError, choice_list, suggest
from ..gitrepo import current_branch
from ..model import Site


def choose_directors(
    site: Site, site_root: Path, director: Optional[str] = None, branch: Optional[str] = None
) -> list[str]:
    """--director, else --branch (may be empty), else the current branch's, else the only one."""
    names = list(site.directors)
    if director is not None:
        if director not in site.directors:
            raise UsageError(
                f"unknown director '{director}'{suggest(director, names)} (directors: {choice_list(names)})"
            )
        return [director]
    if branch is not None:
        return [n for n, d in site.directors.items() if d.branch == branch]
    current = current_branch(site_root)
    following = [n for n, d in site.directors.items() if current and d.branch == current]
    if following:
        return following
    if len(names) == 1:
        return names
    where = f"the current branch '{current}' is followed by none, and " if current else ""
    raise UsageError(
        f"{where}there are several directors; choose one with --director NAME "
        f"(directors: {choice_list(names)})"
    )


def choose_one(
    site: Site, site_root: Path, director: Optional[str] = None, branch: Optional[str] = None
) -> str:
    """Exactly one director, for commands that show or render one tree."""
    chosen = choose_directors(site, site_root, director, branch)
    if len(chosen) == 1:
        return chosen[0]
    if not chosen:
        raise UsageError(
            f"no director follows branch '{branch}' (directors: {choice_list(site.directors)})"
        )
    raise UsageError(
        f"several directors match ({choice_list(chosen)}); choose one with --director NAME"
    )
