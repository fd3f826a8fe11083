"""plan / apply / status for one director: the only module that changes a director.

apply = lock -> read state -> plan -> sync files (saving drift) -> per image
define, genimage, pack (independent images in parallel) -> record.  State is
written after the file sync and after every image stage, so an interrupted
apply leaves exactly the stages still owed, which the next apply performs.
"""

from __future__ import annotations

import json
import posixpath
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from ..actions import STAGE_OF, Action, ApplyResult, BuildStatus, Stage
from ..builders import Builder
from ..builders.native import NativeBuilder
from ..builders.xcat import NoBuilder, XcatBuilder, observe
from ..diff import DiffReport, NodeMove, compare
from ..digest import sha256_hex
from ..errors import ImagespecError
from ..gitrepo import GitRepo
from ..plan import (
    Observed,
    Offline,
    Plan,
    cannot_pack,
    make_plan,
    missing_director_files,
    upgrade_digests,
    with_director_files,
    with_recorded_director_files,
)
from ..render import RenderedDirector, RenderedImage
from ..render.layout import Layout, join
from ..runner import GROUPS, CommandError, Interrupted, Runner
from ..site import SiteView
from ..state import MOVE_ASIDE, ImageState, State, StateError, now
from ..transport import transport_for
from ..transport.base import Transport
from ..transport.lock import director_lock, holder
from .diff import changed_files, open_site_at

Echo = Callable[[str], None]


@dataclass
class Target:
    """One director, as apply sees it: its settings, transport and builder."""

    name: str
    view: SiteView
    rendered: RenderedDirector
    transport: Transport
    builder: Builder
    commit: str

    @property
    def state_rel(self) -> str:
        return join(self.rendered.layout.state_dir(), "state.json")

    @property
    def meta(self) -> str:
        return self.rendered.layout.state_dir()

    def read_director_files(self, record: bool = False) -> None:
        """Read the sha256 of every `from: director` file the images pack, before any pack,
        and plan from then on with their effective pack digests (plan.with_director_files).
        Always from the view's pure rendering, so reading again replaces the last reading.

        The hashes are keyed with the director's salt (`salted`) before anything keeps
        them: state.json and generation.json may be readable by every node (xCAT's web
        server serves /install), and a bare sha256 lets anyone test guesses of a secret.
        `record`: an apply or adopt writes a new salt when there is none yet."""
        rendered = self.view.render(self.name)
        paths = sorted({p for image in rendered.images.values() for p in image.director_files})
        hashes = self.transport.hashes_abs(paths) if paths else {}
        if hashes:
            salt = self._salt(record)
            hashes = {p: salted(salt, h) if h else None for p, h in hashes.items()}
        self.rendered = with_director_files(rendered, hashes)

    def _salt(self, record: bool) -> bytes:
        """The director's salt (`.imagespec/salt`, mode 0600); a new one, written when
        `record`, when there is none (nothing recorded can then match: packs are owed)."""
        rel = join(self.meta, "salt")
        have = self.transport.read(rel)
        if have is not None and len(have.strip()) == 64:
            return have.strip()
        salt = secrets.token_hex(32).encode()
        if record:
            self.transport.write_atomic(rel, salt + b"\n", 0o600)
        return salt


def salted(salt: bytes, hexdigest: str) -> str:
    """A director file's recorded hash: sha256 over the director's salt and its sha256."""
    return sha256_hex(salt + b":" + hexdigest.encode())


def make_target(view: SiteView, director: str, commit: str, runner: Runner) -> Target:
    """A director, reached through `runner` (which decides what a dry run does)."""
    settings = view.docs.site.model.directors[director]
    rendered = view.render(director)
    layout = Layout.of(settings, view.docs.source.root)
    transport = transport_for(settings.host, layout.install_root, runner)
    builder: Builder
    if settings.builder == "xcat":
        builder = XcatBuilder(transport, settings.build, rendered, commit)
    elif settings.builder == "native":
        builder = NativeBuilder(transport, settings.build, rendered, commit)
    else:
        builder = NoBuilder()
    return Target(director, view, rendered, transport, builder, commit)


def read_state(target: Target) -> State:
    where = f"{target.transport.description}/{target.state_rel}"
    data = target.transport.read(target.state_rel)
    if data is None and target.transport.exists(target.state_rel):
        raise StateError(f"{where} is not a regular file; {MOVE_ASIDE}")
    return State.from_json(data, target.name, where)


def clean_leftovers(target: Target, state: State, echo: Echo) -> None:
    """Remove the temporary files a killed apply left beside the files imagespec manages."""
    files = set(target.rendered.files) | set(state.files)
    dirs = {posixpath.dirname(p) for p in files} - {""}
    logs = join(target.meta, "logs")
    dirs |= {target.meta, *(join(logs, n) for n in {*target.rendered.images, *state.images})}
    removed = target.transport.clean_temp(dirs)
    if removed:
        echo(f"removed {len(removed)} temporary file(s) left by an interrupted apply")


def previous_changes(
    view: SiteView, name: str, commit: str, state: State, repo: GitRepo
) -> Optional[DiffReport]:
    """The diff from the commit the director last applied, for readable reasons."""
    if not state.commit:
        return None
    root = view.docs.source.root
    try:
        old = open_site_at(repo, state.commit, root, state.commit[:10])
    except ImagespecError:
        return None
    if old is None or name not in old.directors:
        return None
    changed = changed_files(old, view)
    return compare(old, view, name, changed, state.commit, commit)


def make_director_plan(
    target: Target,
    state: State,
    repo: GitRepo,
    only: Optional[set[str]] = None,
    rebuild: Optional[set[str]] = None,
    record: bool = False,
) -> Plan:
    """The plan against what the director really has: its files' hashes, its director
    files and (xcat) its definitions and nodes, read through the target's transport."""
    target.read_director_files(record)
    rendered = target.rendered
    actual = target.transport.hashes(set(rendered.files) | set(state.files))
    settings = target.view.docs.site.model.directors[target.name]
    observed = observe(target.transport) if settings.builder == "xcat" else None
    wanted = Wanted(target.view, target.name, target.commit, only, rebuild)
    return plan_against(wanted, rendered, state, repo, actual, observed)


@dataclass(frozen=True)
class Wanted:
    """What a plan is asked for: the site at a commit, one of its directors, the options."""

    view: SiteView
    name: str
    commit: str
    only: Optional[set[str]] = None
    rebuild: Optional[set[str]] = None


def plan_against(
    wanted: Wanted,
    rendered: RenderedDirector,
    state: State,
    repo: GitRepo,
    actual: dict[str, Optional[str]],
    observed: Optional[Observed],
) -> Plan:
    """make_plan with the reasons from the last applied commit: the one planner of the
    online plan (what the director has) and the offline one (what its state recorded)."""
    settings = wanted.view.docs.site.model.directors[wanted.name]
    return make_plan(
        rendered,
        state,
        actual,
        settings.builder,
        wanted.commit,
        previous_changes(wanted.view, wanted.name, wanted.commit, state, repo),
        wanted.only,
        wanted.rebuild,
        observed,
        dict(settings.nodes),
    )


# ------------------------------------------------------------------ plan --offline

OFFLINE_FILES = "files: drift, or files not written by imagespec (taken to be as recorded)"
OFFLINE_XCAT = (
    "definitions: osimage definitions changed in xCAT since imagespec defined them",
    "nodes: which nodes boot each image, so the nodeset a boot attribute owes",
)
OFFLINE_DIRECTOR_FILES = (
    "director files: `from: director` files changed since the last pack ({images})"
)


def make_offline_plan(wanted: Wanted, state: State, where: str, repo: GitRepo) -> Plan:
    """The plan against a copy of the director's recorded state, without the director
    (`plan --offline --state FILE`, e.g. a CI runner that cannot reach it): the same
    planner as make_director_plan, with the director's files taken to be as recorded,
    its director files as their last pack recorded them, and nothing read from xCAT.
    The plan says what it could therefore not tell (`Plan.offline`)."""
    rendered = with_recorded_director_files(wanted.view.render(wanted.name), state)
    plan = plan_against(wanted, rendered, state, repo, dict(state.files), None)
    unknown = [OFFLINE_FILES]
    if wanted.view.docs.site.model.directors[wanted.name].builder == "xcat":
        unknown += OFFLINE_XCAT
    packing = sorted(n for n, i in rendered.images.items() if i.director_files)
    if packing:
        unknown.append(OFFLINE_DIRECTOR_FILES.format(images=", ".join(packing)))
    plan.offline = Offline(where, unknown)
    return plan


STATE_AGAIN = (
    "copy the director's state again (its .imagespec/state.json, or `imagespec status --json`"
    " run where the director is reachable)"
)


def read_state_file(path: Path, director: str) -> State:
    """The recorded state of `director` from a file, checked as the director's own is:
    a copy of its `.imagespec/state.json`, or the output of `imagespec status --json`
    (its `state`; with several directors, the one of `director`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StateError(
            f"cannot read --state {path}: {exc.strerror or exc}; {STATE_AGAIN}"
        ) from None
    where = str(path)
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None  # State.from_json says what is wrong with it
    if isinstance(doc, dict) and "directors" in doc and "version" not in doc:
        found = (
            [d for d in doc["directors"] if isinstance(d, dict) and d.get("director") == director]
            if isinstance(doc["directors"], list)
            else []
        )
        if not found:
            raise StateError(f"{where} has no status of director {director}; {STATE_AGAIN}")
        doc = found[0]
    if isinstance(doc, dict) and "in_sync" in doc and "version" not in doc:
        if not isinstance(doc.get("state"), dict):
            raise StateError(
                f"{where} is status output without the recorded state (from an older"
                f" imagespec); {STATE_AGAIN}"
            )
        data = json.dumps(doc["state"]).encode()
    try:
        state = State.from_json(data, director, where)
    except StateError as exc:
        raise StateError(str(exc).replace(MOVE_ASIDE, STATE_AGAIN)) from None
    if state.director != director:
        raise StateError(
            f"{where} is the state of director {state.director}, not {director};"
            f" plan that director with --director {state.director}, or pass {director}'s state"
        )
    return state


# ------------------------------------------------------------------ apply# ------------------------------------------------------------------ apply


@dataclass
class ImageOutcome:
    name: str
    result: ApplyResult
    actions: list[Action] = field(default_factory=list)
    seconds: float = 0.0
    error: Optional[str] = None  # the stage and the cause, never the command line
    log: Optional[str] = None
    command: Optional[str] = None  # the command that failed, for -v


@dataclass
class ApplyOutcome:
    director: str
    commit: str
    images: list[ImageOutcome] = field(default_factory=list)
    files_written: int = 0
    files_deleted: int = 0
    drift_saved: Optional[str] = None
    dry_run: bool = False  # nothing was done: the report says what would be
    pruned: list[str] = field(default_factory=list)
    nodes_set: list[NodeMove] = field(default_factory=list)  # nodeset run for these
    nodes_failed: list[str] = field(default_factory=list)  # "range: why", owed to the next apply

    @property
    def failed(self) -> list[ImageOutcome]:
        return [i for i in self.images if i.result in (ApplyResult.FAILED, ApplyResult.INTERRUPTED)]

    @property
    def any_failed(self) -> bool:
        return bool(self.failed or self.nodes_failed)


class StateBook:
    """The state, shared by the worker threads; every change is written at once."""

    def __init__(self, target: Target, state: State):
        self.target = target
        self.state = state
        self.lock = threading.Lock()
        self.done: list[str] = []  # images whose success this apply recorded
        self.interrupted: list[str] = []  # images whose stage an interrupt stopped

    @contextmanager
    def image(self, name: str) -> Iterator[ImageState]:
        with self.lock:
            entry = self.state.images.setdefault(name, ImageState())
            yield entry
            self.save_locked()

    def save(self) -> None:
        with self.lock:
            self.save_locked()

    def save_locked(self) -> None:
        self.target.transport.write_atomic(self.target.state_rel, self.state.to_json())


def sync_files(target: Target, plan: Plan, book: StateBook, echo: Echo) -> ApplyOutcome:
    """Save drifted and foreign copies, write and delete files, record the inventory."""
    ops = plan.files
    outcome = ApplyOutcome(target.name, target.commit)
    transport = target.transport
    saved = [*ops.drift, *ops.unmanaged]
    if saved:
        stamp = now().replace(":", "")
        drift_dir = join(target.meta, "drift", stamp)
        transport.copy({p: join(drift_dir, p) for p in saved})
        outcome.drift_saved = f"{transport.description}/{drift_dir}"
        echo(f"saved {len(saved)} file(s) changed on the director under {outcome.drift_saved}")
    transport.write_files({p: (f.data, f.mode) for p, f in ops.write.items()})
    transport.delete(ops.delete)
    outcome.files_written, outcome.files_deleted = len(ops.write), len(ops.delete)
    with book.lock:
        files = book.state.files
        for path, file in ops.write.items():
            files[path] = sha256_hex(file.data)
        files.update(ops.adopt)
        for path in ops.delete:
            files.pop(path, None)
        book.save_locked()
    return outcome


class ImageJob:
    """One image's stages, run in a worker thread, recording state after each."""

    def __init__(
        self,
        target: Target,
        book: StateBook,
        image: RenderedImage,
        actions: list[Action],
        progress: Callable[[str, str], None],
        nodeset: bool = False,
        rebuild: bool = False,
    ):
        self.target = target
        self.rebuild = rebuild  # --rebuild: a kept generation is never switched back to
        self.switched = False  # genimage skipped: pack switches to a kept generation
        self.nodeset = nodeset  # owed from an earlier apply, whatever the stages do
        self.book = book
        self.image = image
        self.all_actions = list(actions)
        self.actions = [a for a in actions if a != Action.SYNC]
        self.progress = progress
        self.lines: list[str] = []
        self.log_rel: Optional[str] = None  # named when first written: the build's start

    def log(self, text: str) -> None:
        self.lines.append(text)

    def run(self) -> ImageOutcome:
        runner = self.target.transport.runner
        with runner.grouped(f"# {self.image.name}: would run"):
            return self._run()

    def _run(self) -> ImageOutcome:
        start = time.monotonic()
        outcome = ImageOutcome(self.image.name, ApplyResult.DONE, list(self.all_actions))
        builder = self.target.builder
        missing = missing_director_files(self.image) if Action.PACK in self.actions else []
        if missing:  # refused before any stage: a build that cannot be packed is wasted
            refusal = ImagespecError("; ".join(cannot_pack(path) for path in missing))
            self._failed(Action.PACK, refusal, outcome)
        elif self._switch_back(builder):
            self.actions.remove(Action.GENIMAGE)
            outcome.actions.remove(Action.GENIMAGE)
        for action in self.actions if not missing else []:
            self.progress(self.image.name, action)
            self.log(f"== {action} {self.image.name} at {now()}")
            self._write_log()  # stage by stage, for `imagespec logs --follow`
            try:
                self._stage(builder, action)
            except (CommandError, ImagespecError) as exc:
                self._failed(action, exc, outcome)
                break
        if outcome.result == ApplyResult.DONE:
            try:
                self._nodeset(builder)
            except (CommandError, ImagespecError) as exc:
                self._failed("nodeset", exc, outcome)
        if outcome.result == ApplyResult.DONE:
            self._succeeded(builder.name)
        outcome.seconds = time.monotonic() - start
        outcome.log = self._write_log()
        self.progress(self.image.name, outcome.result)
        return outcome

    def _switch_back(self, builder: Builder) -> bool:
        """Whether genimage is owed but a kept generation was built and packed from the
        same inputs (rolling forward after a rollback, a change reverted): pack then
        switches back to it, and the build is skipped.  Never with --rebuild."""
        if Action.GENIMAGE not in self.actions or Action.PACK not in self.actions:
            return False
        if self.rebuild:
            return False
        kept = builder.kept(self.image)
        if kept is None:
            return False
        self.log(f"generation {kept} is kept and was built from these inputs: no genimage")
        self.switched = True
        return True

    def _stage(self, builder: Builder, action: Action) -> None:
        with self.book.lock:
            previous = self.book.state.images.get(self.image.name)
        boot = False
        if action == Action.DEFINE:
            self._note_variants(builder)
            boot = builder.define(self.image, previous, self.log)
        elif action == Action.GENIMAGE:
            builder.genimage(self.image, self.log)
        generation = None
        if action == Action.PACK:
            generation = builder.pack(self.image, self.log)
        with self.book.image(self.image.name) as entry:
            key = STAGE_OF[action]
            entry.digests[key] = self.image.digests[key]
            if action == Action.GENIMAGE:
                entry.digests[Stage.PACK] = None
            if action == Action.DEFINE:
                entry.attributes = sorted(self.image.attributes)
                entry.variants = sorted(self.image.variants) if builder.name == "xcat" else []
            if action == Action.PACK:
                if self.switched:  # the generation switched to was built from these inputs
                    entry.digests[Stage.BUILD] = self.image.digests[Stage.BUILD]
                entry.generation = generation if generation is not None else entry.generation + 1
                entry.rolled_back_from = None
                entry.director_files = {
                    path: have for path, have in (self.image.director_hashes or {}).items() if have
                }
            # A new generation, or a boot attribute changed: the nodes' kernel,
            # initrd or command line in tftp are stale until nodeset runs.
            if boot or (action == Action.PACK and builder.name == "xcat"):
                entry.nodeset_owed = True

    def _note_variants(self, builder: Builder) -> None:
        """Before xCAT defines them, record the variant osimages about to exist: one that
        a failed or killed define created is then still imagespec's to remove later."""
        if builder.name != "xcat" or not self.image.variants:
            return
        with self.book.image(self.image.name) as entry:
            entry.variants = sorted({*entry.variants, *self.image.variants})

    def _nodeset(self, builder: Builder) -> None:
        """Run nodeset for the image's nodes when owed; the record says it is done."""
        with self.book.lock:
            entry = self.book.state.images.get(self.image.name)
            owed = self.nodeset or bool(entry and entry.nodeset_owed)
        if not owed or builder.name != "xcat":
            return
        self.progress(self.image.name, "nodeset")
        self.log(f"== nodeset {self.image.name} at {now()}")
        sets = builder.nodeset(self.image, self.log) or {}
        self.log(f"nodeset done for {len(sets)} node(s)")
        with self.book.image(self.image.name) as entry:
            entry.nodeset_owed = False
            self.book.state.record_nodeset(sets, entry.generation)

    def _failed(self, action: str, exc: Exception, outcome: ImageOutcome) -> None:
        """Record the failure; the stage's digest is cleared so the next apply retries it.

        (xCAT's genimage and packimage work in place, so a failed stage leaves
        nothing the recorded digest could still describe.)  What is recorded and
        reported is the cause (`failure_cause`), not the command line; a stage
        that an interrupt (Ctrl-C, SIGTERM) stopped is recorded as interrupted,
        and retried as a failed one is.
        """
        interrupted = isinstance(exc, Interrupted) or GROUPS.stopping.is_set()
        cause = "stopped by Ctrl-C or SIGTERM" if interrupted else failure_cause(exc)
        self.log(f"!! {action} {'interrupted' if interrupted else 'failed'}: {exc}")
        with self.book.image(self.image.name) as entry:
            if action in STAGE_OF:
                entry.digests[STAGE_OF[Action(action)]] = None
            if action == Action.GENIMAGE:
                entry.digests[Stage.PACK] = None
            entry.status, entry.failed_stage, entry.error = BuildStatus.FAILED, action, cause
            entry.interrupted = interrupted
            entry.commit, entry.time = self.target.commit, now()
            if interrupted:
                self.book.interrupted.append(self.image.name)
        outcome.result = ApplyResult.INTERRUPTED if interrupted else ApplyResult.FAILED
        outcome.error = f"{action}: {cause}"
        outcome.command = exc.command if isinstance(exc, CommandError) else None

    def _succeeded(self, builder: str) -> None:
        with self.book.image(self.image.name) as entry:
            entry.status = BuildStatus.SKIPPED if builder == "none" else BuildStatus.OK
            if builder == "none":
                entry.digests = dict(self.image.digests)
            entry.error = entry.failed_stage = None
            entry.interrupted = False
            entry.commit, entry.time, entry.builder = self.target.commit, now(), builder
        self.book.done.append(self.image.name)

    def _write_log(self) -> Optional[str]:
        if not self.lines:
            return None
        if self.log_rel is None:
            self.log_rel = log_path(self.target.meta, self.image.name, now())
        rel = self.log_rel
        if not self.target.transport.write_atomic(rel, ("\n".join(self.lines) + "\n").encode()):
            return None  # a dry run records nothing
        return f"{self.target.transport.description}/{rel}"


def log_path(meta: str, image: str, started: str) -> str:
    """Where a build's log lives: one file per build, named by its start time."""
    return join(meta, "logs", image, f"{started.replace(':', '')}.log")


def failure_cause(exc: Exception) -> str:
    """Why a stage failed, in one line: a command's last meaningful output lines (dnf's
    "Unable to find a match", a script's last stderr lines), or imagespec's own reason."""
    if isinstance(exc, CommandError):
        return exc.cause
    lines = str(exc).splitlines()
    return lines[0][:500] if lines else type(exc).__name__


def run_images(
    target: Target,
    plan: Plan,
    book: StateBook,
    jobs: int,
    progress: Callable[[str, str], None],
    rebuild: frozenset[str] = frozenset(),
) -> list[ImageOutcome]:
    """Every image with owed stages; independent images in parallel."""
    outcomes: list[ImageOutcome] = []
    work = []
    for name, diff in sorted(plan.report.images.items()):
        if diff.status == "removed":
            continue
        if name in plan.frozen:
            outcomes.append(ImageOutcome(name, ApplyResult.FROZEN))
            continue
        stages = [a for a in diff.actions if a != Action.SYNC]
        builder = target.builder.name
        nodeset = name in plan.nodeset
        if not stages and builder != "none" and not nodeset:
            outcomes.append(ImageOutcome(name, ApplyResult.UP_TO_DATE, list(diff.actions)))
            continue
        entry = book.state.images.get(name)
        image = target.rendered.images[name]
        if (
            builder == "none"
            and entry
            and entry.status == BuildStatus.SKIPPED
            and entry.digests == image.digests
            and not diff.actions
        ):
            outcomes.append(ImageOutcome(name, ApplyResult.UP_TO_DATE))
            continue
        job = ImageJob(target, book, image, diff.actions, progress, nodeset, name in rebuild)
        work.append(job)
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        outcomes += list(pool.map(lambda job: job.run(), work))
    except BaseException as exc:
        # Interrupted: the builds run in process groups of their own, which the
        # interrupt does not reach.  Stop them, so the workers end at once, and
        # start no queued image.
        GROUPS.stop_all()
        pool.shutdown(wait=True, cancel_futures=True)
        if isinstance(exc, KeyboardInterrupt):
            raise ApplyInterrupted(target.name, book) from None
        raise
    pool.shutdown()
    return sorted(outcomes, key=lambda o: o.name)


def assign_nodes(target: Target, plan: Plan, book: StateBook, outcome: ApplyOutcome) -> None:
    """nodeset for the nodes whose image changed in the director's `nodes:` map.

    Only once their image is built: nodes moved to an image that failed (or
    was never built) keep booting what they booted and stay owed.  Nodes
    taken out of the map are only forgotten; imagespec never un-nodesets.
    """
    failed = {o.name for o in outcome.failed}
    builder = target.builder
    if not isinstance(builder, XcatBuilder):
        return
    owners = target.rendered.osimages  # a boot variant is built when its image is
    for move in plan.report.nodes:
        if move.new is None:
            with book.lock:
                book.state.nodes.pop(move.nodes, None)
                book.save_locked()
            continue
        image = owners.get(move.new, move.new)
        entry = book.state.images.get(image)
        frozen = image in plan.frozen
        if image in failed or (not frozen and (entry is None or entry.status != BuildStatus.OK)):
            outcome.nodes_failed.append(f"{move.nodes}: image {image} is not built")
            continue
        if image != move.new and (entry is None or move.new not in entry.variants):
            outcome.nodes_failed.append(f"{move.nodes}: variant {move.new} is not defined")
            continue
        try:
            sets = builder.nodeset_range(move.nodes, move.new, lambda _line: None)
        except (CommandError, ImagespecError) as exc:
            outcome.nodes_failed.append(f"{move.nodes}: {str(exc).splitlines()[0][:300]}")
            continue
        outcome.nodes_set.append(move)
        with book.lock:
            book.state.nodes[move.nodes] = move.new
            book.state.record_nodeset(sets, entry.generation if entry else 0)
            book.save_locked()


def prune(target: Target, plan: Plan, book: StateBook) -> list[str]:
    """Remove orphaned osimage definitions, with the boot variants imagespec defined for
    them (never their roots), and forget them."""
    done = []
    live = target.rendered.osimages
    for name in plan.orphans:
        entry = book.state.images.get(name)
        for variant in entry.variants if entry else []:
            if variant not in live:  # a name the site now uses is no longer this orphan's
                target.builder.undefine(variant, lambda _line: None)
        if name not in live:
            target.builder.undefine(name, lambda _line: None)
        with book.lock:
            book.state.images.pop(name, None)
            book.save_locked()
        done.append(name)
    return done


def read_lock(target: Target) -> Optional[dict[str, Any]]:
    """Who holds the director's lock (status), or None."""
    return holder(target.transport, join(target.meta, "lock"))


def lock_for(
    target: Target, wait: bool, timeout: float, echo: Echo
) -> AbstractContextManager[None]:
    """The director's lock (which a dry run takes without touching the director)."""
    return director_lock(
        target.transport, join(target.meta, "lock"), target.commit, wait, timeout, echo
    )


@dataclass
class ApplyOptions:
    jobs: Optional[int] = None
    only: set[str] = field(default_factory=set)
    rebuild: set[str] = field(default_factory=set)
    wait: bool = False
    wait_timeout: float = 1800.0
    prune_images: bool = False


class ApplyInterrupted(ImagespecError):
    """Ctrl-C or SIGTERM during the builds: the stopped images are recorded as interrupted."""

    exit_code = 130

    def __init__(self, director: str, book: StateBook):
        stopped = sorted(set(book.interrupted))
        done = sorted(book.done)
        text = f"interrupted: apply on director {director} stopped"
        if stopped:
            text += (
                f"; {', '.join(stopped)} recorded as interrupted (the next apply builds them again)"
            )
        if done:
            text += f"; {len(done)} image(s) were done and recorded: {', '.join(done)}"
        super().__init__(text)


class IncompleteApply(ImagespecError):
    """The state could not be recorded after some images were already done."""

    exit_code = 3


def apply_director(
    target: Target,
    repo: GitRepo,
    options: ApplyOptions,
    echo: Echo,
    progress: Callable[[str, str], None],
    confirm: Callable[[Plan], bool],
) -> tuple[Plan, ApplyOutcome]:
    """Reconcile one director to target.commit."""
    with lock_for(target, options.wait, options.wait_timeout, echo):
        state = read_state(target)
        clean_leftovers(target, state, echo)
        plan = make_director_plan(
            target, state, repo, options.only or None, options.rebuild, record=True
        )
        if plan.frozen_files:
            raise frozen_refusal(target, plan)
        upgraded = upgrade_digests(target.rendered, state)
        outcome = ApplyOutcome(target.name, target.commit)
        if not plan.work and not (options.prune_images and plan.orphans):
            if state.commit != target.commit or upgraded:
                state.commit, state.time = target.commit, now()
                target.transport.write_atomic(target.state_rel, state.to_json())
            outcome.images = [
                ImageOutcome(n, ApplyResult.FROZEN if n in plan.frozen else ApplyResult.UP_TO_DATE)
                for n in target.rendered.images
            ]
            return plan, outcome
        if not confirm(plan):
            raise ImagespecError("apply cancelled; nothing was changed")
        book = StateBook(target, state)
        outcome = sync_files(target, plan, book, echo)
        try:
            run_and_record(target, plan, book, options, outcome, progress)
            outcome.dry_run = target.transport.runner.dry_run
        except ApplyInterrupted:
            raise
        except ImagespecError as exc:
            if not book.done:
                raise
            raise IncompleteApply(
                f"{exc}; {len(book.done)} image(s) were done and recorded before that:"
                f" {', '.join(sorted(book.done))}"
            ) from None
        return plan, outcome


def frozen_refusal(target: Target, plan: Plan) -> ImagespecError:
    """apply's one line when it would overwrite a file a frozen image uses: where the
    first such image is frozen, the files, and the ways forward."""
    frozen = sorted({name for names in plan.frozen_files.values() for name in names})
    where = target.view.docs.site.pos("images", frozen[0], "frozen")
    paths = list(plan.frozen_files)
    shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    return ImagespecError(
        f"{where}: apply refused: frozen {', '.join(frozen)} use{'s' * (len(frozen) == 1)}"
        f" {shown}, which this commit changes on director {target.name}; keep those files"
        " as they are and give the other images the new content under a new name in a"
        f" profile {frozen[0]} does not use, or unfreeze it (frozen: false); nothing was"
        " changed"
    )


def run_and_record(
    target: Target,
    plan: Plan,
    book: StateBook,
    options: ApplyOptions,
    outcome: ApplyOutcome,
    progress: Callable[[str, str], None],
) -> None:
    """Build what is owed, prune on request, then record the commit as applied."""
    jobs = options.jobs or target.view.docs.site.model.directors[target.name].build.jobs or 2
    outcome.images = run_images(target, plan, book, jobs, progress, frozenset(options.rebuild))
    if options.prune_images:
        outcome.pruned = prune(target, plan, book)
    assign_nodes(target, plan, book, outcome)
    with book.lock:
        if not outcome.any_failed and not options.only:
            book.state.commit = target.commit
        book.state.time = now()
        book.save_locked()


def in_sync(state: State, plan: Plan) -> bool:
    """status's verdict: nothing to do, no drift, no orphans and no failed image."""
    failed = any(i.status == BuildStatus.FAILED for i in state.images.values())
    return not plan.work and not plan.files.drift and not plan.orphans and not failed
