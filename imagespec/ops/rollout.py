"""`imagespec rollout`: reboot nodes onto their image's current generation, in guarded batches.

apply points nodes at a new generation (nodeset) but never reboots them.  A
rollout reboots the nodes that do not yet run their image's current
generation: a canary batch first, then batches; after each batch it waits
until xCAT reports the nodes booted (nodelist.status `booted` with a
statustime after the reboot), and stops once more nodes failed than allowed.

It holds the director's lock for the whole run, and every node's progress is
in state.json (`boots`) before and after each reboot: a rollout killed
mid-batch is resumed by the next one, which first asks xCAT whether the nodes
it was waiting for came up meanwhile.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..actions import BuildStatus
from ..builders.xcat import XcatBuilder
from ..builders.xcatnodes import (
    UNREACHABLE,
    booted_since,
    director_time,
    nodestat,
    read_nodes,
    rpower_boot,
)
from ..errors import ImagespecError, UsageError
from ..model import RolloutSettings, batch_size
from ..runner import CommandError
from ..state import NodeBoot, State, now
from .reconcile import StateBook, Target, lock_for, read_state

Echo = Callable[[str], None]
NODE_ATTRS = ["provmethod", "groups", "status", "statustime"]


@dataclass
class RolloutOptions:
    image: Optional[str] = None  # only the nodes of this image (or variant)
    nodes: Optional[str] = None  # only these nodes (an xCAT noderange)
    canary: Optional[int] = None  # None: the director's rollout settings
    batch: Optional[str] = None
    max_failed: Optional[int] = None
    wait_boot: Optional[float] = None
    dry_run: bool = False
    wait: bool = False  # wait for a running apply or rollout instead of failing
    poll: Optional[float] = None  # seconds between status reads (default from wait_boot)


@dataclass
class Batch:
    nodes: list[str]
    canary: bool = False
    booted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # down when its turn came

    def as_json(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes,
            "canary": self.canary,
            "booted": self.booted,
            "failed": self.failed,
            "skipped": self.skipped,
        }


@dataclass
class Rollout:
    director: str
    dry_run: bool
    canary: int
    batch: str
    max_failed: int
    wait_boot: float
    targets: dict[str, tuple[str, int]] = field(default_factory=dict)  # node -> (osimage, gen)
    batches: list[Batch] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # node -> why it is left alone
    current: list[str] = field(default_factory=list)  # already run their image's generation
    resumed: list[str] = field(default_factory=list)  # came up after an earlier rollout stopped
    stopped: Optional[str] = None
    not_rebooted: list[str] = field(default_factory=list)

    @property
    def failed(self) -> dict[str, str]:
        return {n: why for b in self.batches for n, why in b.failed.items()}

    @property
    def booted(self) -> list[str]:
        return [n for b in self.batches for n in b.booted]

    @property
    def ok(self) -> bool:
        return not self.failed and self.stopped is None

    def images(self, nodes: list[str]) -> list[str]:
        return sorted({self.targets[n][0] for n in nodes if n in self.targets})

    def as_json(self) -> dict[str, Any]:
        return {
            "director": self.director,
            "dry_run": self.dry_run,
            "settings": {
                "canary": self.canary,
                "batch": self.batch,
                "max_failed": self.max_failed,
                "wait_boot": self.wait_boot,
            },
            "targets": {n: {"image": i, "generation": g} for n, (i, g) in self.targets.items()},
            "batches": [b.as_json() for b in self.batches],
            "booted": self.booted,
            "failed": self.failed,
            "skipped": dict(sorted(self.skipped.items())),
            "current": self.current,
            "resumed": self.resumed,
            "stopped": self.stopped,
            "not_rebooted": self.not_rebooted,
        }


def natural(name: str) -> list[Any]:
    """cn2 before cn10: digits compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def batches_of(nodes: list[str], canary: int, batch: str) -> list[Batch]:
    """The canary batch, then batches of `batch` nodes (or percent of all of them)."""
    size, percent = batch_size(batch)
    if percent:
        size = max(1, math.ceil(len(nodes) * size / 100))
    out = [Batch(nodes[:canary], canary=True)] if canary and nodes else []
    rest = nodes[canary:] if canary else nodes
    out += [Batch(rest[i : i + size]) for i in range(0, len(rest), size)]
    return out


class RolloutRun:
    """One rollout on one director, under its lock."""

    def __init__(self, target: Target, options: RolloutOptions, echo: Echo):
        builder = target.builder
        if not isinstance(builder, XcatBuilder):
            raise UsageError(
                f"rollout needs the xcat builder; director '{target.name}' uses"
                f" '{builder.name}', whose nodes imagespec does not boot"
            )
        self.target, self.builder, self.echo = target, builder, echo
        self.options = options
        settings: RolloutSettings = target.view.docs.site.model.directors[target.name].rollout
        self.settings = settings
        batch = options.batch if options.batch is not None else str(settings.batch)
        try:
            batch_size(batch)
        except ValueError as exc:
            raise UsageError(f"--batch: {exc}") from None
        self.report = Rollout(
            target.name,
            options.dry_run,
            options.canary if options.canary is not None else settings.canary,
            batch,
            options.max_failed if options.max_failed is not None else settings.max_failed,
            options.wait_boot if options.wait_boot is not None else float(settings.wait_boot),
        )
        wait = self.report.wait_boot
        self.poll = options.poll if options.poll is not None else min(10.0, max(0.2, wait / 30))
        self.book: Optional[StateBook] = None
        self.lines: list[str] = []

    # ------------------------------------------------------------ choosing

    def run(self) -> Rollout:
        target = self.target
        with lock_for(target, self.options.wait, 600.0, self.echo):
            self.book = StateBook(target, read_state(target))
            nodes = read_nodes(target.transport, NODE_ATTRS, self.options.nodes)
            if self.options.nodes and not nodes:
                raise UsageError(f"xCAT knows no node in {self.options.nodes!r}")
            self._resume(nodes)
            due = self._choose(nodes)
            self.report.batches = batches_of(due, self.report.canary, self.report.batch)
            if self.options.dry_run:
                return self.report
            for number, batch in enumerate(self.report.batches, 1):
                self._reboot(batch, number)
                failed = len(self.report.failed)
                if failed > self.report.max_failed:
                    rest = [n for b in self.report.batches[number:] for n in b.nodes]
                    self.report.not_rebooted = rest
                    self.report.stopped = (
                        f"{failed} node(s) failed, more than --max-failed"
                        f" {self.report.max_failed}; stopped after batch {number}"
                        f" of {len(self.report.batches)}"
                    )
                    self.report.batches = self.report.batches[:number]
                    break
        return self.report

    def _state(self) -> State:
        assert self.book is not None
        return self.book.state

    def _resume(self, nodes: dict[str, dict[str, str]]) -> None:
        """Nodes an earlier rollout rebooted and stopped waiting for: booted since?"""
        state = self._state()
        changed = False
        for node, boot in sorted(state.boots.items()):
            if boot.rebooting is None or node not in nodes:
                continue
            if booted_since(nodes[node], boot.rebooting):
                boot.running_image, boot.running_generation = boot.image, boot.generation
                boot.booted, boot.rebooting, boot.error = now(), None, None
                self.report.resumed.append(node)
                changed = True
        if changed:
            self._save()

    def _choose(self, nodes: dict[str, dict[str, str]]) -> list[str]:
        """The nodes to reboot, in order; the others are current or skipped with a reason."""
        state, report = self._state(), self.report
        owners = self.target.rendered.osimages  # osimage -> the image it belongs to
        reserved = set(self.settings.reserved)
        wanted = self.options.image
        if wanted is not None and wanted not in owners:
            raise UsageError(f"image {wanted} is not defined by imagespec on '{report.director}'")
        due = []
        for node in sorted(nodes, key=natural):
            attrs = nodes[node]
            osimage = attrs.get("provmethod", "")
            image = owners.get(osimage)
            if wanted is not None and wanted not in (osimage, image):
                continue
            if image is None:
                if self.options.nodes:
                    report.skipped[node] = (
                        f"boots {osimage or 'no osimage'}, not an image imagespec builds here"
                    )
                continue
            why = self._not_ready(image, osimage)
            groups = set(attrs.get("groups", "").split(",")) & reserved
            if groups:
                why = f"reserved (group {', '.join(sorted(groups))})"
            if why:
                report.skipped[node] = why
                continue
            generation = state.images[image].generation
            report.targets[node] = (osimage, generation)
            boot = state.boots.get(node)
            if boot is not None and boot.runs(osimage, generation):
                report.current.append(node)
            else:
                due.append(node)
        return due

    def _not_ready(self, image: str, osimage: str) -> Optional[str]:
        """Why the nodes booting `osimage` (`image` or one of its variants) cannot be
        rolled out now, if they cannot."""
        entry = self._state().images.get(image)
        if image in self.target.rendered.images and self.target.rendered.images[image].frozen:
            return f"image {image} is frozen; imagespec does not know its generation"
        if entry is None or entry.status != BuildStatus.OK:
            status = entry.status if entry else "never built"
            return f"image {image} is not built ({status}); run imagespec apply first"
        if entry.nodeset_owed:
            return f"nodeset is owed for image {image}; run imagespec apply first"
        if osimage != image and osimage not in entry.variants:
            return f"variant {osimage} is not defined yet; run imagespec apply first"
        return None

    # ------------------------------------------------------------ rebooting

    def _reboot(self, batch: Batch, number: int) -> None:
        report, transport = self.report, self.target.transport
        kind = " (canary)" if batch.canary else ""
        self.echo(f"batch {number}/{len(report.batches)}{kind}: {', '.join(batch.nodes)}")
        states = nodestat(transport, batch.nodes)
        for node in batch.nodes:
            if states.get(node) == UNREACHABLE:
                batch.skipped[node] = f"down (nodestat: {UNREACHABLE})"
                self.echo(f"  {node}: skipped, down (nodestat: {UNREACHABLE})")
        go = [n for n in batch.nodes if n not in batch.skipped]
        if not go:
            return
        self._nodeset_unset(go)
        since = director_time(transport)
        state = self._state()
        for node in go:
            osimage, generation = report.targets[node]
            boot = state.boots.setdefault(node, NodeBoot(osimage, generation))
            boot.rebooting, boot.error = since, None
        self._save()
        try:
            refused = rpower_boot(transport, go, self.lines.append)
        except CommandError as exc:
            refused = dict.fromkeys(go, f"rpower: {str(exc).splitlines()[0][:200]}")
        for node, why in refused.items():
            self._failed(batch, node, f"rpower: {why}", keep_waiting=False)
        self._wait(batch, [n for n in go if n not in refused], since)

    def _nodeset_unset(self, nodes: list[str]) -> None:
        """nodeset for nodes imagespec never pointed at their image's current generation
        (assigned by hand, or before imagespec kept node records)."""
        state, report = self._state(), self.report
        groups: dict[str, list[str]] = {}
        for node in nodes:
            osimage, generation = report.targets[node]
            boot = state.boots.get(node)
            if (
                boot is None
                or boot.nodeset is None
                or (boot.image, boot.generation)
                != (
                    osimage,
                    generation,
                )
            ):
                groups.setdefault(osimage, []).append(node)
        for osimage, members in sorted(groups.items()):
            self.echo(f"  nodeset {','.join(members)} osimage={osimage} (not recorded before)")
            sets = self.builder.nodeset_range(",".join(members), osimage, self.lines.append)
            state.record_nodeset(sets, report.targets[members[0]][1])
        if groups:
            self._save()

    def _wait(self, batch: Batch, nodes: list[str], since: str) -> None:
        """Until every node reports booted after `since`, or wait_boot seconds pass."""
        waiting = list(nodes)
        start = time.monotonic()
        deadline = start + self.report.wait_boot
        seen: dict[str, dict[str, str]] = {}
        while waiting:
            seen = read_nodes(self.target.transport, ["status", "statustime"], ",".join(waiting))
            for node in list(waiting):
                if booted_since(seen.get(node, {}), since):
                    waiting.remove(node)
                    self._booted(batch, node, time.monotonic() - start)
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(min(self.poll, max(0.0, deadline - time.monotonic())))
        for node in waiting:
            status = seen.get(node, {}).get("status") or "unknown"
            self._failed(
                batch,
                node,
                f"did not report booted within {self.report.wait_boot:g} s (status: {status})",
                keep_waiting=True,
            )

    def _booted(self, batch: Batch, node: str, seconds: float) -> None:
        osimage, generation = self.report.targets[node]
        boot = self._state().boots[node]
        boot.running_image, boot.running_generation = osimage, generation
        boot.booted, boot.rebooting, boot.error = now(), None, None
        batch.booted.append(node)
        self._save()
        self.echo(f"  {node}: booted {osimage} generation {generation} after {seconds:.0f} s")

    def _failed(self, batch: Batch, node: str, why: str, keep_waiting: bool) -> None:
        """A failed node; one that may still come up keeps its reboot time for the next run."""
        boot = self._state().boots[node]
        boot.error = why[:300]
        if not keep_waiting:
            boot.rebooting = None
        batch.failed[node] = why
        self._save()
        self.echo(f"  {node}: FAILED: {why}")

    def _save(self) -> None:
        assert self.book is not None
        self.book.save()


def rollout(target: Target, options: RolloutOptions, echo: Echo) -> Rollout:
    """Reboot the due nodes of a director in batches; see the module's docstring."""
    try:
        return RolloutRun(target, options, echo).run()
    except CommandError as exc:
        raise ImagespecError(f"rollout stopped: {exc}") from None
