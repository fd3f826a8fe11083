"""xCAT list files (pkglist, otherpkglist, exlist) read with `#INCLUDE:` expanded.

imgutils.pm (xCAT-server/share/xcat/netboot/imgutils/imgutils.pm) reads a
list file line by line: trailing white space is cut (line 137), blank lines
and comments are dropped except the directives `#INCLUDE:`, `#NEW_INSTALL_LIST#`
and `#ENV:` (lines 138-143); includes are expanded in a loop, each relative
path resolved against the directory of the *top-level* list file, nested
ones too (lines 149-158, include_file at 92-121); a missing include becomes
`#INCLUDEBAD:` and aborts genimage.  xCAT never checks for cycles (it
loops forever); here a cycle is an error naming the chain of files.

Every line read keeps the file (and line) it came from: the factoring uses
it to turn files shared by several images into shared profiles.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Optional

from .files import DirectorFiles, normal
from .stanzas import ImportInputError

INCLUDE = re.compile(r"^\s*#INCLUDE:([^#\n]+)#\s*$")


@dataclass(frozen=True)
class Line:
    """One kept line of a list file: its text and the file (and line number) it came from."""

    text: str
    file: str  # absolute director path
    number: int
    included_from: tuple[str, ...] = ()  # the files that included it, outermost first


@dataclass
class ListRead:
    """A list file read with its includes: the lines, and the include graph it used."""

    top: str
    lines: list[Line]
    includes: dict[str, list[str]]  # file -> files it includes (in order)


def split_attribute(value: str) -> list[str]:
    """A comma-separated list attribute (pkglist, exlist, synclists ...) -> its paths."""
    return [part.strip() for part in value.split(",") if part.strip()]


def keep(line: str) -> bool:
    """Whether imgutils.pm keeps a line (comments dropped except its three directives)."""
    if not line.strip():
        return False
    stripped = line.lstrip()
    if not stripped.startswith("#"):
        return True
    return bool(
        INCLUDE.match(line)
        or stripped.startswith("#NEW_INSTALL_LIST#")
        or re.match(r"^#ENV:[^#\n]+#", stripped)
    )


def read_list(files: DirectorFiles, top: str, strip_inline_comments: bool = False) -> ListRead:
    """A list file with every `#INCLUDE:` replaced by the lines of the file it names.

    strip_inline_comments: exlists (packimage.pm) cut a `#` and what follows.
    Raises ImportInputError for a missing file or include, or an include cycle.
    """
    result = ListRead(top, [], {})
    base_dir = posixpath.dirname(top)
    _expand(files, top, base_dir, (), result, strip_inline_comments)
    return result


def _expand(
    files: DirectorFiles,
    path: str,
    base_dir: str,
    chain: tuple[str, ...],
    result: ListRead,
    strip: bool,
) -> None:
    if path in chain:
        cycle = " -> ".join([*chain[chain.index(path) :], path])
        raise ImportInputError(
            f"{chain[-1]}: include cycle {cycle}; xCAT would loop forever on it, fix the lists"
        )
    data = files.read(path)
    if data is None:
        where = f"{chain[-1]}: #INCLUDE:" if chain else "list file"
        raise ImportInputError(
            f"{where} {path} cannot be read (missing, not a regular file, or outside what"
            " can be read); genimage would fail on it too: fix the list or copy the file"
        )
    text = data.decode("utf-8", "replace")
    result.includes.setdefault(path, [])
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if strip and not line.startswith("#"):
            line = line.split("#", 1)[0].rstrip()
        if not keep(line):
            continue
        match = INCLUDE.match(line)
        if match:
            target = _include_path(match.group(1).strip(), base_dir, path, number)
            result.includes[path].append(target)
            _expand(files, target, base_dir, (*chain, path), result, strip)
            continue
        result.lines.append(Line(line, path, number, chain))


def _include_path(name: str, base_dir: str, path: str, number: int) -> str:
    if "$" in name:
        raise ImportInputError(
            f"{path}:{number}: #INCLUDE:{name}# uses an environment variable; imagespec"
            " cannot know its value at build time: write the path out"
        )
    joined = name if name.startswith("/") else posixpath.join(base_dir, name)
    norm: Optional[str] = normal(joined)
    if norm is None:
        raise ImportInputError(f"{path}:{number}: #INCLUDE:{name}# is not a usable path")
    return norm
