"""Postinstall dispatcher scripts: one script per profile that runs the scripts of a directory.

Many sites (the MSC guide's layout) point the osimage's postinstall attribute
at one small script per profile, `.../postinstall/<profile>`, which runs,
in name order, the executables linked into `.../postinstall/<profile>.d/`,
passing on its arguments.  imagespec wants those scripts as separate
postinstall entries, so the import expands a dispatcher it recognises, and
the fidelity proof (meaning.py) reads one the same way.

A dispatcher is recognised only in this shape (comments, blank lines, a
`#!` line and `set -e`/`set -u` lines aside; white space free):

    for s in DIR/*; do
        [ -x "$s" ] || continue
        "$s" "$@" || exit 1
    done

where DIR is an absolute path, or `$(dirname "$0")/NAME` (relative to the
dispatcher).  Anything else is an ordinary script.  The glob runs in name
order (the C locale's byte order, which is what root's cron and xCAT's
genimage environment use), and skips names starting with `.`; `-x` follows
symlinks.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Optional

from .files import DirectorFiles, normal

_LOOP = re.compile(
    r"^for (?P<var>[A-Za-z_][A-Za-z0-9_]*) in (?P<dir>[^;*]+?)/\*; ?do "
    r"\[ -x \"\$(?P=var)\" \] \|\| continue; "
    r"\"\$(?P=var)\" \"\$@\" \|\| exit(?: 1)?;? ?done;?$"
)
_RELATIVE = re.compile(r'^"?\$\(dirname "\$0"\)"?/(?P<rest>[A-Za-z0-9_.+-]+)$')


@dataclass(frozen=True)
class Dispatched:
    """One script a dispatcher runs: its name in the directory and what it is."""

    name: str  # the entry name in the directory (it sets the order)
    path: str  # the director path of the entry
    data: Optional[bytes]  # None: not a readable executable file (a loss)
    problem: str = ""


def _normalised(text: str) -> str:
    lines = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line in ("set -e", "set -u", "set -eu"):
            continue
        lines.append(line)
    joined = "; ".join(lines)
    joined = re.sub(r"\s+", " ", joined)
    return joined.replace("; do;", "; do").replace("do; ", "do ")


def dispatcher_dir(script_path: str, data: bytes) -> Optional[str]:
    """The directory a recognised dispatcher runs, or None for an ordinary script."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    match = _LOOP.match(_normalised(text))
    if not match:
        return None
    raw = match.group("dir").strip('"')
    relative = _RELATIVE.match(match.group("dir"))
    if relative:
        return normal(posixpath.join(posixpath.dirname(script_path), relative.group("rest")))
    if raw.startswith("/") and '"' not in raw and "$" not in raw:
        return normal(raw)
    return None


def expand(files: DirectorFiles, directory: str) -> list[Dispatched]:
    """The scripts a dispatcher runs from `directory`, in the order it runs them."""
    out = []
    for name in files.listdir(directory):
        if name.startswith("."):
            continue
        path = posixpath.join(directory, name)
        if files.is_dir(path):
            out.append(Dispatched(name, path, None, "a directory (the dispatcher fails on it)"))
            continue
        mode = files.mode(path)
        data = files.read(path)
        if mode is None or data is None:
            out.append(Dispatched(name, path, None, "cannot be read (a link leaving the copy?)"))
        elif mode & 0o111:
            out.append(Dispatched(name, path, data))
    return out
