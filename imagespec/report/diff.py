"""Diff and plan reports: rich text grouped by action, markdown for pull requests, JSON."""

from __future__ import annotations

from typing import Any, Callable

from rich.console import Console
from rich.markup import escape

from ..actions import HEAVIEST_FIRST, Action, Status
from ..diff import DiffReport, ImageDiff
from ..render.kinds import LISTS
from ..resolve import DIRECTOR_FILE

MARKDOWN_LIMIT = 60_000
GROUP_TITLES = {
    Action.GENIMAGE: "rebuild (genimage + pack)",
    Action.PACK: "re-pack",
    Action.DEFINE: "re-define",
    Action.SYNC: "sync files only",
}

Code = Callable[[str], str]
LIST_KEYS = frozenset(kind.key for kind in LISTS)


def _plain(text: str) -> str:
    return text


def _join(values: list[str], code: Code) -> str:
    return ", ".join(code(v) for v in values)


def change_lines(image: ImageDiff, code: Code = _plain) -> list[str]:
    """One line per kind of change, e.g. 'pkglist: added vim; removed emacs'."""
    lines = []
    for key, change in image.changes.items():
        if key in LIST_KEYS:
            lines.append(f"{key}: {_delta(change, code)}")
        elif key == "synclist":
            lines.append(f"synclist: {_sync(change, code)}")
        elif key == "litefile":
            lines.append(f"litefile: {_litefile(change, code)}")
        elif key == "attributes":
            for name, pair in change.items():
                lines.append(
                    f"attribute {code(name)}: {_value(pair['old'], code)} -> {_value(pair['new'], code)}"
                )
        elif key == "variants":
            lines += _variants(change, code)
        elif key == "chain":
            lines.append(f"chain: {' -> '.join(change['old'])}  =>  {' -> '.join(change['new'])}")
        elif key == "frozen":
            lines.append(f"frozen: {change['old']} -> {change['new']}")
    return lines


def _variants(change: dict[str, Any], code: Code) -> list[str]:
    """'variants: added debug; changed serial', then one line per attribute of each."""
    parts = [
        f"{what} {_join(change[what], code)}"
        for what in ("added", "removed", "changed")
        if change.get(what)
    ]
    lines = [f"variants: {'; '.join(parts)}"]
    for name, attributes in change.get("attributes", {}).items():
        for attr, pair in attributes.items():
            lines.append(
                f"variant {code(name)}: attribute {code(attr)}:"
                f" {_value(pair['old'], code)} -> {_value(pair['new'], code)}"
            )
    return lines


def _value(value: Any, code: Code) -> str:
    return "(unset)" if value is None else code(str(value))


def _delta(change: dict[str, Any], code: Code) -> str:
    """A list's change: the whole list before and after, or what was added and removed."""
    parts = []
    if "before" in change:
        parts.append(f"chain {_join(change['before'], code)} -> {_join(change['after'], code)}")
    if change.get("added"):
        parts.append(f"added {_join(change['added'], code)}")
    if change.get("removed"):
        parts.append(f"removed {_join(change['removed'], code)}")
    if change.get("content"):
        parts.append(f"content changed: {_join(change['content'], code)}")
    if change.get("reordered"):
        parts.append("same entries in a new order")
    return "; ".join(parts)


def _sync(change: dict[str, Any], code: Code) -> str:
    parts = []
    director: dict[str, str] = change.get("director", {})
    if change.get("added"):
        added = [
            f"{code(p)} (from {DIRECTOR_FILE} {code(director[p])})" if p in director else code(p)
            for p in change["added"]
        ]
        parts.append(f"added {', '.join(added)}")
    if change.get("removed"):
        parts.append(f"removed {_join(change['removed'], code)}")
    for item in change.get("retargeted", []):
        old, new = item["old"], item["new"]
        parts.append(
            f"{code(item['dest'])} now from {_sources(new, code)} ({new['mode']})"
            f" instead of {_sources(old, code)} ({old['mode']})"
        )
    if change.get("content"):
        parts.append(f"source content changed: {_join(change['content'], code)}")
    return "; ".join(parts)


def _sources(how: dict[str, Any], code: Code) -> str:
    """A synclist line's sources, a director file named as one."""
    shown = _join(how["src"], code)
    return f"{DIRECTOR_FILE} {shown}" if how.get("from") == "director" else shown


def _litefile(change: dict[str, Any], code: Code) -> str:
    parts = [f"added {code(r['file'])} {r['options']}" for r in change.get("added", [])]
    parts += [f"removed {code(r['file'])}" for r in change.get("removed", [])]
    parts += [f"{code(r['file'])} {r['old']} -> {r['new']}" for r in change.get("changed", [])]
    return "; ".join(parts)


def _why(image: ImageDiff) -> str:
    notes = []
    if image.via:
        notes.append(f"via {', '.join(image.via)}")
    if image.frozen:
        notes.append("frozen: will not be applied")
    return f" ({'; '.join(notes)})" if notes else ""


def _short(rev: str) -> str:
    return rev[:10] if len(rev) == 40 else rev


FROZEN_TITLE = "frozen: changes not applied"


def _grouped(report: DiffReport) -> list[tuple[str, list[ImageDiff]]]:
    """Changed images by heaviest action; frozen ones apart, last: they are not rebuilt."""
    changed = [
        i for _, i in sorted(report.images.items()) if i.heaviest and i.status != Status.REMOVED
    ]
    groups: list[tuple[str, list[ImageDiff]]] = []
    for group in HEAVIEST_FIRST:
        members = [i for i in changed if i.heaviest == group and not i.frozen]
        if members:
            groups.append((GROUP_TITLES[group], members))
    frozen = [i for i in changed if i.frozen]
    if frozen:
        groups.append((FROZEN_TITLE, frozen))
    return groups


def print_text(console: Console, report: DiffReport) -> None:
    """Grouped by heaviest action, heaviest first; unchanged images only counted."""
    summary = report.summary()
    groups = _grouped(report)
    changed = sum(len(m) for title, m in groups if title != FROZEN_TITLE)
    frozen = sum(len(m) for title, m in groups if title == FROZEN_TITLE)
    console.print(
        f"[bold]{_short(report.base)}..{_short(report.head)}[/bold] on director "
        f"[bold]{report.director}[/bold]: {changed} image(s) change, "
        + (f"{frozen} frozen (not applied), " if frozen else "")
        + f"{len(summary['removed'])} removed, {summary['unchanged']} unchanged"
    )
    for title, members in groups:
        console.print(f"\n[bold]{title}[/bold] ({len(members)})")
        for image in members:
            status = (
                "[green]added[/green]" if image.status == Status.ADDED else ", ".join(image.actions)
            )
            boots = report.booting.get(image.name)
            who = f" [{boots} boot it]" if boots else ""
            console.print(
                f"  [bold]{escape(image.name)}[/bold]: {status}{escape(_why(image))}{escape(who)}"
            )
            for line in change_lines(image):
                console.print(f"      {escape(line)}")
    if summary["removed"]:
        console.print(f"\n[bold]removed from the site[/bold] ({len(summary['removed'])})")
        for name in summary["removed"]:
            console.print(
                f"  {escape(name)}: definition and build outputs are left on the director"
            )
    if report.nodes:
        console.print(f"\n[bold]nodes that boot another image[/bold] ({len(report.nodes)})")
        for move in report.nodes:
            console.print(f"  {escape(str(move))}")


def _md_code(text: str) -> str:
    text = text.replace("`", "'")
    return f"`{text}`"


def render_markdown(report: DiffReport, command: str = "imagespec diff") -> str:
    """Summary table first, per-image details folded; kept under 60,000 characters."""
    summary = report.summary()
    head = [
        f"### imagespec: `{_short(report.base)}..{_short(report.head)}` on director `{report.director}`",
        "",
    ]
    if not report.changed:
        return "\n".join([*head, "No image changes.", ""])
    if report.nodes:
        head += ["| nodes | boot now | booted before |", "|---|---|---|"]
        head += [
            f"| `{m.nodes}` | {_md_code(m.new) if m.new else 'not assigned'} |"
            f" {_md_code(m.old) if m.old else 'not assigned'} |"
            for m in report.nodes
        ]
        head.append("")
    head += ["| what happens | images |", "|---|---|"]
    groups = _grouped(report)
    for title, members in groups:
        head.append(f"| {title} | {len(members)} |")
    if summary["removed"]:
        head.append(f"| removed (left on the director) | {len(summary['removed'])} |")
    head.append(f"| unchanged | {summary['unchanged']} |")
    boots = bool(report.booting)  # a column only for sites that assign nodes
    head += [
        "",
        "| image | status | actions | via |" + (" booted by |" if boots else ""),
        "|---|---|---|---|" + ("---|" if boots else ""),
    ]
    details: list[str] = []
    for _title, members in groups:
        for image in members:
            head.append(
                f"| `{image.name}` | {image.status}{' (frozen)' if image.frozen else ''} | "
                f"{', '.join(image.actions)} | {', '.join(image.via)} |"
                + (f" {report.booting.get(image.name, '')} |" if boots else "")
            )
            details.append(_md_details(image))
    for name in summary["removed"]:
        head.append(f"| `{name}` | removed | | |" + (" |" if boots else ""))
    return _fit("\n".join(head) + "\n", details, command)


def _md_details(image: ImageDiff) -> str:
    lines = [
        f"<details><summary><code>{image.name}</code>: {', '.join(image.actions)}{_why(image)}</summary>",
        "",
    ]
    body = change_lines(image, _md_code) or ["new image: full build"]
    lines += [f"- {line}" for line in body]
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def _fit(head: str, details: list[str], command: str) -> str:
    note_room = 300
    out = head + "\n"
    kept = 0
    for block in details:
        if len(out) + len(block) + note_room > MARKDOWN_LIMIT:
            break
        out += block
        kept += 1
    if kept < len(details):
        out += (
            f"\n> **Truncated:** details of {len(details) - kept} more image(s) are left out to stay "
            f"under GitHub's comment size. Run `{command}` for the full report.\n"
        )
    if len(out) > MARKDOWN_LIMIT:  # even the summary table is too long
        cut = out[: MARKDOWN_LIMIT - note_room].rsplit("\n", 1)[0]
        out = (
            cut
            + f"\n\n> **Truncated:** the summary is too long. Run `{command}` for the full report.\n"
        )
    return out
