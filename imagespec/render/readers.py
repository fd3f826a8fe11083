"""Read the rendered xCAT list files the way xCAT's own build tools read them.

The native builder consumes the very files an xCAT director would (pkglist,
otherpkglist, exlist, synclist, litefile, the postinstall attribute), so an image built
either way gets the same input.  Pure functions: text in, values out.
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
from dataclasses import dataclass, field
from typing import Optional

NEW_INSTALL_LIST = "#NEW_INSTALL_LIST#"
CLAUSE_HEADERS = ("EXECUTE:", "EXECUTEALWAYS:", "APPEND:", "MERGE:")
# imgutils.pm get_package_names (line 174): `#ENV:NAME=value#` at the start of an
# entry sets NAME for the transactions of its own #NEW_INSTALL_LIST# section.
ENV_DIRECTIVE = re.compile(r"^#ENV:([^#^\n]+)#")
# rh/genimage el_major_version (lines 95-105): the osvers names genimage treats as EL.
EL_OSVERS = re.compile(r"^(?:rhels?|centos|rocky|alma(?:linux)?|ol)\D*(\d+)")


@dataclass
class Section:
    """One #NEW_INSTALL_LIST# section of a list file: its entries and its #ENV: pairs."""

    entries: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)


@dataclass
class PkgPass:
    """One install transaction of a base pkglist."""

    names: list[str]
    env: list[str] = field(default_factory=list)  # NAME=value from #ENV: directives


@dataclass
class OtherPass:
    """One #NEW_INSTALL_LIST# section of an otherpkglist."""

    pre_remove: list[str] = field(default_factory=list)  # -name: erased before install
    install: dict[str, list[str]] = field(default_factory=dict)  # repo subdir -> names
    post_remove: list[str] = field(default_factory=list)  # --name: erased after install
    env: list[str] = field(default_factory=list)  # NAME=value from #ENV: directives

    @property
    def empty(self) -> bool:
        return not (self.pre_remove or self.install or self.post_remove)


def _sections(text: str) -> list[Section]:
    """Entries per install section: comments and blanks dropped, commas split (imgutils)."""
    sections = [Section()]
    for line in text.splitlines():
        if line.startswith(NEW_INSTALL_LIST):
            sections.append(Section())
            continue
        env = ENV_DIRECTIVE.match(line)
        if env:
            sections[-1].env.append(env.group(1))
            continue
        if line.startswith("#") or not line.strip():
            continue  # comments and other directives
        sections[-1].entries += [part.strip() for part in line.split(",") if part.strip()]
    return [s for s in sections if s.entries]


def pkglist_passes(text: str) -> list[PkgPass]:
    """Install transactions of a base pkglist, each with its #ENV: pairs.

    Directory parts are dropped and -/-- entries are ignored, as rh genimage
    does for the base list (erasing only works in the otherpkglist).
    """
    passes = []
    for section in _sections(text):
        entries = section.entries
        names = [posixpath.basename(e) if not e.startswith("@") else e for e in entries]
        names = [n for n in names if n and not n.startswith("-")]
        if names:
            passes.append(PkgPass(names, list(section.env)))
    return passes


def parse_pkglist(text: str) -> list[list[str]]:
    """The package names of each install transaction of a base pkglist."""
    return [p.names for p in pkglist_passes(text)]


def parse_otherpkglist(text: str) -> list[OtherPass]:
    """Transactions of an otherpkglist: `dir/name` installs name from <otherpkgdir>/dir."""
    passes = []
    for section in _sections(text):
        current = OtherPass(env=list(section.env))
        for entry in section.entries:
            if entry.startswith("--"):
                current.post_remove.append(posixpath.basename(entry[2:]))
            elif entry.startswith("-"):
                current.pre_remove.append(posixpath.basename(entry[1:]))
            else:
                subdir, name = posixpath.split(entry)
                current.install.setdefault(subdir, []).append(name)
        if not current.empty:
            passes.append(current)
    return passes


def parse_exlist(text: str) -> tuple[list[str], list[str]]:
    """(exclude globs, re-include globs); inline `#` comments are stripped (packimage)."""
    excludes: list[str] = []
    includes: list[str] = []
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("+"):
            includes.append(line[1:].strip())
        else:
            excludes.append(line)
    return excludes, includes


@dataclass(frozen=True)
class SyncCopy:
    sources: tuple[str, ...]
    dest: str

    @property
    def dest_is_dir(self) -> bool:
        return self.dest.endswith("/") or len(self.sources) > 1


def parse_synclist_for_pack(text: str) -> list[SyncCopy]:
    """The entries packimage copies into the root: plain ones, before the first clause.

    Entries limited to a noderange are skipped (they only apply at boot).
    """
    copies = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in CLAUSE_HEADERS:
            break
        if line.startswith("#") or not stripped or "->" not in stripped:
            continue
        left, right = stripped.split("->", 1)
        if right.strip().startswith("("):
            continue
        dest = re.sub(r"[\s;]", "", right)
        sources = tuple(left.split())
        if sources and dest:
            copies.append(SyncCopy(sources, dest))
    return copies


@dataclass(frozen=True)
class SyncLine:
    """One meaningful line of a synclist, read as xdcp -F and syncfiles read it.

    clause is "" for a plain `src... -> [(noderange)] dest` entry, else the
    header (without ':') of the section the line is in; EXECUTE and
    EXECUTEALWAYS lines name one script (sources) and no dest.
    """

    sources: tuple[str, ...]
    dest: str
    clause: str = ""
    nodes: Optional[str] = None


def parse_synclist(text: str) -> list[SyncLine]:
    """Every entry of a synclist, plain and in clause sections (perl-xCAT/xCAT/DSHCLI.pm).

    Comments start at column 0 (parse_rsync_input_file skips lines matching /^\\s*#/
    only as whole lines); white space and ';' are removed from the destination; a
    clause header captures every later line until the next header.
    """
    out: list[SyncLine] = []
    clause = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped in CLAUSE_HEADERS:
            clause = stripped[:-1]
            continue
        if clause in ("EXECUTE", "EXECUTEALWAYS"):
            out.append(SyncLine((stripped,), "", clause))
            continue
        if "->" not in stripped:
            continue
        left, right = stripped.split("->", 1)
        nodes = None
        right = right.strip()
        if right.startswith("("):
            close = right.find(")")
            nodes = right[1:close].strip() if close > 0 else None
            right = right[close + 1 :] if close > 0 else right
        dest = re.sub(r"[\s;]", "", right)
        sources = tuple(left.split())
        if sources and dest:
            out.append(SyncLine(sources, dest, clause, nodes))
    return out


def parse_litefile(text: str) -> list[tuple[str, str]]:
    """(file, options) rows of a `tabdump litefile` CSV (header and comments skipped)."""
    rows = []
    for record in csv.reader(io.StringIO(text)):
        if not record or record[0].startswith("#") or len(record) < 2:
            continue
        options = record[2] if len(record) > 2 else ""
        rows.append((record[1], options))
    return sorted(rows)


def parse_postinstall(attribute: str) -> list[tuple[str, list[str]]]:
    """`path args,path args` -> [(path, [args])], in order."""
    scripts = []
    for item in attribute.split(","):
        words = item.split()
        if words:
            scripts.append((words[0], words[1:]))
    return scripts


def releasever(osvers: str) -> str:
    """dnf's $releasever from an xCAT osvers: the major version (rocky8 -> 8, rhels8.6.0 -> 8)."""
    match = re.search(r"(\d+)", osvers)
    return match.group(1) if match else osvers


def parse_environvar(value: str) -> list[tuple[str, str]]:
    """The osimage's environvar as (name, value) pairs, read the way rh/genimage does.

    genimage (lines 438-442) splits on ',' and then on '=', keeping the first
    two fields, both trimmed: `A=b=c` sets A to `b`.  Entries without a name
    are skipped.
    """
    pairs = []
    for entry in value.split(","):
        fields = entry.split("=")
        name = fields[0].strip()
        if name:
            pairs.append((name, fields[1].strip() if len(fields) > 1 else ""))
    return pairs


def el_major(osvers: str) -> Optional[int]:
    """The EL major release of an osvers genimage treats as EL (rocky8 -> 8), else None."""
    match = EL_OSVERS.match(osvers)
    return int(match.group(1)) if match else None
