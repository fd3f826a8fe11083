"""What a built root holds: package manifests, rpm's version order, and what changed.

A manifest (`packages.json` next to a generation's `generation.json`) lists the
installed packages as name, epoch, version, release and arch, sorted.  Two
manifests compared give the packages added, removed, upgraded and downgraded,
in rpm's own order (`rpmvercmp`, a faithful port of rpm's lib/rpmvercmp.c).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cmp_to_key
from typing import Any

MANIFEST_FILE = "packages.json"
MANIFEST_FORMAT = 1
# rpm -qa --qf: one package a line, tab-separated (an unset epoch prints "(none)")
QUERY_FORMAT = "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\n"


def _alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _separator(c: str) -> bool:
    """Skipped between segments: everything but ASCII letters, digits, ~ and ^."""
    return not _alnum(c) and c not in "~^"


def rpmvercmp(a: str, b: str) -> int:
    """rpm's comparison of two version (or release) strings: 1, 0 or -1.

    Segments of ASCII digits or letters are compared one by one; other
    characters only separate them.  Numbers compare numerically and beat
    letters; `~` sorts before anything (even the end), `^` after the end but
    before anything else.
    """
    if a == b:
        return 0
    i, j = 0, 0
    while i < len(a) or j < len(b):
        while i < len(a) and _separator(a[i]):
            i += 1
        while j < len(b) and _separator(b[j]):
            j += 1
        one, two = a[i : i + 1], b[j : j + 1]
        if one == "~" or two == "~":
            if one != "~":
                return 1
            if two != "~":
                return -1
            i, j = i + 1, j + 1
            continue
        if one == "^" or two == "^":
            if not one:
                return -1
            if not two:
                return 1
            if one != "^":
                return 1
            if two != "^":
                return -1
            i, j = i + 1, j + 1
            continue
        if not (one and two):
            break
        numeric = one.isdigit()
        same_kind = _digit if numeric else _letter
        end_a, end_b = _span(a, i, same_kind), _span(b, j, same_kind)
        seg_a, seg_b = a[i:end_a], b[j:end_b]
        if not seg_b:  # different kinds: a number is newer than letters
            return 1 if numeric else -1
        if numeric:
            seg_a, seg_b = seg_a.lstrip("0"), seg_b.lstrip("0")
            if len(seg_a) != len(seg_b):
                return 1 if len(seg_a) > len(seg_b) else -1
        if seg_a != seg_b:
            return 1 if seg_a > seg_b else -1
        i, j = end_a, end_b
    if i >= len(a) and j >= len(b):
        return 0
    return -1 if i >= len(a) else 1


def _digit(c: str) -> bool:
    return c.isascii() and c.isdigit()


def _letter(c: str) -> bool:
    return c.isascii() and c.isalpha()


def _span(text: str, start: int, kind: Any) -> int:
    end = start
    while end < len(text) and kind(text[end]):
        end += 1
    return end


@dataclass(frozen=True)
class Package:
    """One installed package; epoch 0 when the package sets none (as rpm compares)."""

    name: str
    epoch: int
    version: str
    release: str
    arch: str

    @property
    def evr(self) -> str:
        """epoch:version-release, the epoch left out when 0 (as dnf prints it)."""
        prefix = f"{self.epoch}:" if self.epoch else ""
        return f"{prefix}{self.version}-{self.release}"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "epoch": self.epoch,
            "version": self.version,
            "release": self.release,
            "arch": self.arch,
        }


def compare_evr(a: Package, b: Package) -> int:
    """rpm's order of two builds of a package: epoch, then version, then release."""
    if a.epoch != b.epoch:
        return 1 if a.epoch > b.epoch else -1
    return rpmvercmp(a.version, b.version) or rpmvercmp(a.release, b.release)


def sort_packages(packages: list[Package]) -> list[Package]:
    """By name and arch, then oldest build first: the manifest's order."""
    by_evr = sorted(packages, key=cmp_to_key(compare_evr))
    return sorted(by_evr, key=lambda p: (p.name, p.arch))


def parse_query(output: str) -> list[Package]:
    """`rpm -qa --qf QUERY_FORMAT` output -> packages (lines that are not five fields are
    left out: rpm's warnings share the stream)."""
    packages = []
    for line in output.splitlines():
        fields = line.split("\t")
        if len(fields) != 5:
            continue
        name, epoch, version, release, arch = fields
        packages.append(Package(name, int(epoch) if epoch.isdigit() else 0, version, release, arch))
    return sort_packages(packages)


def manifest_bytes(packages: list[Package]) -> bytes:
    """packages.json: stable bytes (sorted packages and keys)."""
    doc = {"format": MANIFEST_FORMAT, "packages": [p.as_json() for p in sort_packages(packages)]}
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


class ManifestError(ValueError):
    """A packages.json that is not one imagespec wrote."""


def parse_manifest(data: bytes) -> list[Package]:
    try:
        doc = json.loads(data)
        entries = doc["packages"]
        return sort_packages(
            [
                Package(
                    str(e["name"]),
                    int(e["epoch"] or 0),
                    str(e["version"]),
                    str(e["release"]),
                    str(e["arch"]),
                )
                for e in entries
            ]
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ManifestError(f"not a package manifest ({exc})") from None


@dataclass(frozen=True)
class Change:
    """One package whose build differs: from `old` to `new` (either may be absent)."""

    name: str
    arch: str
    old: str = ""
    new: str = ""

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "arch": self.arch, "from": self.old, "to": self.new}


@dataclass
class PackageChanges:
    added: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    upgraded: list[Change] = field(default_factory=list)
    downgraded: list[Change] = field(default_factory=list)
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.upgraded or self.downgraded)

    def as_json(self) -> dict[str, Any]:
        return {
            "added": [c.as_json() for c in self.added],
            "removed": [c.as_json() for c in self.removed],
            "upgraded": [c.as_json() for c in self.upgraded],
            "downgraded": [c.as_json() for c in self.downgraded],
            "unchanged": self.unchanged,
        }


def compare_packages(old: list[Package], new: list[Package]) -> PackageChanges:
    """What changed from `old` to `new`, per name and arch.

    A name and arch installed once on each side is upgraded or downgraded by
    rpm's order.  Where several builds share a name and arch (install-only
    packages such as kernel), each build is its own entry: the ones that
    went are removed, the ones that came are added.
    """
    before, after = _by_key(old), _by_key(new)
    changes = PackageChanges()
    for key in sorted(before.keys() | after.keys()):
        name, arch = key
        was, now = before.get(key, []), after.get(key, [])
        if len(was) == 1 and len(now) == 1 and compare_evr(was[0], now[0]) != 0:
            change = Change(name, arch, was[0].evr, now[0].evr)
            bucket = changes.upgraded if compare_evr(now[0], was[0]) > 0 else changes.downgraded
            bucket.append(change)
            continue
        gone = [p for p in was if not any(compare_evr(p, q) == 0 for q in now)]
        came = [p for p in now if not any(compare_evr(p, q) == 0 for q in was)]
        changes.removed += [Change(name, arch, old=p.evr) for p in gone]
        changes.added += [Change(name, arch, new=p.evr) for p in came]
        changes.unchanged += len(was) - len(gone)
    return changes


def _by_key(packages: list[Package]) -> dict[tuple[str, str], list[Package]]:
    found: dict[tuple[str, str], list[Package]] = {}
    for package in sort_packages(packages):
        found.setdefault((package.name, package.arch), []).append(package)
    return found


# dnf repoquery --qf: the fields of parse_query, one package a line
REPOQUERY_FORMAT = "%{name}\\t%{epoch}\\t%{version}\\t%{release}\\t%{arch}"


def spec_forms(package: Package) -> list[str]:
    """The names dnf's install accepts for a package, without provides: name, name.arch,
    name-version, name-version-release, with and without arch and epoch."""
    n, v, r, a = package.name, package.version, package.release, package.arch
    forms = [n, f"{n}.{a}", f"{n}-{v}", f"{n}-{v}-{r}", f"{n}-{v}-{r}.{a}"]
    epoch = f"{package.epoch}:"
    forms += [f"{n}-{epoch}{v}", f"{n}-{epoch}{v}-{r}", f"{n}-{epoch}{v}-{r}.{a}"]
    return forms


def spec_matches(spec: str, package: Package) -> bool:
    """Whether a package list entry (globs allowed, case ignored, as dnf matches) names it."""
    pattern = spec.lower()
    return any(fnmatch.fnmatchcase(form.lower(), pattern) for form in spec_forms(package))


def unmatched_specs(specs: Iterable[str], packages: list[Package]) -> list[str]:
    """The entries no package of a repository query answers (sorted): missing, or named
    by something a package provides (a capability or a file), which dnf also installs."""
    return sorted(s for s in set(specs) if not any(spec_matches(s, p) for p in packages))
