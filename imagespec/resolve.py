"""Per image: merged lists, sync, litefile and attributes, each entry with provenance.

The list/sync/litefile merge depends only on a profile's chain, so it is done
once per profile and shared by every image of that profile; attributes also
depend on the image, its distro and the director, so they are merged per
(director, image).  Every step is recorded as an Event, which `explain` reads.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional

from .errors import Pos, Problem
from .load import LoadedProfile, SiteDocs
from .model import BUILTIN_ATTRIBUTES, LIST_FIELDS, SCRIPT_FIELDS, SyncEntry


@dataclass(frozen=True)
class Origin:
    """Where a merged value came from: a profile (or site level) and the exact place."""

    level: str  # profile name, or "builtin", "defaults", "distro <x>", "director <d>", "image <i>"
    pos: Pos

    def describe(self) -> str:
        return f"{self.level} ({self.pos})" if self.pos.path else self.level


@dataclass(frozen=True)
class Entry:
    value: str
    origin: Origin


@dataclass(frozen=True)
class SyncItem:
    """One synclist line: sources copied to dest (a file, or a directory ending in '/')."""

    dest: str
    sources: tuple[str, ...]
    mode: str
    nodes: Optional[str]
    origin: Origin
    director: bool = False  # `from: director`: the sources are absolute paths on the director

    @property
    def paths(self) -> tuple[str, ...]:
        """The image paths the line writes, one per source."""
        return tuple(sync_path(self.dest, src) for src in self.sources)

    @property
    def build_time(self) -> bool:
        """Whether packimage and liteimg copy the line into the root: a plain line without a
        noderange (`xdcp -i` skips the others, perl-xCAT/xCAT/DSHCLI.pm:4999-5012); the rest
        reach nodes at boot (syncfiles, updatenode -F)."""
        return self.nodes is None and self.mode in ("copy", "execute", "executealways")

    @property
    def copied_sources(self) -> tuple[str, ...]:
        """The sources with an execute line's `<src>.post` companions, which are synced too."""
        extra = tuple(f"{s}.post" for s in self.sources) if self.mode == "execute" else ()
        return (*self.sources, *extra)


DIRECTOR_FILE = "director file"


def shown_source(src: str) -> str:
    """A sync source as people read it.  Validation keeps every synclists/ source relative
    and every `from: director` source absolute, so an absolute one is a director file."""
    return f"{DIRECTOR_FILE} {src}" if src.startswith("/") else src


def sync_path(dest: str, src: str) -> str:
    """The image path one source writes: dest, or dest + the source's file name when
    dest is a directory (rsync copies `a b -> dir/` to dir/a and dir/b)."""
    return dest + posixpath.basename(src) if dest.endswith("/") else dest


@dataclass(frozen=True)
class Event:
    """One step of the merge: what happened to which entry, and where."""

    field: str
    key: str
    action: str  # added, removed, re-added, kept, replaced, dropped, set, overridden, unset
    value: Optional[str]
    origin: Origin


@dataclass
class ChainMerge:
    """The director-independent part of an image: lists, sync and litefile of a chain."""

    chain: tuple[str, ...]
    lists: dict[str, list[Entry]] = field(default_factory=dict)
    sync: list[SyncItem] = field(default_factory=list)
    litefile: dict[str, Entry] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    # Every removal seen, by position: None when it removed something, else the warning.
    removals: dict[Pos, Optional[Problem]] = field(default_factory=dict)

    def removal(self, pos: Pos, used: bool, message: str) -> None:
        self.removals[pos] = None if used else Problem(pos, message, "warning")


@dataclass
class ResolvedImage:
    """One image as it will be on one director, before rendering."""

    name: str
    profile: str
    distro: str
    director: str
    frozen: bool
    merge: ChainMerge
    attributes: dict[str, Entry]  # user-settable attributes after precedence (not computed ones)
    osvers: Entry
    osarch: Entry
    family: str
    events: list[Event]

    @property
    def chain(self) -> tuple[str, ...]:
        return self.merge.chain

    def values(self, list_field: str) -> list[str]:
        return [e.value for e in self.merge.lists.get(list_field, [])]

    @property
    def statelite(self) -> bool:
        provmethod = self.attributes.get("provmethod")
        return provmethod is not None and provmethod.value == "statelite"


def is_directive(value: str) -> bool:
    """pkglist directives that are kept in place and never de-duplicated."""
    return value == "#NEW_INSTALL_LIST#" or (value.startswith("#ENV:") and value.endswith("#"))


def script_name(entry: str) -> str:
    """The script of a `name args` entry."""
    return entry.split()[0] if entry.split() else entry


def _matches(list_field: str, existing: str, removal: str) -> bool:
    if existing == removal:
        return True
    return (
        list_field in SCRIPT_FIELDS
        and " " not in removal.strip()
        and script_name(existing) == removal
    )


def merge_list(
    list_field: str, levels: list[tuple[LoadedProfile, list[str]]], merge: ChainMerge
) -> list[Entry]:
    """Walk the chain: `-x` removes earlier x; other entries append unless present."""
    merged: list[Entry] = []
    present: set[str] = set()
    removed_before: set[str] = set()
    for loaded, values in levels:
        positions = loaded.positions
        for index, raw in enumerate(values):
            pos = positions.get((list_field, index)) or loaded.pos(list_field, index)
            origin = Origin(loaded.name, pos)
            if raw[:1] == "-" and len(raw) > 1:
                target = raw[1:]
                keep = [e for e in merged if not _matches(list_field, e.value, target)]
                merge.removal(
                    origin.pos,
                    len(keep) != len(merged),
                    f"'{raw}' removes nothing: no earlier level of the chain adds '{target}' to {list_field}",
                )
                merge.events.append(Event(list_field, target, "removed", None, origin))
                removed_before.add(target)
                merged = keep
                present = {e.value for e in merged}
            elif raw not in present or (raw[:1] == "#" and is_directive(raw)):
                action = "re-added" if raw in removed_before else "added"
                merged.append(Entry(raw, origin))
                present.add(raw)
                merge.events.append(Event(list_field, raw, action, raw, origin))
            else:
                merge.events.append(Event(list_field, raw, "kept", raw, origin))
    return merged


def merge_sync(levels: list[LoadedProfile], merge: ChainMerge) -> list[SyncItem]:
    """SPEC §4: keyed by the image path each source writes, in order of first appearance;
    a later entry writing a path replaces it in place; drop removes by path.

    The merge works on one source per path; the result joins neighbouring sources of
    the same entry back into one line, so an entry nobody overrides is rendered as
    written, and one whose path a later level took over is split around it: the
    synclist writes exactly the merged paths.
    """
    merged: dict[str, SyncItem] = {}
    for loaded in levels:
        for index, entry in enumerate(loaded.model.sync):
            origin = Origin(loaded.name, loaded.pos("sync", index))
            if entry.drop:
                _drop_sync(merged, entry, origin, merge)
            else:
                _add_sync(merged, entry, origin, merge)
    return join_sync(merged.values())


def _add_sync(
    merged: dict[str, SyncItem], entry: SyncEntry, origin: Origin, merge: ChainMerge
) -> None:
    for src in entry.sources:
        path = sync_path(entry.dest, src)
        action = "replaced" if path in merged else "added"
        merged[path] = SyncItem(
            entry.dest, (src,), entry.mode, entry.nodes, origin, entry.from_director
        )
        merge.events.append(Event("sync", path, action, src, origin))


def _drop_sync(
    merged: dict[str, SyncItem], entry: SyncEntry, origin: Origin, merge: ChainMerge
) -> None:
    """Drop the paths the entry names: dest, dest + each src's name, or (a directory dest
    without src) every path directly in that directory."""
    if entry.sources:
        targets = [sync_path(entry.dest, src) for src in entry.sources]
    elif entry.dest.endswith("/"):
        targets = [p for p in merged if posixpath.dirname(p) + "/" == entry.dest]
    else:
        targets = [entry.dest]
    dropped = [path for path in targets if merged.pop(path, None) is not None]
    what = ", ".join(f"'{t}'" for t in targets) if targets else f"'{entry.dest}'"
    merge.removal(
        origin.pos,
        bool(dropped),
        f"drop of {what} removes nothing: no earlier level of the chain syncs to it",
    )
    for path in dropped or [entry.dest]:
        merge.events.append(Event("sync", path, "dropped", None, origin))


def join_sync(items: Iterable[SyncItem]) -> list[SyncItem]:
    """Neighbouring one-source items of the same entry as one line, in order."""
    lines: list[SyncItem] = []
    for item in items:
        last = lines[-1] if lines else None
        if last is not None and (last.origin, last.dest) == (item.origin, item.dest):
            lines[-1] = replace(last, sources=last.sources + item.sources)
        else:
            lines.append(item)
    return lines


def merge_litefile(levels: list[LoadedProfile], merge: ChainMerge) -> dict[str, Entry]:
    """Keyed by path; later wins; null removes."""
    merged: dict[str, Entry] = {}
    for loaded in levels:
        for path, option in loaded.model.litefile.items():
            origin = Origin(loaded.name, loaded.pos("litefile", path))
            if option is None:
                merge.removal(
                    origin.pos,
                    merged.pop(path, None) is not None,
                    f"litefile '{path}: null' removes nothing: no earlier level of the chain lists it",
                )
                merge.events.append(Event("litefile", path, "removed", None, origin))
                continue
            action = "overridden" if path in merged else "added"
            merged[path] = Entry(option, origin)
            merge.events.append(Event("litefile", path, action, option, origin))
    return merged


def merge_chain(docs: SiteDocs, chain: tuple[str, ...]) -> ChainMerge:
    """Merge every list, sync and litefile of a chain (director-independent)."""
    merge = ChainMerge(chain=chain)
    levels = [docs.profiles[name] for name in chain]
    for list_field in LIST_FIELDS:
        merge.lists[list_field] = merge_list(
            list_field, [(lp, list(getattr(lp.model, list_field))) for lp in levels], merge
        )
    merge.sync = merge_sync(levels, merge)
    merge.litefile = merge_litefile(levels, merge)
    return merge


PosFn = Callable[[str], Pos]


def _apply_attrs(
    merged: dict[str, Entry], events: list[Event], level: str, values: dict[str, Any], pos_of: PosFn
) -> None:
    """Lay one precedence level over the attributes so far: later wins, null unsets."""
    for name, value in values.items():
        origin = Origin(level, pos_of(name))
        if value is None:
            if merged.pop(name, None) is not None:
                events.append(Event("attributes", name, "unset", None, origin))
            continue
        text = attr_text(value)
        action = "overridden" if name in merged else "set"
        merged[name] = Entry(text, origin)
        events.append(Event("attributes", name, action, text, origin))


def attr_text(value: object) -> str:
    """YAML scalars as xCAT text: numbers without float noise, lists comma-joined."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


DISTRO_FIELDS = ("osvers", "osarch", "family", "pkgdir", "otherpkgdir")


def effective_distro(docs: SiteDocs, director_name: str, distro_name: str) -> dict[str, Any]:
    """The distro's fields with the director's override applied, each with its position."""
    site = docs.site
    distro = site.model.distros[distro_name]
    override = site.model.directors[director_name].distros.get(distro_name)
    fields: dict[str, Any] = {}
    for key in DISTRO_FIELDS:
        value, pos = getattr(distro, key), site.pos("distros", distro_name, key)
        if override is not None and getattr(override, key) is not None:
            value = getattr(override, key)
            pos = site.pos("directors", director_name, "distros", distro_name, key)
        fields[key] = (value, pos)
    return fields


def _attribute_levels(
    docs: SiteDocs, merge: ChainMerge, director_name: str, image_name: str
) -> list[tuple[str, dict[str, Any], PosFn]]:
    """SPEC §4 precedence: builtin < defaults < distro < director override < chain < image."""
    site = docs.site
    image = site.model.images[image_name]
    distro = site.model.distros[image.distro]
    dkey = ("distros", image.distro)
    levels: list[tuple[str, dict[str, Any], PosFn]] = [
        ("builtin", dict(BUILTIN_ATTRIBUTES), lambda n: Pos("")),
        ("defaults", dict(site.model.defaults), lambda n: site.pos("defaults", n)),
        (
            f"distro {image.distro}",
            {
                **{
                    k: v for k in ("pkgdir", "otherpkgdir") if (v := getattr(distro, k)) is not None
                },
                **distro.attributes,
            },
            lambda n: (
                site.pos(*dkey, "attributes", n) if n in distro.attributes else site.pos(*dkey, n)
            ),
        ),
    ]
    override = site.model.directors[director_name].distros.get(image.distro)
    if override is not None:
        okey = ("directors", director_name, "distros", image.distro)
        dirs = {k: getattr(override, k) for k in ("pkgdir", "otherpkgdir") if getattr(override, k)}
        levels.append(
            (
                f"director {director_name}",
                {**dirs, **override.attributes},
                lambda n: (
                    site.pos(*okey, "attributes", n)
                    if n in override.attributes
                    else site.pos(*okey, n)
                ),
            )
        )
    for name in merge.chain:
        loaded = docs.profiles[name]
        levels.append((name, dict(loaded.model.attributes), loaded.at("attributes")))
    levels.append(
        (
            f"image {image_name}",
            dict(image.attributes),
            lambda n: site.pos("images", image_name, "attributes", n),
        )
    )
    return levels


def resolve_image(
    docs: SiteDocs, merges: dict[str, ChainMerge], director_name: str, image_name: str
) -> ResolvedImage:
    """Combine a chain merge with the attribute precedence for one director."""
    image = docs.site.model.images[image_name]
    merge = merges[image.profile]
    attrs: dict[str, Entry] = {}
    events: list[Event] = []
    for level, values, pos_of in _attribute_levels(docs, merge, director_name, image_name):
        _apply_attrs(attrs, events, level, values, pos_of)
    fields = effective_distro(docs, director_name, image.distro)
    override = docs.site.model.directors[director_name].distros.get(image.distro)

    def origin_of(key: str) -> Origin:
        overridden = override is not None and getattr(override, key) is not None
        level = f"director {director_name}" if overridden else f"distro {image.distro}"
        return Origin(level, fields[key][1])

    return ResolvedImage(
        name=image_name,
        profile=image.profile,
        distro=image.distro,
        director=director_name,
        frozen=image.frozen,
        merge=merge,
        attributes=attrs,
        osvers=Entry(str(fields["osvers"][0]), origin_of("osvers")),
        osarch=Entry(str(fields["osarch"][0]), origin_of("osarch")),
        family=str(fields["family"][0]),
        events=events,
    )


@dataclass
class Resolution:
    """Every image of a site on one director."""

    director: str
    images: dict[str, ResolvedImage]
    merges: dict[str, ChainMerge]


def resolve_director(
    docs: SiteDocs,
    director: str,
    merges: dict[str, ChainMerge],
    images: Optional[set[str]] = None,
) -> Resolution:
    """Resolve every image (or the named ones) for one director from their chain merges."""
    names = sorted(images) if images is not None else sorted(docs.site.model.images)
    resolved = {name: resolve_image(docs, merges, director, name) for name in names}
    return Resolution(director=director, images=resolved, merges=merges)
