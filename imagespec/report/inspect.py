"""`logs --list`, `generations` and `diff --built`: narrow enough for an 80-column terminal."""

from __future__ import annotations

from typing import Optional

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..ops.inspect import BuildLog, BuiltDiff, Generations
from ..packages import Change


def _short(digest: Optional[str]) -> str:
    """The first 8 hex digits of a digest: enough to tell generations apart."""
    return (digest or "").split(":")[-1][:8] or "-"


def _table(*columns: str) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column, no_wrap=True)
    return table


def print_logs(console: Console, director: str, image: str, logs: list[BuildLog]) -> None:
    console.print(f"[bold]{escape(image)}[/bold] on director {escape(director)}: build logs")
    table = _table("build", "started", "path")
    for log in logs:
        table.add_row(str(log.number), log.time, escape(log.path))
    console.print(table)
    console.print(f"show one: imagespec logs {escape(image)} --build N")


def print_generations(console: Console, found: Generations) -> None:
    console.print(
        f"[bold]{escape(found.image)}[/bold] on director {escape(found.director)}:"
        f" {len(found.rows)} generation(s) kept for {escape(found.rootimgdir)}"
    )
    if found.foreign:
        console.print("the rootimgdir is a directory imagespec did not build (no generations yet)")
    if not found.rows:
        return
    table = _table("gen", "in use", "built", "commit", "build", "pack", "packages")
    for row in found.rows:
        table.add_row(
            str(row.number),
            "[green]*[/green]" if row.current else "",
            row.time or ("adopted" if row.adopted else "-"),
            (row.commit or "-")[:10],
            _short(row.digests.get("build")),
            _short(row.digests.get("pack")),
            "manifest" if row.manifest else "-",
        )
    console.print(table)


def _changes(console: Console, title: str, style: str, changes: list[Change]) -> None:
    if not changes:
        return
    console.print(f"[{style}]{title} ({len(changes)}):[/{style}]")
    for change in changes:
        name = escape(f"{change.name}.{change.arch}")
        if change.old and change.new:
            console.print(f"  {name}  {escape(change.old)} -> {escape(change.new)}")
        else:
            console.print(f"  {name}  {escape(change.old or change.new)}")


def print_built_diff(console: Console, diff: BuiltDiff) -> None:
    console.print(
        f"[bold]{escape(diff.image)}[/bold] on director {escape(diff.director)}:"
        f" generation {diff.old} ({(diff.old_commit or 'unknown commit')[:10]})"
        f" -> {diff.new} ({(diff.new_commit or 'unknown commit')[:10]})"
    )
    changes = diff.changes
    _changes(console, "upgraded", "green", changes.upgraded)
    _changes(console, "downgraded", "yellow", changes.downgraded)
    _changes(console, "added", "green", changes.added)
    _changes(console, "removed", "red", changes.removed)
    if not changes.changed:
        console.print(f"same packages ({changes.unchanged})")
    else:
        console.print(f"{changes.unchanged} package(s) unchanged")
    for number, source in ((diff.old, diff.old_source), (diff.new, diff.new_source)):
        if source != "manifest":
            console.print(f"generation {number} has no package manifest: read its {source}")
