"""Desired tree + the director's recorded state + what is really on disk -> actions with reasons.

Pure: the caller gathers the rendered tree, state.json, the hashes of the
files on the director and (for readable reasons) the diff from the commit the
director last applied.  Actions come from the recorded stage digests, so a
failed or interrupted stage is simply still owed.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Optional, Union

from .actions import Action, BuildStatus, Stage, Status, stage_actions
from .diff import DiffReport, ImageDiff, node_moves
from .digest import effective_pack_digest, sha256_hex
from .render import RenderedDirector, RenderedFile, RenderedImage, RenderedVariant
from .resolve import DIRECTOR_FILE
from .state import ImageState, State

# What nodeset reads from an osimage to write a node's boot configuration
# (xCAT-server/lib/xcat/plugins/anaconda.pm, mknetboot: the osimage and
# linuximage attributes it fetches, and addkcmdline for the kernel command line).
BOOT_ATTRIBUTES = frozenset(
    [
        "addkcmdline",
        "crashkernelsize",
        "dump",
        "nfsrootopts",
        "nodebootif",
        "osarch",
        "osvers",
        "partitionfile",
        "profile",
        "provmethod",
        "rootfstype",
        "rootimgdir",
    ]
)


@dataclass
class Observed:
    """What plan reads from xCAT on the director: definitions and which nodes boot what."""

    definitions: Optional[dict[str, dict[str, str]]] = None  # None: could not be read
    nodes: Optional[dict[str, list[str]]] = None  # osimage -> nodes whose provmethod it is
    notes: list[str] = field(default_factory=list)


Defined = Union[RenderedImage, RenderedVariant]  # an osimage imagespec defines


def drifted_attributes(image: Defined, have: dict[str, str]) -> list[str]:
    """Rendered attributes whose value on the director differs.

    Only what imagespec renders is compared: attributes set outside imagespec
    (groups, usercomment, genimage's write-backs such as permission) are the
    site's own and never drift.
    """
    return sorted(
        name for name, value in image.attributes.items() if value and have.get(name) != value
    )


def boot_changes(image: Defined, have: Optional[dict[str, str]]) -> list[str]:
    """Attributes nodeset reads whose value the next define changes."""
    if have is None:
        return []
    return sorted(
        name
        for name in BOOT_ATTRIBUTES
        if (image.attributes.get(name) or "") != (have.get(name) or "")
    )


def variant_boot_changes(
    image: RenderedImage, definitions: Optional[dict[str, dict[str, str]]]
) -> list[str]:
    """The image's boot variants whose nodes boot otherwise after the next define: a new
    variant ('NAME (new)') or a changed attribute nodeset reads ('NAME: addkcmdline')."""
    if definitions is None:
        return []
    found = []
    for name, variant in image.variants.items():
        have = definitions.get(name)
        changes = boot_changes(variant, have)
        if have is None or changes:
            found.append(f"{name} (new)" if have is None else f"{name}: {', '.join(changes)}")
    return found


def with_director_files(
    rendered: RenderedDirector, hashes: Mapping[str, Optional[str]]
) -> RenderedDirector:
    """The rendering with each image's `from: director` files as read on the director
    (path -> sha256 hex, None: missing) and its effective pack digest (digest.py), which
    plan compares, state records and the builders write into a generation: a changed
    director file owes a pack, and never matches a kept generation packed before.

    A copy: the rendering itself stays pure and shared (SiteView caches it)."""
    images = {}
    for name, image in rendered.images.items():
        if image.director_files:
            found = {path: hashes.get(path) for path in image.director_files}
            pack = effective_pack_digest(image.digests[Stage.PACK], found)
            digests = {**image.digests, Stage.PACK.value: pack}
            image = replace(image, digests=digests, director_hashes=found)
        images[name] = image
    return replace(rendered, images=images)


def with_recorded_director_files(rendered: RenderedDirector, state: State) -> RenderedDirector:
    """with_director_files without the director (`plan --offline`): each image's director
    files taken to be as its last pack recorded them.  An image with a director file its
    record does not have keeps its rendered pack digest, which no record matches: it owes
    a pack, as it would online (its synclist changed, or it was never packed)."""
    images = {}
    for name, image in rendered.images.items():
        done = state.images[name].director_files if name in state.images else {}
        if image.director_files and all(path in done for path in image.director_files):
            found: dict[str, Optional[str]] = {p: done[p] for p in image.director_files}
            pack = effective_pack_digest(image.digests[Stage.PACK], found)
            image = replace(image, digests={**image.digests, Stage.PACK.value: pack})
        images[name] = image
    return replace(rendered, images=images)


def missing_director_files(image: RenderedImage) -> list[str]:
    """The director files the image packs that plan found missing (or unreadable)."""
    return sorted(p for p, have in (image.director_hashes or {}).items() if have is None)


def cannot_pack(path: str) -> str:
    return (
        f"{DIRECTOR_FILE} {path} is missing or unreadable on the director, so the image"
        " cannot be packed; create it there (or drop the sync entry), then apply again"
    )


def director_file_reasons(image: RenderedImage, st: Optional[ImageState]) -> list[str]:
    """Why the image's director files owe a pack: changed since the last pack, or missing
    (which names the file and never its content or hash)."""
    done = st.director_files if st else {}
    reasons = []
    for path, have in sorted((image.director_hashes or {}).items()):
        if have is None:
            reasons.append(cannot_pack(path))
        elif path in done and done[path] != have:
            reasons.append(f"{DIRECTOR_FILE} {path} changed")
    return reasons


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
class Offline:
    """A plan made from a copy of the recorded state, without the director (`plan --offline`):
    where the state came from, and what only the director could have told."""

    state: str  # the state file, as named
    unknown: list[str] = field(default_factory=list)  # "topic: what the plan could not see"


@dataclass
class Plan:
    director: str
    builder: str
    commit: str
    files: FileOps
    report: DiffReport  # per image status/actions/changes, reasons in ImageDiff.reasons
    orphans: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    # xcat: images whose nodes apply runs nodeset for -> how many nodes (None: unknown)
    nodeset: dict[str, Optional[int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what could not be read on the director
    # xcat: per image, its nodes by the generation they run (see node_generations)
    running: dict[str, dict[str, Any]] = field(default_factory=dict)
    # per image that owes a pack for them: its director files that changed or are missing
    director_files: dict[str, list[str]] = field(default_factory=dict)
    offline: Optional[Offline] = None  # planned from a state file, without the director
    # files on the director that frozen images use and apply would overwrite -> those
    # images (apply refuses them: docs/decisions.md, "Frozen images keep their files")
    frozen_files: dict[str, list[str]] = field(default_factory=dict)

    @property
    def work(self) -> bool:
        busy = any(d.actions for n, d in self.report.images.items() if n not in self.frozen)
        return busy or self.files.changes or bool(self.nodeset) or bool(self.report.nodes)

    def as_json(self) -> dict[str, Any]:
        doc = self.report.as_json()
        for name, image in self.report.images.items():
            doc["images"][name]["reasons"] = list(image.reasons)
            doc["images"][name]["frozen"] = name in self.frozen
            doc["images"][name]["nodeset"] = {
                "owed": name in self.nodeset,
                "nodes": self.nodeset.get(name),
            }
        offline = {"offline": asdict(self.offline)} if self.offline else {}
        return {
            "director": self.director,
            **offline,
            **doc,
            "drift": sorted(self.files.drift),
            "orphans": list(self.orphans),
            "notes": list(self.notes),
            "files": {
                "write": sorted(self.files.write),
                "delete": sorted(self.files.delete),
                "kept": sorted(self.files.kept),
            },
            "frozen_files": {path: list(names) for path, names in self.frozen_files.items()},
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
        if path not in skip:
            _plan_write(ops, path, file, state.files.get(path), actual.get(path))
    for path, recorded in sorted(state.files.items()):
        if path not in rendered.files and path not in skip:
            have = actual.get(path)
            gone_or_ours = have is None or have == recorded
            (ops.delete if gone_or_ours else ops.kept).append(path)
    return ops


def _plan_write(
    ops: FileOps, path: str, file: RenderedFile, recorded: Optional[str], have: Optional[str]
) -> None:
    """A rendered file: adopt it when already right, else write it (saving a foreign copy)."""
    want = sha256_hex(file.data)
    if have == want:
        if recorded != want:
            ops.adopt[path] = want
        return
    if recorded is not None and have is not None and have != recorded:
        ops.drift.append(path)
    elif recorded is None and have is not None:
        ops.unmanaged.append(path)
    ops.write[path] = file


def is_done(image: RenderedImage, stage: str, recorded: Optional[str]) -> bool:
    """Whether a recorded digest is the image's: the current one, or the one earlier
    versions computed for the same inputs (RenderedImage.legacy_digests), which apply
    re-records without building (docs/decisions.md, "Package order")."""
    return recorded is not None and recorded in (
        image.digests[stage],
        image.legacy_digests.get(stage),
    )


def upgrade_digests(rendered: RenderedDirector, state: State) -> list[str]:
    """Replace, in `state`, every recorded digest that is an image's legacy one by its
    current one; the images whose record changed (apply then writes it)."""
    upgraded = []
    for name, image in sorted(rendered.images.items()):
        entry = state.images.get(name)
        if entry is None:
            continue
        for stage, legacy in image.legacy_digests.items():
            if entry.digests.get(stage) == legacy:
                entry.digests[stage] = image.digests[stage]
                upgraded.append(name)
    return upgraded


def owed_actions(
    image: RenderedImage,
    st: Optional[ImageState],
    builder: str,
    rebuild: bool,
    redefine: bool = False,
) -> list[Action]:
    """The stages whose recorded digest differs from the desired one (SPEC §6 order);
    `redefine`: the definition on the director drifted, so define is owed too."""
    if builder == "none":
        return []
    done = st.digests if st and st.status != BuildStatus.SKIPPED else {}
    differ = {stage for stage in Stage if not is_done(image, stage, done.get(stage))}
    if redefine:
        differ.add(Stage.DEFINE)
    return stage_actions((differ | {Stage.BUILD}) if rebuild else differ)


@dataclass(frozen=True)
class _Scope:
    """What every image of one plan is decided against."""

    builder: str
    files: FileOps
    frozen: frozenset[str]
    only: Optional[set[str]]
    rebuild: set[str]
    observed: Optional[Observed]

    def builds(self, name: str) -> bool:
        """Whether apply may define, build and pack the image this time."""
        return name not in self.frozen and not (self.only and name not in self.only)


def make_plan(
    rendered: RenderedDirector,
    state: State,
    actual: dict[str, Optional[str]],
    builder: str,
    commit: str,
    changes: Optional[DiffReport] = None,
    only: Optional[set[str]] = None,
    rebuild: Optional[set[str]] = None,
    observed: Optional[Observed] = None,
    nodes: Optional[dict[str, str]] = None,
) -> Plan:
    """Everything apply would do, and why.

    `observed` (xcat directors): the definitions and nodes read from xCAT, for
    definition drift and the nodeset apply owes after a new kernel or boot
    attribute.
    """
    frozen = sorted(n for n, i in rendered.images.items() if i.frozen)
    files = plan_files(rendered, state, actual, _skipped_files(rendered, set(frozen), only))
    scope = _Scope(builder, files, frozenset(frozen), only, rebuild or set(), observed)
    images = {}
    nodeset: dict[str, Optional[int]] = {}
    for name, image in sorted(rendered.images.items()):
        st = state.images.get(name)
        images[name] = _plan_image(image, st, scope, _change_of(changes, name))
        owed = _nodeset_owed(image, st, images[name], scope)
        if owed:
            nodeset[name] = _node_count(image, observed)
            count = nodeset[name]
            if count is None and observed is not None:
                images[name].reasons.append("nodeset owed (nodes could not be listed)")
            elif count:
                images[name].reasons.append(f"nodeset owed: {count} node{'s' * (count != 1)}")
    orphans = sorted(set(state.images) - set(rendered.images))
    images.update({name: _orphan(name) for name in orphans})
    report = DiffReport(
        base=state.commit or "none", head=commit, director=rendered.name, images=images
    )
    if builder == "xcat" and not only:  # only xCAT boots nodes; --only leaves them
        report.nodes = node_moves(state.nodes, nodes or {})
    notes = list(observed.notes) if observed else []
    running = node_generations(rendered, state, observed) if builder == "xcat" else {}
    plan = Plan(
        rendered.name, builder, commit, files, report, orphans, frozen, nodeset, notes, running
    )
    plan.director_files = {
        name: reasons
        for name, image in sorted(rendered.images.items())
        if Action.PACK in images[name].actions
        and (reasons := director_file_reasons(image, state.images.get(name)))
    }
    plan.frozen_files = frozen_overwrites(rendered, files, actual)
    _refuse(images, rendered, plan.frozen_files)
    return plan


def frozen_overwrites(
    rendered: RenderedDirector, files: FileOps, actual: dict[str, Optional[str]]
) -> dict[str, list[str]]:
    """Files frozen images use that apply would overwrite on the director -> those images.

    A frozen image's nodes boot its postscripts and its definition names its
    files: changing one under it unfreezes it.  A file not on the director
    yet changes nothing the frozen image had."""
    users: dict[str, list[str]] = {}
    for name, image in sorted(rendered.images.items()):
        if image.frozen:
            for path in image.files:
                if path in files.write and actual.get(path) is not None:
                    users.setdefault(path, []).append(name)
    return dict(sorted(users.items()))


def _refuse(
    images: dict[str, ImageDiff], rendered: RenderedDirector, frozen_files: dict[str, list[str]]
) -> None:
    """Say, on each image that would change a frozen image's file, that apply refuses it."""
    for name, image in sorted(rendered.images.items()):
        if image.frozen or Action.SYNC not in images[name].actions:
            continue
        for path in image.files:
            if path in frozen_files:
                images[name].reasons.append(
                    f"refused: {path} is used by frozen {', '.join(frozen_files[path])}"
                )


def node_generations(
    rendered: RenderedDirector, state: State, observed: Optional[Observed]
) -> dict[str, dict[str, Any]]:
    """Per image with nodes (its own and its variants'): how many boot it, and which
    generation each runs.

    A node's generation is what it booted after imagespec last rebooted it
    (rollout); a node imagespec never rebooted, or that boots another image
    than imagespec rebooted it into, is `unknown`.  `behind` counts the nodes
    not (known to be) on the image's current generation: those a rollout reboots.
    """
    if observed is None or observed.nodes is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(rendered.images):
        booting = {
            node: osimage
            for osimage in (name, *rendered.images[name].variants)
            for node in observed.nodes.get(osimage, [])
        }
        if not booting:
            continue
        entry = state.images.get(name)
        current = entry.generation if entry and entry.status == BuildStatus.OK else None
        counts: dict[str, int] = {}
        unknown = behind = 0
        for node, osimage in sorted(booting.items()):
            boot = state.boots.get(node)
            if boot is None or boot.running_image != osimage or boot.running_generation is None:
                unknown += 1
                behind += 1
                continue
            key = str(boot.running_generation)
            counts[key] = counts.get(key, 0) + 1
            behind += boot.running_generation != current
        out[name] = {
            "nodes": len(booting),
            "generation": current,
            "running": dict(sorted(counts.items(), key=lambda kv: int(kv[0]))),
            "unknown": unknown,
            "behind": behind,
        }
    return out


def _definition(name: str, observed: Optional[Observed]) -> Optional[dict[str, str]]:
    if observed is None or observed.definitions is None:
        return None
    return observed.definitions.get(name)


def _definition_drift(
    image: RenderedImage, st: Optional[ImageState], observed: Optional[Observed]
) -> list[str]:
    """Why the definitions imagespec made (the image's and its variants') differ on the
    director now (empty: they do not)."""
    if observed is None or observed.definitions is None or not st or not st.digests.get("define"):
        return []
    reasons = []
    defined: list[tuple[str, Defined]] = [("", image)]
    defined += [(f" of variant {name}", variant) for name, variant in image.variants.items()]
    for what, osimage in defined:
        have = observed.definitions.get(osimage.name)
        if have is None:
            reasons.append(f"definition{what} missing on the director")
            continue
        drifted = drifted_attributes(osimage, have)
        if drifted:
            reasons.append(f"definition{what} changed on the director: {', '.join(drifted)}")
    return reasons


def _nodeset_owed(
    image: RenderedImage, st: Optional[ImageState], diff: ImageDiff, scope: _Scope
) -> bool:
    """A new generation, a boot attribute changed, or an earlier nodeset still owed."""
    if scope.builder != "xcat" or not scope.builds(image.name):
        return False
    if st is not None and st.nodeset_owed:
        return True
    if Action.PACK in diff.actions:
        return True
    if Action.DEFINE not in diff.actions:
        return False
    have = _definition(image.name, scope.observed)
    definitions = scope.observed.definitions if scope.observed else None
    return bool(boot_changes(image, have) or variant_boot_changes(image, definitions))


def _node_count(image: RenderedImage, observed: Optional[Observed]) -> Optional[int]:
    """The nodes booting the image: those whose provmethod is it or one of its variants."""
    if observed is None or observed.nodes is None:
        return None
    return sum(len(observed.nodes.get(name, [])) for name in [image.name, *image.variants])


def _change_of(changes: Optional[DiffReport], name: str) -> Optional[ImageDiff]:
    return changes.images.get(name) if changes else None


def _plan_image(
    image: RenderedImage, st: Optional[ImageState], scope: _Scope, change: Optional[ImageDiff]
) -> ImageDiff:
    """One image's owed actions (sync first) and the reasons for them."""
    name, rebuild = image.name, image.name in scope.rebuild
    drift = _definition_drift(image, st, scope.observed) if scope.builder == "xcat" else []
    builds = scope.builds(name)
    actions = owed_actions(image, st, scope.builder, rebuild, bool(drift)) if builds else []
    if name not in scope.frozen and any(p in scope.files.write for p in image.files):
        actions.insert(0, Action.SYNC)
    diff = ImageDiff(
        name,
        _status(st, actions),
        actions,
        dict(change.changes) if change else {},
        list(change.via) if change else [],
        image.frozen,
    )
    if name in scope.frozen:
        diff.reasons = _frozen_reasons(change)
    else:
        drifted = [p for p in image.files if p in scope.files.drift]
        files = director_file_reasons(image, st) if Action.PACK in actions else []
        diff.reasons = _reasons(
            actions, st, change, drifted, rebuild, scope.builder, [*drift, *files]
        )
    return diff


def _status(st: Optional[ImageState], actions: list[Action]) -> Status:
    if st is None:
        return Status.ADDED
    return Status.CHANGED if actions else Status.UNCHANGED


def _orphan(name: str) -> ImageDiff:
    diff = ImageDiff(name, Status.REMOVED)
    diff.reasons = ["no longer in the site (orphaned); --prune-images removes its definition"]
    return diff


def _frozen_reasons(change: Optional[ImageDiff]) -> list[str]:
    reasons = ["frozen: never touched by imagespec"]
    if change is not None and change.status != Status.UNCHANGED:
        reasons.append("frozen: changes are not applied")
    return reasons


def _reasons(
    actions: list[Action],
    st: Optional[ImageState],
    change: Optional[ImageDiff],
    drift: list[str],
    rebuild: bool,
    builder: str,
    definition: list[str],
) -> list[str]:
    """Why the actions are owed; `definition`: the director's own reasons (a drifted
    definition, a changed or missing director file)."""
    reasons = _history(st, builder)
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
    reasons += definition
    if not reasons and actions:
        reasons.append("recorded digests differ")
    return reasons


def _history(st: Optional[ImageState], builder: str) -> list[str]:
    """What the director's record says about the image's last apply."""
    if (
        st is None
        or st.status == BuildStatus.NEVER
        or (st.status == BuildStatus.SKIPPED and builder != "none")
    ):
        return ["never built" if builder != "none" else "never delivered"]
    if st.status == BuildStatus.FAILED and st.interrupted:
        return [f"interrupted last time ({st.failed_stage or 'unknown stage'})"]
    if st.status == BuildStatus.FAILED:
        return [
            f"failed last time ({st.failed_stage or 'unknown stage'}): {st.error or 'see the log'}"
        ]
    return []


def _skipped_files(
    rendered: RenderedDirector, frozen: set[str], only: Optional[set[str]]
) -> set[str]:
    """Files the plan leaves alone: those of frozen images only, and with --only the others'."""
    skip = _frozen_only_files(rendered, frozen)
    if only:
        skip |= set(rendered.files) - {p for n in only for p in rendered.images[n].files}
    return skip


def _frozen_only_files(rendered: RenderedDirector, frozen: set[str]) -> set[str]:
    """Files used only by frozen images: imagespec leaves them as they are."""
    users: dict[str, set[str]] = {}
    for name, image in rendered.images.items():
        for path in image.files:
            users.setdefault(path, set()).add(name)
    return {p for p, names in users.items() if names <= frozen}
