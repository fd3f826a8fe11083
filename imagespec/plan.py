"""Desired tree + the director's recorded state + what is really on disk -> actions with reasons.

Pure: the caller gathers the rendered tree, state.json, the hashes of the
files on the director and (for readable reasons) the diff from the commit the
director last applied.  Actions come from the recorded stage digests, so a
failed or interrupted stage is simply still owed.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any, Optional

from .diff import DiffReport, ImageDiff
from .digest import sha256_hex
from .render import RenderedDirector, RenderedFile, RenderedImage
from .state import ImageState, State

DIGEST_OF_ACTION = {"define": "define", "genimage": "build", "pack": "pack"}


@dataclass
class FileOps:
    """What happens to files under install_root."""

    write: dict[str, RenderedFile] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)  # managed, changed on the director
    unmanaged: list[str] = field(default_factory=list)  # not ours, differs: saved, then replaced
    adopt: dict[str, str] = field(default_factory=dict)  # not recorded but already right
    kept: list[str] = field(default_factory=list)  # no longer rendered, changed: left alone

    @property
    def changes(self) -> bool:
        return bool(self.write or self.delete or self.adopt)


@dataclass
class Plan:
    director: str
    builder: str
    commit: str
    files: FileOps
    report: DiffReport  # per image status/actions/changes, reasons in ImageDiff.reasons
    orphans: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)

    @property
    def work(self) -> bool:
        busy = any(d.actions for n, d in self.report.images.items() if n not in self.frozen)
        return busy or self.files.changes

    def as_json(self) -> dict[str, Any]:
        doc = self.report.as_json()
        for name, image in self.report.images.items():
            doc["images"][name]["reasons"] = list(image.reasons)
            doc["images"][name]["frozen"] = name in self.frozen
        return {
            "director": self.director,
            **doc,
            "drift": sorted(self.files.drift),
            "orphans": list(self.orphans),
            "files": {
                "write": sorted(self.files.write),
                "delete": sorted(self.files.delete),
                "kept": sorted(self.files.kept),
            },
        }


def plan_files(
    rendered: RenderedDirector,
    state: State,
    actual: dict[str, Optional[str]],
    skip: set[str],
) -> FileOps:
    """Write what differs, delete what is no longer rendered and still as written, save drift."""
    ops = FileOps()
    for path, file in sorted(rendered.files.items()):
        if path in skip:
            continue
        want = sha256_hex(file.data)
        have = actual.get(path)
        recorded = state.files.get(path)
        if have == want:
            if recorded != want:
                ops.adopt[path] = want
            continue
        if recorded is not None and have is not None and have != recorded:
            ops.drift.append(path)
        elif recorded is None and have is not None:
            ops.unmanaged.append(path)
        ops.write[path] = file
    for path, recorded in sorted(state.files.items()):
        if path in rendered.files or path in skip:
            continue
        have = actual.get(path)
        if have is None or have == recorded:
            ops.delete.append(path)
        else:
            ops.kept.append(path)
    return ops


def owed_actions(
    image: RenderedImage, st: Optional[ImageState], builder: str, rebuild: bool
) -> list[str]:
    """The stages whose recorded digest differs from the desired one (SPEC §6 order)."""
    if builder == "none":
        return []
    done = st.digests if st and st.status != "skipped" else {}
    actions = []
    if done.get("define") != image.digests["define"]:
        actions.append("define")
    genimage = rebuild or done.get("build") != image.digests["build"]
    if genimage:
        actions.append("genimage")
    if genimage or done.get("pack") != image.digests["pack"]:
        actions.append("pack")
    return actions


def _reasons(
    name: str,
    actions: list[str],
    st: Optional[ImageState],
    change: Optional[ImageDiff],
    drift: list[str],
    rebuild: bool,
    builder: str,
) -> list[str]:
    reasons: list[str] = []
    if st is None or st.status == "never" or (st.status == "skipped" and builder != "none"):
        reasons.append("never built" if builder != "none" else "never delivered")
    elif st.status == "failed":
        reasons.append(
            f"failed last time ({st.failed_stage or 'unknown stage'}): {st.error or 'see the log'}"
        )
    if st is not None and st.rolled_back_from is not None and actions:
        reasons.append(
            f"rolled back to generation {st.generation} (from {st.rolled_back_from});"
            " revert the change in git to keep it"
        )
    if rebuild:
        reasons.append("rebuild requested")
    if change is not None and change.changes:
        via = f" via {', '.join(change.via)}" if change.via else ""
        reasons += [f"{key} changed{via}" for key in change.changes]
    reasons += [f"drift in {posixpath.basename(p)}" for p in drift]
    if not reasons and actions:
        reasons.append("recorded digests differ")
    return reasons


def make_plan(
    rendered: RenderedDirector,
    state: State,
    actual: dict[str, Optional[str]],
    builder: str,
    commit: str,
    changes: Optional[DiffReport] = None,
    only: Optional[set[str]] = None,
    rebuild: Optional[set[str]] = None,
) -> Plan:
    """Everything apply would do, and why."""
    rebuild = rebuild or set()
    frozen = sorted(n for n, i in rendered.images.items() if i.frozen)
    skip = _frozen_only_files(rendered, set(frozen))
    if only:
        skip |= set(rendered.files) - {p for n in only for p in rendered.images[n].files}
    files = plan_files(rendered, state, actual, skip)
    images: dict[str, ImageDiff] = {}
    for name, image in sorted(rendered.images.items()):
        st = state.images.get(name)
        actions = owed_actions(image, st, builder, name in rebuild)
        if (only and name not in only) or name in frozen:
            actions = []
        drift = [p for p in image.files if p in files.drift]
        if any(p in files.write for p in image.files) and name not in frozen:
            actions.insert(0, "sync")
        change = changes.images.get(name) if changes else None
        status = "added" if st is None else ("changed" if actions else "unchanged")
        diff = ImageDiff(
            name,
            status,
            actions,
            dict(change.changes) if change else {},
            list(change.via) if change else [],
            image.frozen,
        )
        diff.reasons = _reasons(name, actions, st, change, drift, name in rebuild, builder)
        if name in frozen:
            diff.reasons = ["frozen: never touched by imagespec"]
            if change is not None and change.status != "unchanged":
                diff.reasons.append("frozen: changes are not applied")
        images[name] = diff
    orphans = sorted(set(state.images) - set(rendered.images))
    for name in orphans:
        images[name] = ImageDiff(name, "removed")
        images[name].reasons = [
            "no longer in the site (orphaned); --prune-images removes its definition"
        ]
    report = DiffReport(
        base=state.commit or "none", head=commit, director=rendered.name, images=images
    )
    return Plan(rendered.name, builder, commit, files, report, orphans, frozen)


def _frozen_only_files(rendered: RenderedDirector, frozen: set[str]) -> set[str]:
    """Files used only by frozen images: imagespec leaves them as they are."""
    users: dict[str, set[str]] = {}
    for name, image in rendered.images.items():
        for path in image.files:
            users.setdefault(path, set()).add(name)
    return {p for p, names in users.items() if names <= frozen}
