"""`show IMAGE`: the merged view of one image, as SPEC §8 JSON or a rich text report."""

from __future__ import annotations

from typing import Any, Optional, Union

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import Pos
from ..ops.explain import LiteView
from ..render import RenderedImage
from ..render.kinds import LISTS, OPTIONAL_KEYS
from ..resolve import Entry, Origin, SyncItem, shown_source


def show_json(image: RenderedImage) -> dict[str, Any]:
    """Exactly the SPEC's shape; attributes are the osimage definition as it will be stored."""
    resolved = image.resolved
    doc: dict[str, Any] = {
        "image": image.name,
        "profile": image.profile,
        "chain": list(resolved.chain),
    }
    for kind in LISTS:
        doc[kind.key] = resolved.values(kind.field)
    doc["synclist"] = [_sync_json(item) for item in resolved.merge.sync]
    doc["litefile"] = {path: entry.value for path, entry in sorted(resolved.merge.litefile.items())}
    doc["attributes"] = dict(sorted(image.attributes.items()))
    doc["frozen"] = image.frozen
    doc["digests"] = dict(image.digests)
    order = [
        "image",
        "profile",
        "chain",
        *(kind.key for kind in LISTS),
        "synclist",
        "litefile",
        "attributes",
        "frozen",
        "digests",
    ]
    return {key: doc[key] for key in order if doc[key] or key not in OPTIONAL_KEYS}


def _sync_json(item: SyncItem) -> dict[str, Any]:
    """SPEC §8's synclist entry; `"from": "director"` only on director entries."""
    doc: dict[str, Any] = {
        "src": list(item.sources),
        "dest": item.dest,
        "mode": item.mode,
        "nodes": item.nodes,
    }
    if item.director:
        doc["from"] = "director"
    return doc


def _where(origin: Origin) -> Text:
    return Text(f"{origin.level}  {origin.pos}", style="dim")


def _section(console: Console, title: str, rows: list[tuple[str, Origin]]) -> None:
    _table(console, title, [(Text(value), _where(origin)) for value, origin in rows])


def _table(console: Console, title: str, rows: list[tuple[Union[str, Text], Text]]) -> None:
    """A titled list: each value beside where it came from when both fit the terminal,
    else the value on its line and where it came from indented below it.  A path or
    an entry is never broken mid-word."""
    if not rows:
        return
    widest = max(Text(v).cell_len if isinstance(v, str) else v.cell_len for v, _ in rows)
    if widest + 2 + max(w.cell_len for _, w in rows) <= console.width:
        table = Table(
            title=f"{title} ({len(rows)})",
            title_justify="left",
            show_header=False,
            box=None,
            pad_edge=False,
        )
        table.add_column("value", no_wrap=True)
        table.add_column("from", no_wrap=True)
        for value, where in rows:
            table.add_row(value, where)
        console.print(table)
        return
    console.print(Text(f"{title} ({len(rows)})", style="italic"))
    for value, where in rows:
        console.print(value, soft_wrap=True)
        console.print(Text("    ").append_text(where), soft_wrap=True)


def print_show(console: Console, image: RenderedImage, lite: Optional[LiteView] = None) -> None:
    """Human view: every merged entry beside the profile and line that put it there."""
    resolved = image.resolved
    console.print(
        f"[bold]{image.name}[/bold] on director [bold]{image.director}[/bold]\n"
        f"profile {image.profile}, chain {' -> '.join(resolved.chain)}, distro {resolved.distro}"
        + (", [yellow]frozen[/yellow]" if image.frozen else "")
    )
    for kind in LISTS:
        entries: list[Entry] = resolved.merge.lists[kind.field]
        _section(console, kind.key, [(e.value, e.origin) for e in entries])
    sync_rows = []
    for item in resolved.merge.sync:
        target = f"({item.nodes}) {item.dest}" if item.nodes else item.dest
        sources = " ".join(shown_source(s) for s in item.sources)
        sync_rows.append((f"{sources} -> {target} [{item.mode}]", item.origin))
    _section(console, "synclist", sync_rows)
    _section(
        console,
        "litefile",
        [(f"{p}  {e.value}", e.origin) for p, e in sorted(resolved.merge.litefile.items())],
    )
    if lite is not None:
        _print_lite(console, lite)
    computed = Origin("computed by imagespec", Pos(""))
    attr_rows = []
    for name, value in sorted(image.attributes.items()):
        origin = resolved.attributes[name].origin if name in resolved.attributes else computed
        attr_rows.append((f"{name}={value}", origin))
    _section(console, "attributes", attr_rows)
    _print_variants(console, image)
    digest_table = Table(
        title="digests", title_justify="left", show_header=False, box=None, pad_edge=False
    )
    for name, value in image.digests.items():
        digest_table.add_row(name, value)
    console.print(digest_table)


def _print_variants(console: Console, image: RenderedImage) -> None:
    """Each boot variant's osimage and what it sets on top of the image (null: unsets).
    Descriptions are free text, so they are printed as text, never as rich markup."""
    rows: list[tuple[Union[str, Text], Text]] = []
    for variant in image.variants.values():
        where = _where(Origin(f"variant {variant.variant}", variant.pos))
        if variant.description:
            rows.append((Text(f"{variant.name}: {variant.description}"), where))
        for name, (value, pos) in sorted(variant.settings.items()):
            what = f"{name} unset" if value is None else f"{name}={value}"
            origin = Origin(f"variant {variant.variant}", pos)
            rows.append((Text(f"{variant.name}: {what}"), _where(origin)))
        if not variant.settings:
            rows.append((Text(f"{variant.name}: the image's attributes"), where))
    _table(console, "variants", rows)


def _print_lite(console: Console, lite: LiteView) -> None:
    """The rows liteimg applies: the profile's, the director's and xCAT's own /etc/mtab row."""
    rows: list[tuple[Union[str, Text], Text]] = [
        (Text(f"{r.file}  {r.options}"), Text(r.source, style="dim")) for r in lite.rows
    ]
    _table(console, "litefile as liteimg applies it", rows)
    if lite.note:
        console.print(Text(f"note: {lite.note}", style="yellow"))
