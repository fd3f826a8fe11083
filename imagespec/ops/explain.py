"""`explain IMAGE ENTRY`: where an entry was added, overridden or removed along the chain."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from ..errors import ImagespecError
from ..litetree import LiteRow, effective_rows, parse_table
from ..model import SCRIPT_FIELDS
from ..render import RenderedImage
from ..render.kinds import COMPUTED_ATTRIBUTES, KEY_OF_FIELD
from ..resolve import Event, script_name, shown_source
from ..runner import CommandError, Effect

if TYPE_CHECKING:
    from ..builders.xcat import XcatBuilder
    from .reconcile import Target


@dataclass(frozen=True)
class Explanation:
    image: str
    entry: str
    events: list[Event]
    final: list[
        str
    ]  # where the entry is in the final view, e.g. "pkglist", "attributes: rootimgdir=..."

    def as_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "entry": self.entry,
            "events": [
                {
                    "field": e.field,
                    "key": e.key,
                    "action": e.action,
                    "value": e.value,
                    "level": e.origin.level,
                    "file": e.origin.pos.path or None,
                    "line": e.origin.pos.line or None,
                    "column": e.origin.pos.col or None,
                }
                for e in self.events
            ],
            "final": self.final,
        }


def _matches(event: Event, entry: str) -> bool:
    key = event.key
    if key == entry:
        return True
    if event.field == "otherpkgs" and posixpath.basename(key) == entry:
        return True
    if event.field == "exclude" and key.lstrip("+") == entry.lstrip("+"):
        return True
    if event.field in SCRIPT_FIELDS and script_name(key) == entry:
        return True
    return event.field == "sync" and (
        entry in (event.value or "").split() or _in_directory(key, entry)
    )


def _in_directory(path: str, entry: str) -> bool:
    """A sync path written directly into the directory `entry` (ending in '/')."""
    return entry.endswith("/") and posixpath.dirname(path) + "/" == entry


def explain(
    image: RenderedImage, entry: str, lite: Optional[LiteView] = None
) -> Optional[Explanation]:
    """Every event touching the entry, in merge order; None when nothing matches.

    `lite`: a statelite image's litefile rows as liteimg applies them, so a
    path set by the director's ALL, '' or group rows, or by xCAT itself
    (/etc/mtab), is explained too.
    """
    resolved = image.resolved
    events = [e for e in (*resolved.merge.events, *resolved.events) if _matches(e, entry)]
    final = _final(image, entry)
    if lite is not None:
        final += [
            f"litefile as liteimg applies it: {r.file} {r.options} ({r.source})"
            for r in lite.rows
            if r.file == entry and (r.source != "profile" or entry not in resolved.merge.litefile)
        ]
        if lite.note and any(f.startswith("litefile") for f in final):
            final.append(f"note: {lite.note}")
    if not events and not final:
        return None
    return Explanation(image=image.name, entry=entry, events=events, final=final)


def _final(image: RenderedImage, entry: str) -> list[str]:
    resolved = image.resolved
    found = []
    for list_field, entries in resolved.merge.lists.items():
        for e in entries:
            probe = Event(list_field, e.value, "", e.value, e.origin)
            if _matches(probe, entry):
                found.append(f"{KEY_OF_FIELD[list_field]}: {e.value} (from {e.origin.level})")
    for item in resolved.merge.sync:
        paths = item.paths
        if entry in (item.dest, *item.sources, *paths) or any(
            _in_directory(p, entry) for p in paths
        ):
            sources = " ".join(shown_source(s) for s in item.sources)
            found.append(f"synclist: {sources} -> {item.dest} (from {item.origin.level})")
    if entry in resolved.merge.litefile:
        lite = resolved.merge.litefile[entry]
        found.append(f"litefile: {entry} {lite.value} (from {lite.origin.level})")
    if entry in image.attributes:
        origin = resolved.attributes.get(entry)
        source = origin.origin.level if origin else "computed by imagespec"
        found.append(f"attribute: {entry}={image.attributes[entry]} ({source})")
    elif entry in COMPUTED_ATTRIBUTES:
        found.append(f"attribute: {entry} is computed by imagespec and not set for this image")
    return found


@dataclass
class LiteView:
    """The litefile rows liteimg applies to an image, and whether the director's were read."""

    rows: list[LiteRow]
    read: bool
    note: Optional[str] = None

    def as_json(self) -> dict[str, Any]:
        return {"rows": [r.as_json() for r in self.rows], "read": self.read, "note": self.note}


def director_litefile(target: Target, image: RenderedImage) -> LiteView:
    """The image's rendered rows merged with the director's ALL, '' and group rows.

    Two read-only calls on an xcat director (`tabdump litefile`, the image's
    `groups`); when they fail the view says so and holds the rendered rows
    and the automatic /etc/mtab row only.
    """
    from ..builders.xcat import XcatBuilder  # not at import: show and diff start faster

    rendered = {p: e.value or "" for p, e in image.resolved.merge.litefile.items()}
    builder = target.builder
    if not isinstance(builder, XcatBuilder):
        note = (
            f"director {target.name} uses the {target.builder.name} builder: no xCAT litefile table"
        )
        return LiteView(effective_rows(image.name, rendered, None, None), False, note)
    try:
        result = target.transport.run(["tabdump", "litefile"], check=False, effect=Effect.READ)
        if not result.ok:
            raise ImagespecError(result.output.strip().splitlines()[0] if result.output else "")
        table = parse_table(result.output)
        groups = _groups(builder, image.name)
    except (CommandError, ImagespecError) as exc:
        note = f"the litefile table of director {target.name} could not be read: {exc}"
        return LiteView(effective_rows(image.name, rendered, None, None), False, note)
    return LiteView(effective_rows(image.name, rendered, table, groups), True)


def _groups(builder: XcatBuilder, name: str) -> Optional[str]:
    """The image's `groups` as xCAT holds it (None: not defined yet, or not readable)."""
    try:
        have = builder.read_definition(name)
    except CommandError:
        return None
    return (have or {}).get("groups", "").strip() or None
