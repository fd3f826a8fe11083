"""`rollout`: the batches, what booted, what failed, and what to do next."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from ..ops.rollout import Rollout


def _nodes(names: list[str]) -> str:
    return escape(", ".join(names)) if names else "none"


def print_rollout(console: Console, done: Rollout, again: str) -> None:
    """The outcome (or, for a dry run, the batches); `again` is the command to go on with."""
    due = sum(len(b.nodes) for b in done.batches) + len(done.not_rebooted)
    head = f"[bold]rollout on director {escape(done.director)}[/bold]"
    settings = (
        f"canary {done.canary}, batch {escape(done.batch)}, max failed {done.max_failed},"
        f" wait {done.wait_boot:g} s"
    )
    if done.dry_run:
        console.print(f"{head} (dry run): {due} node(s) to reboot ({settings})")
        for number, batch in enumerate(done.batches, 1):
            kind = " (canary)" if batch.canary else ""
            console.print(f"  batch {number}{kind}: {_nodes(batch.nodes)}")
    else:
        verdict = "[green]done[/green]" if done.ok else "[red]not done[/red]"
        console.print(f"{head}: {verdict} ({settings})")
        console.print(f"  booted: {len(done.booted)}  failed: {len(done.failed)}")
    if done.resumed:
        console.print(f"  came up after an earlier rollout: {_nodes(done.resumed)}")
    if done.current:
        console.print(f"  already on their image's generation: {len(done.current)} node(s)")
    for node, why in sorted(done.skipped.items()):
        console.print(f"  [yellow]skipped[/yellow] {escape(node)}: {escape(why)}")
    for batch in done.batches:
        for node, why in batch.skipped.items():
            console.print(f"  [yellow]skipped[/yellow] {escape(node)}: {escape(why)}")
    for node, why in done.failed.items():
        console.print(f"  [red]failed[/red] {escape(node)}: {escape(why)}")
    if done.stopped:
        console.print(f"[red]stopped[/red]: {escape(done.stopped)}")
        console.print(f"  not rebooted: {_nodes(done.not_rebooted)}")
    if done.failed or done.stopped:
        images = done.images(done.booted + list(done.failed))
        for image in images:
            console.print(
                f"  to go back: imagespec rollback {escape(image)} --director"
                f" {escape(done.director)} (or revert the change in git and apply),"
                f" then {escape(again)} again"
            )
        console.print(f"  to go on once the failed nodes are fixed: {escape(again)}")
