"""Looking into a director's images: build logs, kept generations, and what a rebuild changed.

`logs`: the build logs apply writes under `.imagespec/logs/<image>/`, one per
build, named by the build's start time (and written stage by stage, so a
running apply's log can be followed until the apply releases the lock).
`generations`: the kept generations of an image (builders/generations.py).
`diff --built`: the packages of two generations compared, from the manifests
pack writes (packages.json), else from the generation's rpm database.
"""

from __future__ import annotations

import json
import posixpath
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..builders.generations import ImageDirs, Survey, q, rpm_query, survey
from ..errors import ImagespecError, UsageError, visible
from ..packages import (
    MANIFEST_FILE,
    ManifestError,
    Package,
    PackageChanges,
    compare_packages,
    parse_manifest,
    parse_query,
)
from ..render import RenderedImage
from ..render.layout import join
from ..runner import Effect
from .reconcile import Target

Echo = Callable[[str], None]
_sleep = time.sleep  # between polls of --follow (tests replace it)
LOG_NAME = re.compile(r"^\d{4}-\d\d-\d\dT\d{6}Z\.log$")


# ------------------------------------------------------------------ logs


@dataclass
class BuildLog:
    number: int  # 1 = the oldest log kept
    name: str
    path: str  # on the director, as the transport describes it

    @property
    def time(self) -> str:
        """The build's start time, from the file name (2024-01-01T000000Z)."""
        stamp = self.name[: -len(".log")]
        return f"{stamp[:13]}:{stamp[13:15]}:{stamp[15:]}"

    def as_json(self) -> dict[str, Any]:
        return {"build": self.number, "started": self.time, "path": self.path}


def _log_dir(target: Target, image: str) -> str:
    return join(target.meta, "logs", image)


def list_logs(target: Target, image: str) -> list[BuildLog]:
    """The image's build logs on the director, oldest first."""
    where = posixpath.join(target.transport.root, _log_dir(target, image))
    script = f"[ -d {q(where)} ] || exit 0; cd {q(where)} && ls -1"
    output = target.transport.run(["sh", "-c", script], effect=Effect.READ).output
    names = sorted(n for n in output.splitlines() if LOG_NAME.match(n))
    base = f"{target.transport.description}/{_log_dir(target, image)}"
    return [BuildLog(i, n, f"{base}/{n}") for i, n in enumerate(names, 1)]


def choose_log(logs: list[BuildLog], image: str, director: str, build: Optional[int]) -> BuildLog:
    if not logs:
        raise UsageError(
            f"image {image} has no build log on director {director}; apply writes one"
            " each time it builds the image"
        )
    if build is None:
        return logs[-1]
    if not 1 <= build <= len(logs):
        raise UsageError(
            f"image {image} has build logs 1 to {len(logs)} on director {director};"
            f" there is no build {build} (imagespec logs {image} --list shows them)"
        )
    return logs[build - 1]


def read_log(target: Target, image: str, log: BuildLog) -> str:
    data = target.transport.read(join(_log_dir(target, image), log.name))
    if data is None:
        raise ImagespecError(f"{log.path} went away while it was read; run the command again")
    return printable(data)


def printable(data: bytes) -> str:
    """Log text for a terminal: each line with control characters escaped."""
    text = data.decode("utf-8", "replace")
    return "".join(visible(line) + "\n" for line in text.splitlines())


@dataclass
class Follow:
    """What `logs --follow` followed: the logs shown and whether an apply was running."""

    logs: list[BuildLog] = field(default_factory=list)
    running: bool = False


def follow_log(
    target: Target,
    image: str,
    write: Echo,
    note: Echo,
    interval: float = 2.0,
) -> Follow:
    """Print the image's log of the running apply as it grows, until the apply releases
    the director's lock; with no apply running, the latest log once.

    Only logs started since the running apply took the lock are followed: an
    earlier build's log is not this apply's.
    """
    lock_rel = join(target.meta, "lock")
    info = _lock_info(target, lock_rel)
    done = Follow(running=target.transport.exists(lock_rel))
    if not done.running:
        latest = choose_log(list_logs(target, image), image, target.name, None)
        note(f"no apply is running on director {target.name}; the latest log: {latest.path}")
        write(read_log(target, image, latest))
        done.logs.append(latest)
        return done
    since = str(info.get("started") or "").replace(":", "")
    note(f"following {image}'s log of the apply running on director {target.name}")
    shown = 0
    while True:
        held = target.transport.exists(lock_rel)
        fresh = [log for log in list_logs(target, image) if log.name[:-4] >= since]
        if fresh and (not done.logs or fresh[-1].name != done.logs[-1].name):
            done.logs.append(fresh[-1])
            note(f"== {fresh[-1].path}")
            shown = 0
        if done.logs:
            text = read_log(target, image, done.logs[-1])
            write(text[shown:])
            shown = len(text)
        if not held:
            break
        _sleep(interval)
    if not done.logs:
        note(f"the apply ended without building {image}")
    return done


def _lock_info(target: Target, lock_rel: str) -> dict[str, Any]:
    data = target.transport.read(f"{lock_rel}/info.json")
    try:
        info = json.loads(data) if data else {}
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


# ------------------------------------------------------------------ generations


@dataclass
class GenerationRow:
    number: int
    commit: Optional[str]
    time: Optional[str]
    digests: dict[str, Optional[str]]
    adopted: bool
    current: bool
    manifest: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "generation": self.number,
            "current": self.current,
            "commit": self.commit,
            "time": self.time,
            "digests": self.digests,
            "adopted": self.adopted,
            "manifest": self.manifest,
        }


@dataclass
class Generations:
    director: str
    image: str
    rootimgdir: str
    current: Optional[int]
    rows: list[GenerationRow]
    foreign: bool = False  # rootimgdir is a directory imagespec did not build

    def as_json(self) -> dict[str, Any]:
        return {
            "director": self.director,
            "image": self.image,
            "rootimgdir": self.rootimgdir,
            "current": self.current,
            "not_built_by_imagespec": self.foreign,
            "generations": [r.as_json() for r in self.rows],
        }


def keeps_generations(target: Target, what: str) -> None:
    if target.builder.name not in ("native", "xcat"):
        raise UsageError(
            f"{what} needs the native or xcat builder; director '{target.name}' uses"
            f" '{target.builder.name}', which keeps no generations"
        )


def _manifests(target: Target, dirs: ImageDirs) -> set[int]:
    """The generations whose directory holds a package manifest."""
    script = f'for f in {q(dirs.home)}/*/{MANIFEST_FILE}; do [ -f "$f" ] && echo "$f"; done; true'
    output = target.transport.run(["sh", "-c", script], effect=Effect.READ).output
    found = set()
    for line in output.splitlines():
        number = posixpath.basename(posixpath.dirname(line))
        if number.isdigit():
            found.add(int(number))
    return found


def list_generations(target: Target, image: RenderedImage) -> Generations:
    """The generations kept for an image, newest first, and the one in use."""
    keeps_generations(target, "generations")
    dirs = ImageDirs(image.rootimgdir)
    found = survey(target.transport, dirs)
    manifests = _manifests(target, dirs) if found.generations else set()
    rows = [
        GenerationRow(
            g.number,
            g.commit,
            g.time,
            dict(g.digests),
            g.adopted,
            g.number == found.current,
            g.number in manifests,
        )
        for g in sorted(found.generations.values(), key=lambda g: -g.number)
    ]
    return Generations(
        target.name, image.name, image.rootimgdir, found.current, rows, found.foreign_dir
    )


# ------------------------------------------------------------------ diff --built


@dataclass
class BuiltDiff:
    director: str
    image: str
    old: int
    new: int
    old_source: str  # "manifest" or "rpm database"
    new_source: str
    changes: PackageChanges
    old_commit: Optional[str] = None
    new_commit: Optional[str] = None

    def as_json(self) -> dict[str, Any]:
        return {
            "director": self.director,
            "image": self.image,
            "from": {"generation": self.old, "commit": self.old_commit, "read": self.old_source},
            "to": {"generation": self.new, "commit": self.new_commit, "read": self.new_source},
            **self.changes.as_json(),
        }


def _pair(found: Survey, image: str, a: Optional[int], b: Optional[int]) -> tuple[int, int]:
    """GEN_A and GEN_B: by default the generation before the one in use, and the one in use."""
    current = found.current
    kept = ", ".join(map(str, sorted(found.generations))) or "none"
    if b is None:
        if current is None:
            raise UsageError(f"image {image} has not been built by imagespec on this director")
        b = current
    if a is None:
        older = [n for n in found.generations if n < b]
        if not older:
            raise UsageError(
                f"image {image} keeps no generation before {b} to compare with"
                f" (kept: {kept}); name two with imagespec diff --built {image} GEN_A GEN_B"
            )
        a = max(older)
    for number in (a, b):
        if number not in found.generations:
            raise UsageError(f"image {image} has no generation {number}; kept generations: {kept}")
    return a, b


def generation_packages(target: Target, dirs: ImageDirs, number: int) -> tuple[list[Package], str]:
    """A generation's packages: its manifest, else a query of its root's rpm database."""
    gen = dirs.gen(number)
    manifest = posixpath.join(gen, MANIFEST_FILE)
    script = f"if [ -f {q(manifest)} ]; then echo manifest; cat {q(manifest)}; exit 0; fi; "
    script += "echo rpm; " + rpm_query(posixpath.join(gen, "rootimg"))
    result = target.transport.run(["sh", "-c", script], effect=Effect.READ, check=False)
    kind, _, body = result.output.partition("\n")
    if kind == "manifest":
        try:
            return parse_manifest(body.encode()), "manifest"
        except ManifestError as exc:
            raise ImagespecError(
                f"{target.transport.description}:{manifest}: {exc}; move it away and"
                " imagespec reads the generation's rpm database instead"
            ) from None
    if result.returncode != 0:
        raise ImagespecError(
            f"generation {number} ({gen}) has no {MANIFEST_FILE} and its root has no rpm"
            " database to read; it cannot be compared"
        )
    return parse_query(body), "rpm database"


def diff_built(
    target: Target, image: RenderedImage, a: Optional[int], b: Optional[int]
) -> BuiltDiff:
    """The packages added, removed, upgraded and downgraded from generation a to b."""
    keeps_generations(target, "diff --built")
    dirs = ImageDirs(image.rootimgdir)
    found = survey(target.transport, dirs)
    old, new = _pair(found, image.name, a, b)
    before, old_source = generation_packages(target, dirs, old)
    after, new_source = generation_packages(target, dirs, new)
    return BuiltDiff(
        target.name,
        image.name,
        old,
        new,
        old_source,
        new_source,
        compare_packages(before, after),
        found.generations[old].commit,
        found.generations[new].commit,
    )
