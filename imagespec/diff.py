"""What changed between two renderings of a director, per image, and what it requires.

Pure: takes two SiteViews (any sources) and compares their renderings.  Only
images a change can reach are rendered: an image is reached when a profile of
its chain, a file one of those profiles names, its own entry in
imagespec.yaml, or the site-wide settings changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from .actions import ALL_ACTIONS, HEAVIEST_FIRST, Action, Stage, Status, heaviest_of, stage_actions
from .load import SiteDocs
from .noderange import booting
from .render import RenderedDirector, RenderedImage, RenderedVariant
from .render.kinds import PLAIN_LISTS, SCRIPTS, SYNC_SOURCES, ScriptKind
from .resolve import SyncItem
from .site import SiteView


@dataclass
class ImageDiff:
    name: str
    status: Status
    actions: list[Action] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)
    via: list[str] = field(default_factory=list)  # changed profiles of the chain
    frozen: bool = False
    reasons: list[str] = field(default_factory=list)  # plan: why each action is owed

    @property
    def heaviest(self) -> Optional[Action]:
        return heaviest_of(self.actions)

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "actions": list(self.actions), "changes": self.changes}


@dataclass(frozen=True)
class NodeMove:
    """Nodes of a director's `nodes:` map that boot another image (None: not assigned)."""

    nodes: str
    old: Optional[str]
    new: Optional[str]

    def as_json(self) -> dict[str, Optional[str]]:
        return {"nodes": self.nodes, "from": self.old, "to": self.new}

    def __str__(self) -> str:
        return f"{self.nodes}: {self.old or 'not assigned'} -> {self.new or 'not assigned'}"


def node_moves(old: Mapping[str, str], new: Mapping[str, str]) -> list[NodeMove]:
    """Entries of a `nodes:` map that differ, by noderange as written."""
    return [
        NodeMove(key, old.get(key), new.get(key))
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]


@dataclass
class DiffReport:
    base: str
    head: str
    director: str
    images: dict[str, ImageDiff]
    nodes: list[NodeMove] = field(default_factory=list)  # the director's `nodes:` changes
    booting: dict[str, str] = field(default_factory=dict)  # image -> who boots it ("412 nodes")

    @property
    def changed(self) -> bool:
        moved = bool(self.nodes)
        return moved or any(d.status != Status.UNCHANGED for d in self.images.values())

    def summary(self) -> dict[str, Any]:
        """Each image once, under its heaviest action; removed images apart; unchanged counted."""
        out: dict[str, Any] = {action: [] for action in HEAVIEST_FIRST}
        out[Status.REMOVED] = []
        unchanged = 0
        for name, image in sorted(self.images.items()):
            if image.status == Status.REMOVED:
                out["removed"].append(name)
            elif image.heaviest:
                out[image.heaviest].append(name)
            else:
                unchanged += 1
        out[Status.UNCHANGED] = unchanged
        return out

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "base": self.base,
            "head": self.head,
            "images": {n: d.as_json() for n, d in sorted(self.images.items())},
            "summary": self.summary(),
        }
        if self.nodes:  # only then: sites without `nodes:` keep SPEC §8's exact shape
            doc["nodes"] = [m.as_json() for m in self.nodes]
        return doc


# ----------------------------------------------------------------- reach


def changed_profiles(old: Optional[SiteView], new: SiteView, changed: set[str]) -> set[str]:
    """Profiles whose meaning changed: added, removed, or a different model (not just comments)."""
    names = {p[len("profiles/") : -len(".yaml")] for p in changed if p.startswith("profiles/")}
    if old is None:
        return names
    a, b = old.docs.profiles, new.docs.profiles
    return {n for n in names if n not in a or n not in b or a[n].model != b[n].model}


def profile_refs(docs: SiteDocs, name: str) -> set[str]:
    """Site-relative files a profile names (scripts and sync sources), removals included."""
    model = docs.profiles[name].model
    refs: set[str] = set()
    for kind in SCRIPTS:
        for raw in getattr(model, kind.field):
            words = raw.lstrip("-").split()
            if words:
                refs.add(f"{kind.folder}/{words[0]}")
    folder = SYNC_SOURCES.folder
    for entry in model.sync:
        for src in [] if entry.from_director else entry.sources:
            refs.update({f"{folder}/{src}", f"{folder}/{src}.post"})
    return refs


def _site_settings(docs: SiteDocs) -> Any:
    """imagespec.yaml without its images: what every image depends on."""
    return docs.site.model.model_copy(update={"images": {}})


def reached_images(old: Optional[SiteView], new: SiteView, changed: set[str]) -> set[str]:
    """Images a change between two sites can reach (the rest are unchanged by construction)."""
    names = set(new.images) | set(old.images if old else ())
    if old is None or (
        "imagespec.yaml" in changed and _site_settings(old.docs) != _site_settings(new.docs)
    ):
        return names
    old_images, new_images = old.docs.site.model.images, new.docs.site.model.images
    reached = {n for n in names if old_images.get(n) != new_images.get(n)}
    profiles = changed_profiles(old, new, changed)
    files = {p for p in changed if not p.startswith("profiles/") and p != "imagespec.yaml"}
    for view in (old, new):
        refs = {name: profile_refs(view.docs, name) for name in view.docs.profiles}
        for name, image in view.docs.site.model.images.items():
            chain = view.graph.chains.get(image.profile, ())
            if profiles.intersection(chain) or any(files & refs[p] for p in chain):
                reached.add(name)
    return reached


# ----------------------------------------------------------------- compare


def _file_ids(image: RenderedImage, tree: RenderedDirector) -> dict[str, str]:
    """The files a build or boot uses; stanzas (the image's and its variants') are `define`."""
    stanzas = image.stanza_paths
    return {p: tree.files[p].identity for p in image.files if p not in stanzas}


def image_actions(
    old: RenderedImage, new: RenderedImage, old_tree: RenderedDirector, new_tree: RenderedDirector
) -> list[Action]:
    """SPEC §6: sync if its files changed, then define/genimage/pack from the digests."""
    sync = [Action.SYNC] if _file_ids(old, old_tree) != _file_ids(new, new_tree) else []
    differ = {stage for stage in Stage if old.digests[stage] != new.digests[stage]}
    return sync + stage_actions(differ)


def _added_removed(old: list[str], new: list[str]) -> dict[str, list[str]]:
    return {"added": [v for v in new if v not in old], "removed": [v for v in old if v not in new]}


def _content_changed(
    paths: dict[str, str], old_tree: RenderedDirector, new_tree: RenderedDirector
) -> list[str]:
    """Names whose file exists on both sides with different bytes or mode."""
    return [
        name
        for name, path in paths.items()
        if path in old_tree.files
        and path in new_tree.files
        and old_tree.files[path].identity != new_tree.files[path].identity
    ]


def image_changes(
    old: RenderedImage, new: RenderedImage, old_tree: RenderedDirector, new_tree: RenderedDirector
) -> dict[str, Any]:
    """The human-meaningful differences, keyed like `show`; empty keys left out."""
    a, b = old.resolved, new.resolved
    changes: list[tuple[str, Optional[dict[str, Any]]]] = [
        *((k.key, _list_change(a.values(k.field), b.values(k.field))) for k in PLAIN_LISTS),
        *((k.key, _script_change(k, old, new, old_tree, new_tree)) for k in SCRIPTS),
        ("synclist", _sync_changes(old, new, old_tree, new_tree)),
        ("litefile", _litefile_changes(old, new)),
        ("attributes", _attribute_changes(old.attributes, new.attributes)),
        ("variants", _variant_changes(old, new)),
        ("chain", _pair(list(a.chain), list(b.chain))),
        ("frozen", _pair(old.frozen, new.frozen)),
    ]
    return {key: change for key, change in changes if change}


def _pair(old: Any, new: Any) -> Optional[dict[str, Any]]:
    return {"old": old, "new": new} if old != new else None


def _list_change(before: list[str], after: list[str]) -> Optional[dict[str, Any]]:
    """Entries added and removed, or the same entries in a new order (e.g. moved to an earlier
    profile); None when the list is the same."""
    delta = _added_removed(before, after)
    if delta["added"] or delta["removed"]:
        return dict(delta)
    return {**delta, "reordered": True} if before != after else None


def _attribute_changes(old: dict[str, str], new: dict[str, str]) -> dict[str, Any]:
    return {
        k: {"old": old.get(k), "new": new.get(k)}
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    }


def _variant_changes(old: RenderedImage, new: RenderedImage) -> dict[str, Any]:
    """Boot variants added, removed and changed, with their attribute changes: for an
    added variant, where it differs from its image (`old` is the image's value); for a
    changed one, its values before and after where it does not just follow its image
    (an image attribute change is reported under `attributes`)."""
    a = {v.variant: v for v in old.variants.values()}
    b = {v.variant: v for v in new.variants.values()}
    attributes = {n: _attribute_changes(new.attributes, b[n].attributes) for n in b if n not in a}
    for name in set(a) & set(b):
        attributes[name] = {
            k: pair
            for k, pair in _attribute_changes(a[name].attributes, b[name].attributes).items()
            if not _follows_image(k, old, a[name], new, b[name])
        }
    out: dict[str, Any] = {}
    for key, names in (
        ("added", sorted(set(b) - set(a))),
        ("removed", sorted(set(a) - set(b))),
        ("changed", sorted(n for n in set(a) & set(b) if attributes[n])),
    ):
        if names:
            out[key] = names
    if any(attributes.values()):
        out["attributes"] = {n: change for n, change in sorted(attributes.items()) if change}
    return out


def _follows_image(
    key: str, old: RenderedImage, a: RenderedVariant, new: RenderedImage, b: RenderedVariant
) -> bool:
    """The variant has its image's value of `key` before and after (it changed with it)."""
    before = old.attributes.get(key) == a.attributes.get(key)
    after = new.attributes.get(key) == b.attributes.get(key)
    return before and after


def _script_paths(image: RenderedImage, kind: ScriptKind, tree: RenderedDirector) -> dict[str, str]:
    family = image.resolved.family
    return {
        script: kind.place(tree.layout, family, script)
        for script in (value.split()[0] for value in image.resolved.values(kind.field))
    }


def _script_change(
    kind: ScriptKind,
    old: RenderedImage,
    new: RenderedImage,
    old_tree: RenderedDirector,
    new_tree: RenderedDirector,
) -> Optional[dict[str, Any]]:
    """The list's change (whole, or added and removed) and the scripts whose content changed."""
    before, after = old.resolved.values(kind.field), new.resolved.values(kind.field)
    content = _content_changed(_script_paths(new, kind, new_tree), old_tree, new_tree)
    if before == after and not content:
        return None
    entry: dict[str, Any] = {}
    if kind.whole_list and before != after:
        entry.update(before=before, after=after)
    elif before != after:
        entry.update(_added_removed(before, after))
    if content:
        entry["content"] = content
    return entry


def _sync_paths(image: RenderedImage) -> dict[str, tuple[str, SyncItem]]:
    """Image path -> (the source that writes it, its synclist line): what SPEC §4 keys on."""
    return {
        path: (src, item)
        for item in image.resolved.merge.sync
        for path, src in zip(item.paths, item.sources)
    }


def _sync_changes(
    old: RenderedImage, new: RenderedImage, old_tree: RenderedDirector, new_tree: RenderedDirector
) -> dict[str, Any]:
    """Paths added and removed, paths written from another source, mode or nodes, and
    sources whose content changed; `director`: the added or changed paths written from a
    director file (path -> that file), whose content git never holds."""
    a, b = _sync_paths(old), _sync_paths(new)
    out: dict[str, Any] = {}
    added = [p for p in b if p not in a]
    removed = [p for p in a if p not in b]
    retargeted = [
        {"dest": p, "old": _sync_how(*a[p]), "new": _sync_how(*b[p])}
        for p in b
        if p in a and _sync_how(*a[p]) != _sync_how(*b[p])
    ]
    changed = [*added, *(str(r["dest"]) for r in retargeted)]
    director = {p: b[p][0] for p in changed if b[p][1].director}
    sources = {
        src: SYNC_SOURCES.place(new_tree.layout, src)
        for src, item in b.values()
        if not item.director
    }
    content = _content_changed(sources, old_tree, new_tree)
    for key, value in (("added", added), ("removed", removed), ("retargeted", retargeted)):
        if value:
            out[key] = value
    if content:
        out["content"] = content
    if director:
        out["director"] = director
    return out


def _sync_how(src: str, item: SyncItem) -> dict[str, Any]:
    """How a path is written; `"from": "director"` only for a director file."""
    how: dict[str, Any] = {"src": [src], "mode": item.mode, "nodes": item.nodes}
    if item.director:
        how["from"] = "director"
    return how


def _litefile_changes(old: RenderedImage, new: RenderedImage) -> dict[str, Any]:
    a = {p: e.value for p, e in old.resolved.merge.litefile.items()} if old.statelite else {}
    b = {p: e.value for p, e in new.resolved.merge.litefile.items()} if new.statelite else {}
    out: dict[str, Any] = {}
    added = [{"file": p, "options": b[p]} for p in sorted(b) if p not in a]
    removed = [{"file": p, "options": a[p]} for p in sorted(a) if p not in b]
    changed = [{"file": p, "old": a[p], "new": b[p]} for p in sorted(b) if p in a and a[p] != b[p]]
    for key, value in (("added", added), ("removed", removed), ("changed", changed)):
        if value:
            out[key] = value
    return out


def compare(
    old: Optional[SiteView],
    new: SiteView,
    director: str,
    changed: set[str],
    base: str,
    head: str,
) -> DiffReport:
    """Per image status, actions and changes of one director between two sites."""
    reached = reached_images(old, new, changed)
    old_has = old is not None and director in old.directors
    old_names = set(old.images_of(director)) if old_has and old else set()
    new_names = set(new.images_of(director))
    old_tree = old.render(director, reached & old_names) if old and old_has else None
    new_tree = new.render(director, reached & new_names)
    profiles = changed_profiles(old, new, changed)
    images: dict[str, ImageDiff] = {}
    for name in sorted(old_names | new_names):
        if name not in reached:
            images[name] = ImageDiff(
                name, Status.UNCHANGED, frozen=new.docs.site.model.images[name].frozen
            )
            continue
        images[name] = _image_diff(name, old_tree, new_tree, profiles)
    old_nodes = old.docs.site.model.directors[director].nodes if old and old_has else {}
    new_nodes = new.docs.site.model.directors[director].nodes
    owners = new.docs.site.model.osimages_on(director)  # a variant's nodes boot its image
    return DiffReport(
        base=base,
        head=head,
        director=director,
        images=images,
        nodes=node_moves(old_nodes, new_nodes),
        booting=booting({key: owners.get(o, o) for key, o in new_nodes.items()}),
    )


def _image_diff(
    name: str,
    old_tree: Optional[RenderedDirector],
    new_tree: RenderedDirector,
    changed_profiles: set[str],
) -> ImageDiff:
    old = old_tree.images.get(name) if old_tree else None
    new = new_tree.images.get(name)
    if new is None:
        assert old is not None
        return ImageDiff(name, Status.REMOVED, via=[], frozen=old.frozen)
    if old is None or old_tree is None:
        return ImageDiff(name, Status.ADDED, actions=list(ALL_ACTIONS), frozen=new.frozen)
    actions = image_actions(old, new, old_tree, new_tree)
    changes = image_changes(old, new, old_tree, new_tree)
    if not actions:
        # nothing to do on a director: e.g. an ancestor profile renamed, or frozen toggled
        return ImageDiff(name, Status.UNCHANGED, frozen=new.frozen)
    chain = list(dict.fromkeys([*old.resolved.chain, *new.resolved.chain]))
    via = [p for p in chain if p in changed_profiles]
    return ImageDiff(name, Status.CHANGED, actions, changes, via, new.frozen)
