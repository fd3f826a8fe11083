"""Operations on built images of a native director: rollback, and what a root really holds."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..actions import BuildStatus
from ..builders.generations import ImageDirs, Survey, rpm_query, survey, switch
from ..errors import ImagespecError, UsageError
from ..packages import parse_query
from ..render import RenderedImage
from ..runner import CommandError, Effect
from ..state import ImageState, State, now
from .reconcile import Target, lock_for, read_state

Echo = Callable[[str], None]


@dataclass
class Rollback:
    director: str
    image: str
    previous: int
    current: int
    commit: Optional[str]
    time: Optional[str]
    nodeset: Optional[int] = None  # xcat: nodes pointed at the generation's kernel

    def as_json(self) -> dict[str, Any]:
        return {
            "director": self.director,
            "image": self.image,
            "from": self.previous,
            "to": self.current,
            "commit": self.commit,
            "built": self.time,
            "nodeset": self.nodeset,
        }


def _generations(target: Target, what: str) -> None:
    if target.builder.name not in ("native", "xcat"):
        raise UsageError(
            f"{what} needs the native or xcat builder; director '{target.name}' uses"
            f" '{target.builder.name}', which keeps no generations"
        )


def _choose(found: Survey, image: str, to: Optional[int]) -> int:
    current = found.current
    if current is None:
        raise UsageError(f"image {image} has not been built by imagespec on this director")
    older = sorted(n for n in found.generations if n != current)
    if to is None:
        candidates = [n for n in older if n < current]
        if not candidates:
            raise UsageError(f"image {image} has no generation before {current} to go back to")
        return candidates[-1]
    if to == current:
        raise UsageError(f"image {image} already uses generation {to}")
    if to not in found.generations:
        kept = ", ".join(map(str, sorted(found.generations))) or "none"
        raise UsageError(f"image {image} has no generation {to}; kept generations: {kept}")
    return to


def rollback(
    target: Target,
    image: RenderedImage,
    to: Optional[int],
    wait: bool,
    echo: Echo,
) -> Rollback:
    """Switch an image back to a kept generation (one symlink rename) and record it."""
    _generations(target, "rollback")
    if image.frozen:
        raise UsageError(f"image {image.name} is frozen; imagespec never touches it")
    with lock_for(target, wait, 600.0, echo):
        state = read_state(target)
        found = survey(target.transport, ImageDirs(image.rootimgdir))
        number = _choose(found, image.name, to)
        generation = found.generations[number]
        lines: list[str] = []
        switch(target.transport, found.dirs, number, lines.append)
        entry = state.images.setdefault(image.name, ImageState())
        entry.rolled_back_from = found.current
        entry.generation = number
        entry.digests["build"] = generation.digests.get("build")
        entry.digests["pack"] = generation.digests.get("pack")
        entry.status, entry.error, entry.failed_stage = BuildStatus.OK, None, None
        entry.interrupted = False
        entry.commit, entry.time = generation.commit, now()
        entry.nodeset_owed = target.builder.name == "xcat"
        target.transport.write_atomic(target.state_rel, state.to_json())
        nodes = _nodeset(target, state, image, entry, lines, echo)
        if nodes is not None:
            target.transport.write_atomic(target.state_rel, state.to_json())
    assert found.current is not None
    return Rollback(
        target.name,
        image.name,
        found.current,
        number,
        generation.commit,
        generation.time,
        nodes,
    )


def _nodeset(
    target: Target,
    state: State,
    image: RenderedImage,
    entry: ImageState,
    lines: list[str],
    echo: Echo,
) -> Optional[int]:
    """The nodes booting the image get the kernel and initrd of the generation switched to.

    A failure leaves nodeset owed in the record: the next apply runs it.
    """
    if not entry.nodeset_owed:
        return None
    try:
        sets = target.builder.nodeset(image, lines.append) or {}
    except (CommandError, ImagespecError) as exc:
        echo(f"nodeset for {image.name} failed: {exc}; the next apply runs it again")
        return None
    entry.nodeset_owed = False
    state.record_nodeset(sets, entry.generation)
    return len(sets)


@dataclass
class Built:
    director: str
    image: str
    root: str
    installed: list[str]
    requested: list[str]
    erased: list[str]
    unchecked: list[str] = field(default_factory=list)  # @groups: not resolvable from rpm -qa
    versions: dict[str, list[str]] = field(default_factory=dict)  # name -> ["evr.arch", ...]

    @property
    def missing(self) -> list[str]:
        have = set(self.installed)
        return sorted(n for n in self.requested if n not in have)

    @property
    def still_installed(self) -> list[str]:
        return sorted(set(self.erased) & set(self.installed))

    def as_json(self) -> dict[str, Any]:
        return {
            "director": self.director,
            "image": self.image,
            "root": self.root,
            "installed": self.installed,
            "requested": self.requested,
            "missing": self.missing,
            "erased": self.erased,
            "erased_but_installed": self.still_installed,
            "unchecked": self.unchecked,
            "versions": self.versions,
        }


def _requested(image: RenderedImage) -> tuple[list[str], list[str], list[str]]:
    resolved = image.resolved
    erased = sorted(set(resolved.values("erase")) | set(resolved.values("erase_first")))
    names, groups = set(), set()
    for entry in [*resolved.values("packages"), *resolved.values("otherpkgs")]:
        if entry.startswith("#"):
            continue
        if entry.startswith("@"):
            groups.add(entry)
        else:
            names.add(posixpath.basename(entry))
    return sorted(names - set(erased)), erased, sorted(groups)


def built_packages(target: Target, image: RenderedImage) -> Built:
    """rpm -qa of the built root on the director, next to what the profiles request."""
    root = posixpath.join(image.rootimgdir, "rootimg")
    try:
        out = target.transport.run(["sh", "-c", rpm_query(root)], effect=Effect.READ).output
    except CommandError as exc:
        if exc.returncode == 3:
            raise ImagespecError(
                f"image {image.name} is not built on director {target.name}"
                f" (no rpm database under {root}); run imagespec apply"
            ) from None
        raise
    requested, erased, groups = _requested(image)
    versions: dict[str, list[str]] = {}
    for package in parse_query(out):
        versions.setdefault(package.name, []).append(f"{package.evr}.{package.arch}")
    versions = {name: sorted(found) for name, found in sorted(versions.items())}
    return Built(
        target.name, image.name, root, sorted(versions), requested, erased, groups, versions
    )
