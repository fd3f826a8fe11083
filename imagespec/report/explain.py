"""`explain IMAGE ENTRY` printed: each event along the chain, then the final view."""

from __future__ import annotations

from rich.console import Console

from ..ops.explain import Explanation
from ..resolve import shown_source


def print_explain(console: Console, result: Explanation) -> None:
    console.print(f"[bold]{result.entry}[/bold] in [bold]{result.image}[/bold]:")
    for e in result.events:
        value = (
            f" = {e.value}" if e.value is not None and e.field in ("attributes", "litefile") else ""
        )
        if e.field == "sync" and e.value:
            value = f" from {shown_source(e.value)}"
        where = f" at {e.origin.pos}" if e.origin.pos.path else ""
        verb = "kept (already present)" if e.action == "kept" else e.action
        console.print(
            f"  {e.field}: {e.key}{value} {verb} by [cyan]{e.origin.level}[/cyan]{where}",
            highlight=False,
        )
    if result.final:
        for line in result.final:
            console.print(f"  [green]final[/green] {line}", highlight=False)
    else:
        console.print("  [yellow]final[/yellow]: not present in the merged image", highlight=False)
