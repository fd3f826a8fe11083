"""`status`: what the director has, what drifted, what is orphaned or failed."""

from __future__ import annotations

import json
from typing import Any, Optional

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..actions import BuildStatus
from ..plan import Plan
from ..state import State
from ..transport.lock import holder_text


def status_json(
    target: Any, state: State, plan: Plan, in_sync: bool, lock: Optional[dict[str, Any]] = None
) -> dict[str, Any]:
    doc = _status_doc(target, state, plan, in_sync)
    if plan.director_files:  # only then: sites without director files keep their shape
        doc["director_files"] = dict(plan.director_files)
    doc["lock"] = lock
    doc["state"] = recorded(state)
    return doc


def recorded(state: State) -> dict[str, Any]:
    """The state as the director records it (state.json), which `plan --offline --state`
    reads back from a saved copy of this output."""
    doc: dict[str, Any] = json.loads(state.to_json())
    return doc


def broken_status_json(
    target: Any, state: State, commit: str, why: str, lock: Optional[dict[str, Any]]
) -> dict[str, Any]:
    """status when the site at `commit` does not load: the director's record only (the
    same keys, nothing owed computed), with `site_error` saying why."""
    images = {
        name: {**_image_doc(entry), "owed": []} for name, entry in sorted(state.images.items())
    }
    return {
        "director": target.name,
        "in_sync": False,
        "applied": state.commit,
        "target": commit,
        "time": state.time,
        "images": images,
        "nodes": {},
        "never_applied": [],
        "drift": [],
        "orphans": [],
        "failed": sorted(n for n, e in state.images.items() if e.status == BuildStatus.FAILED),
        "site_error": why,
        "lock": lock,
        "state": recorded(state),
    }


def _image_doc(entry: Any) -> dict[str, Any]:
    return {
        "status": entry.status,
        "generation": entry.generation,
        "commit": entry.commit,
        "time": entry.time,
        "error": entry.error,
        "interrupted": entry.interrupted,
        "stage": entry.failed_stage,
    }


def _status_doc(target: Any, state: State, plan: Plan, in_sync: bool) -> dict[str, Any]:
    return {
        "director": target.name,
        "in_sync": in_sync,
        "applied": state.commit,
        "target": plan.commit,
        "time": state.time,
        "images": {
            name: {
                **_image_doc(entry),
                "owed": [
                    *(plan.report.images[name].actions if name in plan.report.images else []),
                    *(["nodeset"] if name in plan.nodeset else []),
                ],
            }
            for name, entry in sorted(state.images.items())
        },
        "nodes": plan.running,
        "never_applied": sorted(set(plan.report.images) - set(state.images) - set(plan.orphans)),
        "drift": sorted(plan.files.drift),
        "orphans": list(plan.orphans),
        "failed": sorted(n for n, e in state.images.items() if e.status == BuildStatus.FAILED),
    }


def print_status(
    console: Console,
    target: Any,
    state: State,
    plan: Plan,
    in_sync: bool,
    lock: Optional[dict[str, Any]] = None,
) -> None:
    doc = status_json(target, state, plan, in_sync, lock)
    verdict = "[green]in sync[/green]" if in_sync else "[yellow]not in sync[/yellow]"
    applied = (state.commit or "nothing")[:10]
    console.print(
        f"[bold]director {target.name}[/bold] ({target.transport.description}): {verdict}; applied {applied}, target {plan.commit[:10]}"
    )
    print_lock(console, lock)
    console.print(_images_table(console, doc, plan))
    print_failed(console, target, doc)
    for name, seen in doc["nodes"].items():
        console.print(f"nodes of {escape(name)}: {running_text(seen)}")
    for path in doc["drift"]:
        console.print(
            f"[yellow]drift[/yellow]: {escape(path)} was changed on the director (apply saves it, then overwrites)"
        )
    for name, reasons in plan.director_files.items():
        for reason in reasons:
            console.print(f"[yellow]re-pack[/yellow]: {escape(name)}: {escape(reason)}")
    for name in doc["orphans"]:
        console.print(
            f"[yellow]orphaned[/yellow]: {escape(name)} is no longer in the site (apply --prune-images removes its definition)"
        )


WIDE = 100  # the time column is shown from this width on


def _images_table(console: Console, doc: dict[str, Any], plan: Optional[Plan]) -> Table:
    """One short row per image; names never wrap, errors go below the table, and the
    build time only where there is room for it (a pipe or CI log is 200 columns wide)."""
    wide = console.width >= WIDE
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("image", no_wrap=True)
    table.add_column("status")
    table.add_column("gen", no_wrap=True, justify="right")
    table.add_column("commit", no_wrap=True)
    if wide:
        table.add_column("time", no_wrap=True)
    table.add_column("owed")
    for name, entry in doc["images"].items():
        time = [entry["time"] or ""] if wide else []
        status = "interrupted" if entry["interrupted"] else entry["status"]
        table.add_row(
            escape(name),
            escape(status),
            str(entry["generation"]),
            (entry["commit"] or "")[:10],
            *time,
            ", ".join(entry["owed"]),
        )
    if plan is None:  # the site does not load: only what the director recorded
        return table
    for name in doc["never_applied"]:
        status = "frozen" if name in plan.frozen else "never applied"
        owed = ", ".join(plan.report.images[name].actions)
        table.add_row(escape(name), status, "", "", *([""] if wide else []), owed)
    return table


def print_broken_status(console: Console, target: Any, doc: dict[str, Any]) -> None:
    """status when the site at the target commit does not load: what the director has."""
    applied = (doc["applied"] or "nothing")[:10]
    console.print(
        f"[bold]director {escape(target.name)}[/bold] ({escape(target.transport.description)}):"
        f" applied {applied}"
    )
    console.print(
        f"[red]the site at {doc['target'][:10]} does not load[/red]: {escape(doc['site_error'])};"
        " what is owed, drift and orphans are unknown until it does (imagespec validate)"
    )
    print_lock(console, doc["lock"])
    console.print(_images_table(console, doc, None))
    print_failed(console, target, doc)


def print_lock(console: Console, lock: Optional[dict[str, Any]]) -> None:
    if lock is not None:
        console.print(f"[yellow]lock[/yellow]: {escape(holder_text(lock))}")


def print_failed(console: Console, target: Any, doc: dict[str, Any]) -> None:
    """Each failed image's recorded cause on a line of its own, and where its logs are."""
    for name in doc["failed"]:
        entry = doc["images"][name]
        how = "interrupted" if entry["interrupted"] else "failed"
        stage = f" in {entry['stage']}" if entry.get("stage") else ""
        console.print(f"[red]{how}[/red]: {escape(name)}{stage}: {escape(entry['error'] or '')}")
        console.print(f"  logs: {escape(log_dir(target, name))}")


def log_dir(target: Any, image: str) -> str:
    """Where apply keeps an image's logs on the director."""
    return f"{target.transport.description}/{target.meta}/logs/{image}/"


def running_text(seen: dict[str, Any]) -> str:
    """'4 nodes: 2 on generation 3, 1 on 2, 1 unknown; 2 behind (imagespec rollout)'."""
    parts = [f"{count} on generation {gen}" for gen, count in reversed(seen["running"].items())]
    if seen["unknown"]:
        parts.append(f"{seen['unknown']} unknown")
    text = f"{seen['nodes']} node{'s' * (seen['nodes'] != 1)}: {', '.join(parts)}"
    if seen["behind"]:
        text += f"; {seen['behind']} not on generation {seen['generation']} (imagespec rollout)"
    return text
