"""Printing plans and apply results: rich tables for people, JSON for tools."""

from __future__ import annotations

import posixpath
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..actions import Action, ApplyResult, Status
from ..ops.reconcile import ApplyOutcome, ImageOutcome
from ..plan import Plan

RESULT_STYLE = {
    ApplyResult.DONE: "green",
    ApplyResult.FAILED: "red",
    ApplyResult.INTERRUPTED: "red",
    ApplyResult.UP_TO_DATE: "dim",
    ApplyResult.FROZEN: "yellow",
}


def print_plan(console: Console, plan: Plan) -> None:
    files = plan.files
    console.print(
        f"[bold]plan for director {plan.director}[/bold] ({plan.builder} builder): "
        f"{str(plan.report.base)[:10]} -> {plan.commit[:10]}"
    )
    print_offline(console, plan)
    console.print(
        f"files: {len(files.write)} to write, {len(files.delete)} to delete"
        + (f", {len(files.drift)} drifted (saved before overwrite)" if files.drift else "")
        + (
            f", {len(files.unmanaged)} not written by imagespec (saved before overwrite)"
            if files.unmanaged
            else ""
        )
        + (
            f", {len(files.kept)} no longer rendered but changed on the director (left alone)"
            if files.kept
            else ""
        )
    )
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("image", no_wrap=True)  # a name is never split; the reasons wrap
    table.add_column("actions")
    table.add_column("why")
    busy = 0
    for name, image in sorted(plan.report.images.items()):
        owed = [*image.actions, *(["nodeset"] if name in plan.nodeset else [])]
        if not owed and image.status != Status.REMOVED and name not in plan.frozen:
            continue
        busy += 1
        frozen = name in plan.frozen
        actions = ", ".join(owed) or ("frozen" if frozen else image.status)
        table.add_row(escape(name), actions, escape(_why(image.reasons, frozen)))
    if busy:
        console.print(table)
    for note in plan.notes:
        console.print(f"[yellow]note[/yellow]: {escape(note)}")
    up_to_date = len(plan.report.images) - busy
    for move in plan.report.nodes:
        console.print(f"nodeset owed: {escape(str(move))}")
    console.print(f"{up_to_date} image(s) up to date" + ("" if plan.work else "; nothing to do"))


def print_offline(console: Console, plan: Plan) -> None:
    """What an offline plan read, and what it could not tell without the director."""
    if plan.offline is None:
        return
    console.print(
        f"[yellow]offline[/yellow]: planned from the state in {escape(plan.offline.state)},"
        " without the director; it cannot tell:"
    )
    for unknown in plan.offline.unknown:
        console.print(f"  - {escape(unknown)}")


def offline_markdown(plan: Plan) -> str:
    """The same for a pull request comment: empty for a plan made against the director."""
    if plan.offline is None:
        return ""
    lines = [
        f"> Planned offline from the recorded state `{plan.offline.state}`, without the"
        " director. It cannot tell:",
        *(f"> - {unknown}" for unknown in plan.offline.unknown),
        "",
    ]
    return "\n".join(lines) + "\n"


def _why(reasons: list[str], frozen: bool) -> str:
    """The reasons, once "frozen" is said in the actions column: not "frozen: a; frozen: b"."""
    if frozen:
        reasons = [r.removeprefix("frozen: ") for r in reasons]
    return "; ".join(reasons)


def _result(image: ImageOutcome, dry_run: bool = False) -> str:
    """The result word; an image whose files were only synced says so, not "up to date",
    and a dry run's image "would run", never "done"."""
    if image.result == ApplyResult.UP_TO_DATE and Action.SYNC in image.actions:
        return "[green]synced[/green]"
    style = RESULT_STYLE.get(image.result, "")
    shown = "would run" if dry_run and image.result == ApplyResult.DONE else str(image.result)
    return f"[{style}]{shown}[/{style}]" if style else shown


def print_outcome(console: Console, outcome: ApplyOutcome, verbose: bool = False) -> None:
    """One short row per image; failures, then log paths, on lines of their own below.

    Names never wrap (no_wrap); the long values (errors, log paths) are not
    columns, so a 9-image apply stays a dozen lines at 80 columns.  Logs of
    failed images are always shown, the others' with -v."""
    table = Table(
        title=f"director {escape(outcome.director)} at {outcome.commit[:10]}",
        title_justify="left",
        box=None,
        header_style="bold",
        pad_edge=False,
    )
    table.add_column("image", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("actions")
    table.add_column("time", no_wrap=True, justify="right")
    for image in outcome.images:
        seconds = f"{image.seconds:.1f}s" if image.seconds else ""
        table.add_row(
            escape(image.name), _result(image, outcome.dry_run), ", ".join(image.actions), seconds
        )
    console.print(table)
    print_failures(console, outcome, verbose)
    if outcome.dry_run:
        print_would(console, outcome)
        return
    _print_logs(console, outcome, verbose)
    console.print(_summary(outcome))
    for move in outcome.nodes_set:
        console.print(f"nodeset {escape(move.nodes)} osimage={escape(move.new or '')}")
    for problem in outcome.nodes_failed:
        console.print(f"[red]nodes not set[/red]: {escape(problem)} (the next apply retries)")


def print_would(console: Console, outcome: ApplyOutcome) -> None:
    """A dry run's summary: what apply would do, never "done" or "written"."""
    would = [i for i in outcome.images if i.result == ApplyResult.DONE]
    unchanged = sum(
        1 for i in outcome.images if i.result in (ApplyResult.UP_TO_DATE, ApplyResult.FROZEN)
    )
    console.print(
        f"dry run, nothing was changed: would apply {len(would)} image(s)"
        f" ({len(with_build(would))} with a build), {unchanged} unchanged;"
        f" would write {outcome.files_written} file(s), delete {outcome.files_deleted}"
    )


def with_build(images: list[Any]) -> list[Any]:
    """The images whose actions include a build (genimage or pack)."""
    return [i for i in images if {"genimage", "pack"} & {str(a) for a in i.actions}]


def print_failures(console: Console, outcome: ApplyOutcome, verbose: bool) -> None:
    """Each failed image's cause on lines of its own, under the table (a narrow column
    would bury it), with its log; the failed command only with -v."""
    for image in outcome.failed:
        console.print(
            f"[red]{escape(image.name)}: {image.result}[/red] in {escape(image.error or '')}"
        )
        if image.log:
            console.print(f"  log: {escape(image.log)}")
        if image.command and verbose:
            console.print(f"  command: {escape(image.command)}")
        elif image.command:
            console.print("  (-v shows the command)")


def _print_logs(console: Console, outcome: ApplyOutcome, verbose: bool) -> None:
    """Every build log with -v; else the one directory that holds them."""
    logs = [i.log for i in outcome.images if i.log and i.result != ApplyResult.FAILED]
    if not logs:
        return
    if verbose:
        for image in outcome.images:
            if image.log and image.result != ApplyResult.FAILED:
                console.print(f"log of {escape(image.name)}: {escape(image.log)}")
        return
    where = posixpath.dirname(posixpath.dirname(logs[0]))  # .../logs/<image>/<time>.log
    console.print(f"build logs: {escape(where)}/<image>/ (-v lists each)")


def _summary(outcome: ApplyOutcome) -> str:
    """'8 done, 1 synced, 1 failed, 1 unchanged; ...': a synced image is not unchanged."""
    images = outcome.images
    synced = sum(1 for i in images if "synced" in _result(i))
    unchanged = sum(1 for i in images if i.result in (ApplyResult.UP_TO_DATE, ApplyResult.FROZEN))
    done = sum(1 for i in images if i.result == ApplyResult.DONE)
    return (
        f"{done} done, "
        + (f"{synced} synced, " if synced else "")
        + f"{len(outcome.failed)} failed, {unchanged - synced} unchanged; "
        f"{outcome.files_written} file(s) written, {outcome.files_deleted} deleted"
        + (f"; pruned {', '.join(outcome.pruned)}" if outcome.pruned else "")
    )


def outcome_json(plan: Plan, outcome: ApplyOutcome) -> dict[str, Any]:
    return {
        "director": outcome.director,
        "commit": outcome.commit,
        "files": {
            "written": outcome.files_written,
            "deleted": outcome.files_deleted,
            "drift_saved": outcome.drift_saved,
        },
        "images": {
            i.name: {
                "result": i.result,
                "actions": i.actions,
                "seconds": round(i.seconds, 3),
                "error": i.error,
                "log": i.log,
                "command": i.command,
            }
            for i in outcome.images
        },
        "pruned": outcome.pruned,
        "nodes": {
            "set": [m.as_json() for m in outcome.nodes_set],
            "failed": list(outcome.nodes_failed),
        },
        "plan": plan.as_json(),
    }
