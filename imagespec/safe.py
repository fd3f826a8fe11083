"""What a value from the repository may look like before it becomes a path, a word or a line.

Repository content is untrusted (pull requests from forks run in CI) and
imagespec runs as root on the director, where xCAT passes many values to a
shell unquoted.  Each predicate here answers one question about one kind of
value; validate.py turns a "no" into a message saying why, and the builders
call `inside` once more before they touch a path (defence in depth).

Pure: no filesystem access.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from typing import Optional

# A name that becomes one path segment and an xCAT object name: no '/', no
# leading '.' or '-', nothing a shell or a stanza reads specially.
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
# An image or profile name: xCAT's object names (mkdef refuses others), stricter than NAME_RE.
OBJECT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# A boot variant's name, the tail of its osimage `<image>-<variant>`: lowercase words
# joined by '-', so the full name stays an object name and reads as one.
VARIANT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# One segment of a file path from the repository (sync sources may be dot files).
SEGMENT_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.+@=:,~%-]*$")
# One segment of a file on the director that a `from: director` sync entry names: no ','
# (xCAT splits lists on it), ';' (stripped from synclist lines), '#', parentheses (a
# noderange), '$' (xCAT substitutes $VAR in synclist lines, DSHCLI.pm:5004), no '-' first.
DIRECTOR_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_.+@=:~%][A-Za-z0-9_.+@=:~%-]*$")
# A word xCAT may put unquoted into a shell command line (rh/genimage builds
# `system("$envlist $yumcmd install $pkgnames")`; packimage.pm builds its
# find command as one string): no whitespace, quotes, $, `, ;, |, &, <, >,
# parentheses, globs, backslashes or '#'.
SHELL_WORD_RE = re.compile(r"^[A-Za-z0-9_.,:/=@%+~-]+$")
# A package name as pkglist/otherpkglist take it: a name, optionally with
# version-release, epoch (':'), '~' or '^' (rpm's pre/post-release marks),
# or an '@group' / '@^environment'.
PACKAGE_RE = re.compile(r"^(@\^?)?[A-Za-z0-9_+][A-Za-z0-9_.+:~^-]*$")
# xCAT's own rule for pkglist ENV directives (imgutils.pm: /^#ENV:([^#^\n]+)#/,
# the list then split on ','), narrowed to a shell-safe NAME=value.
ENV_DIRECTIVE_RE = re.compile(r"^#ENV:[A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_.:/=@%+~-]*#$")
ENV_PAIR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_.:/=@%+~-]*$")
# An ssh destination: host, user@host, an ssh config alias or [IPv6].
HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9_][A-Za-z0-9_.+-]*@)?(?:[A-Za-z0-9_][A-Za-z0-9_.-]*|\[[0-9A-Fa-f:.]+\])$"
)
# Anything that starts with a URL scheme (`https://`, `file://`...): a pkgdir entry is a
# URL when it does, else a path (relative ones to the site root).
SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
# A URL a package repository may have: a known scheme and no shell or config syntax.
URL_RE = re.compile(r"^(https?|ftp|file)://[A-Za-z0-9_.,:/=@%+~-]+$")
# Characters of an exclude pattern: find(1) -path globs, wrapped in single quotes by packimage.pm.
EXCLUDE_RE = re.compile(r"^[A-Za-z0-9_.,:/=@%+~*?\[\]!^-]+$")
# A noderange (xCAT's grammar: names, ranges, groups, '^' files, ',', '@', '-').
NODERANGE_RE = re.compile(r"^[A-Za-z0-9_.,:/=@%+~\[\]^-]+$")
# A key of a director's `nodes:` map: node names, ranges and groups, comma separated;
# no regular expressions, '^file' lists or '-' exclusions (only xCAT could expand them).
NODES_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\[\]-]*(,[A-Za-z0-9][A-Za-z0-9_.\[\]-]*)*$")


def is_name(value: str) -> bool:
    """An image, profile, distro, director or site name; also osvers, osarch, family."""
    return bool(NAME_RE.match(value))


def is_rel_path(value: str) -> bool:
    """A normalised relative path whose every segment is safe (no '..', no '//', no '-x')."""
    if not value or value.startswith("/") or value.endswith("/"):
        return False
    return all(_segment_ok(part) for part in value.split("/"))


def is_abs_path(value: str, directory_ok: bool = True) -> bool:
    """A normalised absolute path of safe segments; a trailing '/' only where directory_ok."""
    if not value.startswith("/") or value == "/":
        return False
    body = value[1:]
    if body.endswith("/"):
        if not directory_ok:
            return False
        body = body[:-1]
    return is_rel_path(body)


def is_director_file(value: str) -> bool:
    """An absolute, normalised path of a file on the director (`from: director`): no '..',
    '.', '//' or trailing '/', and only letters, digits and / . _ + @ = : ~ % - (no
    whitespace, '->', ',', ';', '#', parentheses or '-' first in a segment), so that it is
    one word in a synclist line and in a shell."""
    if not value.startswith("/") or value == "/" or value.endswith("/"):
        return False
    parts = value[1:].split("/")
    return posixpath.normpath(value) == value and all(
        part not in ("", ".", "..") and DIRECTOR_SEGMENT_RE.fullmatch(part) for part in parts
    )


def _segment_ok(part: str) -> bool:
    # fullmatch: `$` would also match before a trailing newline
    return (
        part not in ("", ".", "..")
        and not part.startswith("-")
        and bool(SEGMENT_RE.fullmatch(part))
    )


def is_shell_word(value: str) -> bool:
    """A word that means the same to a shell whether quoted or not, and is no option."""
    return bool(SHELL_WORD_RE.match(value)) and not value.startswith("-")


def is_host(value: str) -> bool:
    return bool(HOST_RE.match(value))


def is_branch(value: str) -> bool:
    """A git branch name that no git command can take for an option or a range."""
    return is_rel_path(value) and ".." not in value and not value.endswith(".lock")


def is_repo_location(value: str) -> bool:
    """A pkgdir/otherpkgdir item: a URL, or a path (absolute, or relative to the site root)."""
    if "://" in value:
        return bool(URL_RE.match(value)) and ".." not in value.split("/")
    return is_abs_path(value) or is_rel_path(value.rstrip("/"))


def is_under(path: str, root: str) -> bool:
    """path is root itself or below it (both normalised absolute paths)."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def inside(root: str, path: str) -> str:
    """root joined with a path meant to stay inside it; ValueError when it would not.

    The builders call this before writing or deleting below an image root,
    even though validation already refused such paths.
    """
    joined = posixpath.normpath(posixpath.join(root, path.lstrip("/")))
    if not is_under(joined, posixpath.normpath(root)) or joined == posixpath.normpath(root):
        raise ValueError(f"'{path}' leads outside {root}")
    return joined


def unsafe_char(text: str, multiline: bool = False) -> Optional[str]:
    """The first control or invisible formatting character in text, or None.

    Control characters inject lines into the files imagespec writes (a dnf
    configuration, the stanza piped to mkdef); bidirectional and zero-width
    marks hide what a reviewer reads in a pull request.
    """
    for char in text:
        if multiline and char in "\n\t":
            continue
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            return char
    return None
