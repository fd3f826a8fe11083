"""`show IMAGE --built`: the packages really in a built root next to the requested ones."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..ops.rollback import Built, Rollback


def print_built(console: Console, built: Built) -> None:
    missing, extra = built.missing, built.still_installed
    console.print(
        f"[bold]{escape(built.image)}[/bold] on director {escape(built.director)}:"
        f" {len(built.installed)} packages installed in {escape(built.root)}"
    )
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("package", no_wrap=True)
    for column in ("requested", "installed"):
        table.add_column(column, no_wrap=True)
    table.add_column("version")
    requested = set(built.requested)
    for name in sorted(requested | set(built.installed) | set(built.erased)):
        wanted = "yes" if name in requested else ("erase" if name in built.erased else "")
        have = "yes" if name in built.installed else "[red]missing[/red]"
        if name in built.erased and name not in built.installed:
            have = "no"
        table.add_row(escape(name), wanted, have, escape(", ".join(built.versions.get(name, []))))
    console.print(table)
    if missing:
        console.print(f"[red]requested but not installed:[/red] {escape(', '.join(missing))}")
    if extra:
        console.print(f"[yellow]erased but still installed:[/yellow] {escape(', '.join(extra))}")
    if built.unchecked:
        console.print(f"groups not checked: {escape(', '.join(built.unchecked))}")
    if not missing and not extra:
        console.print("[green]every requested package is installed[/green]")


def print_rollback(console: Console, done: Rollback) -> None:
    console.print(
        f"{escape(done.image)} on director {escape(done.director)}: generation"
        f" {done.previous} -> {done.current} (built {done.time or 'before imagespec'}"
        f" from {(done.commit or 'unknown commit')[:10]})"
    )
    if done.nodeset is not None:
        console.print(f"nodeset run for {done.nodeset} node(s) booting {escape(done.image)}")
    console.print("the next apply rebuilds it from the branch unless the change is reverted in git")
