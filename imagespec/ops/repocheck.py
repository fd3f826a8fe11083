"""`plan --check-packages` and `validate --repos`: every package an image lists, looked up in
the repositories its build would install from, before any build starts.

The repositories are the ones the native builder configures (pkgdir's repodata
directories, kerneldir's with kernelver, otherpkgdir's URLs and subdirectories:
`NativeBuilder.repositories`, which follows rh/genimage, so it holds for xcat
directors too), found and queried on the director through its transport.  Images
sharing a repository set share one `dnf repoquery`; entries that no package name
matches get one more look among what packages provide (capabilities and files,
which dnf also installs by).  Groups (`@core`) and directives are not checked.
When the director cannot be asked (no dnf, a repository unreachable, ssh down), the
result says "not checked" and why, and nothing fails.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

from ..builders.native import NativeBuilder, Repo, Repos
from ..errors import ImagespecError, Pos, visible
from ..packages import REPOQUERY_FORMAT, parse_query, unmatched_specs
from ..render import RenderedImage
from ..resolve import Entry, is_directive
from ..runner import Effect, Result
from .reconcile import Target

# dnf's options for a query that must not hang or read the director's own repositories
QUERY_OPTIONS = (
    "-q",
    "--setopt=reposdir=/dev/null",
    "--setopt=skip_if_unavailable=False",
    "--setopt=timeout=20",
    "--setopt=retries=1",
)
PROVIDED = "imagespec-provided"
SHOWN_IMAGES = 3


@dataclass(frozen=True)
class Wanted:
    """One package list entry of one image, and where its build looks for it."""

    image: str
    spec: str  # the name dnf is given
    entry: Entry
    repos: tuple[Repo, ...]
    where: str  # the repositories as the site names them


@dataclass(frozen=True)
class Missing:
    package: str
    pos: Pos
    level: str
    images: tuple[str, ...]
    where: str

    @property
    def detail(self) -> str:
        return visible(
            f"package '{self.package}' is in none of the repositories of"
            f" {_names(list(self.images))} ({self.where})"
        )

    @property
    def message(self) -> str:
        place = str(self.pos) if self.pos.path else visible(self.level)
        return f"{place}: {self.detail}"

    def as_json(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "images": list(self.images),
            "file": self.pos.path or None,
            "line": self.pos.line or None,
            "column": self.pos.col or None,
            "message": self.message,
        }


@dataclass
class PackageCheck:
    director: str
    checked: list[str] = field(default_factory=list)  # images whose lists were looked up
    missing: list[Missing] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)  # why a part could not be checked
    queries: int = 0  # repository sets queried

    def as_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "missing": [m.as_json() for m in self.missing],
            "not_checked": self.not_checked,
            "queries": self.queries,
        }


def check_packages(target: Target, only: Optional[set[str]] = None) -> PackageCheck:
    """Look up every package of the director's images (but frozen ones, which are never
    built) in the repositories their builds would use: one query per repository set."""
    settings = target.view.docs.site.model.directors[target.name]
    finder = _Finder(target.transport, settings.build, target.rendered, target.commit)
    check = PackageCheck(target.name)
    probe = target.transport.run(["true"], check=False, effect=Effect.READ)
    if not probe.ok:
        reason = _first_line(probe.output) or f"exit {probe.returncode}"
        check.not_checked.append(f"packages not checked on director {target.name}: {reason}")
        return check
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[Wanted]] = {}
    unread: dict[str, list[str]] = {}  # why the repositories are unknown -> images
    for name, image in sorted(target.rendered.images.items()):
        if image.frozen or (only and name not in only):
            continue
        try:
            repos, _ = finder.repositories(image, lambda _line: None)
            repos.all()  # a baseurl that would break dnf's configuration is refused here
        except ImagespecError as exc:
            why = _first_line(str(exc))
            unread.setdefault(why.removeprefix(f"image {name}: "), []).append(name)
            continue
        check.checked.append(name)
        options = tuple(_query_options(image))
        kerneldir = finder.kerneldir(image) if image.attributes.get("kernelver") else ""
        for wanted in _wanted(image, repos, kerneldir):
            key = (options, tuple(r.baseurl for r in wanted.repos))
            groups.setdefault(key, []).append(wanted)
    for why, names in sorted(unread.items()):
        check.not_checked.append(f"packages not checked for {_names(names)}: {why}")
    for (options, urls), wants in sorted(groups.items()):
        check.queries += 1
        missing = _query(target, list(options), list(urls), sorted({w.spec for w in wants}))
        if isinstance(missing, str):
            images = sorted({w.image for w in wants})
            check.not_checked.append(f"packages not checked for {_names(images)}: {missing}")
            continue
        check.missing += _report(w for w in wants if w.spec in missing)
    check.missing.sort(key=lambda m: (m.pos.path, m.pos.line, m.pos.col, m.package, m.images))
    return check


class _Finder(NativeBuilder):
    """The builder's repository lookup, each directory asked about once (300 images
    usually share a few pkgdirs)."""

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.found: dict[str, list[str]] = {}
        self.has: dict[str, bool] = {}

    def _find_repodata(self, directory: str) -> list[str]:
        if directory not in self.found:
            self.found[directory] = super()._find_repodata(directory)
        return self.found[directory]

    def _has_repodata(self, directory: str) -> bool:
        if directory not in self.has:
            self.has[directory] = super()._has_repodata(directory)
        return self.has[directory]


def _query_options(image: RenderedImage) -> list[str]:
    arch = image.attributes.get("osarch", "")
    return [*NativeBuilder.release_options(image), *([f"--forcearch={arch}"] if arch else [])]


def _wanted(image: RenderedImage, repos: Repos, kerneldir: str) -> Iterator[Wanted]:
    """The image's package entries with the repositories of their transaction: pkglist
    entries from pkgdir (and kerneldir), an otherpkglist section's also from otherpkgdir's
    URLs and the subdirectories that section installs from."""
    attrs = image.attributes
    pkgdir = "pkgdir " + ", ".join(_split(attrs.get("pkgdir", "")))
    if kerneldir:
        pkgdir += f", kerneldir {kerneldir}"
    lists = image.resolved.merge.lists
    for entry in lists.get("packages", []):
        if _checked(entry.value):
            yield Wanted(
                image.name, posixpath.basename(entry.value), entry, tuple(repos.base), pkgdir
            )
    others = _split(attrs.get("otherpkgdir", ""))
    for section in _sections(lists.get("otherpkgs", [])):
        subdirs = {posixpath.split(e.value)[0] for e in section}
        used = tuple(repos.for_other(subdirs))
        for entry in section:
            subdir, name = posixpath.split(entry.value)
            where = f"{pkgdir}; otherpkgdir {', '.join(others)}" + (
                f" ({subdir}/)" if subdir else ""
            )
            yield Wanted(image.name, name, entry, used, where)


def _checked(value: str) -> bool:
    """Package names: not directives, groups, removals or comments."""
    return bool(value) and not is_directive(value) and value[0] not in "@-#"


def _sections(entries: list[Entry]) -> list[list[Entry]]:
    """The otherpkglist's install entries per #NEW_INSTALL_LIST# transaction."""
    sections: list[list[Entry]] = [[]]
    for entry in entries:
        if entry.value == "#NEW_INSTALL_LIST#":
            sections.append([])
        elif _checked(entry.value):
            sections[-1].append(entry)
    return [s for s in sections if s]


def _query(target: Target, options: list[str], urls: list[str], specs: list[str]) -> set[str] | str:
    """The specs none of the repositories has, or why they could not be looked up."""
    ids = [f"imagespec-check-{i}" for i in range(1, len(urls) + 1)]
    dnf = [
        "dnf",
        *QUERY_OPTIONS,
        *options,
        *(f"--repofrompath={i},{u}" for i, u in zip(ids, urls)),
        *(f"--repo={i}" for i in ids),
        "repoquery",
    ]
    try:
        found = _run(target, [*dnf, "--qf", REPOQUERY_FORMAT, *specs])
        if isinstance(found, str):
            return found
        left = unmatched_specs(specs, parse_query(found.output))
        if not left:
            return set()
        provided = _run(target, ["sh", "-c", _provides_script(dnf), "sh", *left])
    except ImagespecError as exc:
        return _first_line(str(exc))
    if isinstance(provided, str):
        return provided
    said = {
        line.split("\t", 1)[1]
        for line in provided.output.splitlines()
        if line.startswith(PROVIDED + "\t")
    }
    return set(left) - said


def _provides_script(dnf: list[str]) -> str:
    """One shell loop over the leftover specs: which ones something provides."""
    query = shlex.join([*dnf, "--qf", "%{name}", "--whatprovides"])
    return f'for k do if {query} "$k" | grep -q .; then printf "{PROVIDED}\\t%s\\n" "$k"; fi; done'


def _run(target: Target, argv: list[str]) -> Result | str:
    result = target.transport.run(argv, check=False, effect=Effect.READ)
    if result.ok:
        return result
    if result.returncode == 127:
        return f"dnf is not installed on {target.transport.description}"
    lines = [ln.strip() for ln in result.output.splitlines() if ln.strip()]
    errors = (
        [ln for ln in lines if ln.startswith("Error")] or lines or [f"exit {result.returncode}"]
    )
    return f"dnf repoquery failed: {visible(errors[-1])[:300]}"


def _report(wants: Iterator[Wanted]) -> list[Missing]:
    """One line per entry and repository set, naming every image it is missing from."""
    by_place: dict[tuple[str, Pos, str, str], list[str]] = {}
    for w in wants:
        by_place.setdefault((w.spec, w.entry.origin.pos, w.entry.origin.level, w.where), []).append(
            w.image
        )
    return [
        Missing(spec, pos, level, tuple(sorted(set(images))), where)
        for (spec, pos, level, where), images in by_place.items()
    ]


def _split(value: str) -> list[str]:
    return [p for p in value.split(",") if p]


def _names(images: list[str]) -> str:
    shown = ", ".join(images[:SHOWN_IMAGES])
    more = len(images) - SHOWN_IMAGES
    return shown + (f" and {more} more image{'s' if more != 1 else ''}" if more > 0 else "")


def _first_line(text: str) -> str:
    lines = text.splitlines()
    return visible(lines[0])[:300] if lines else ""
