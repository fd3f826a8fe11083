"""`adopt`: per image, the stages recorded as done and why the others were not."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from ..ops.adopt import AdoptReport


def print_adopt(console: Console, report: AdoptReport) -> None:
    dry = " (dry run: nothing recorded)" if report.dry_run else ""
    console.print(
        f"[bold]adopt on director {escape(report.director)}[/bold]"
        f" at {escape(report.commit[:10])}{dry}"
    )
    for done in report.images:
        if done.adopted:
            stages = ", ".join(done.stages)
            console.print(
                f"  [green]{escape(done.image)}[/green]: adopted ({stages}) as generation"
                f" {done.generation}"
            )
        else:
            console.print(f"  [yellow]{escape(done.image)}[/yellow]: not adopted")
        for reason in done.reasons:
            console.print(f"      {escape(reason)}")
    adopted = sum(1 for d in report.images if d.adopted)
    console.print(
        f"{adopted} of {len(report.images)} image(s) adopted;"
        " `imagespec plan` shows what the first apply still does"
    )
