"""Collected images -> profiles: what the site tells first, then common entries hoisted.

1. Every xCAT file (a list, an included list, a synclist, a postinstall
   script or dispatcher) used by two or more images becomes a shared profile,
   named after the file's stem (`base.pkglist` -> `base`); files with the same
   stem and the same images are one profile.
2. An image's chain is its shared profiles in the order its attributes list
   their files, then its leaf, named after the osimage's xCAT `profile`.  A
   shared profile inherits every shared profile that comes before it in the
   chain of every image using it.
3. Entries whose order carries no meaning (packages and otherpkgs before any
   directive of their profile, erase, exclude, plain sync entries, litefile
   rows, attributes) held by two or more unrelated profiles move into a new
   parent per distinct set of holders (`common` when every leaf holds it);
   an entry a profile's own ancestors already hold is dropped from it.
Order-sensitive entries (postinstall, postscripts, directives) stay where
the files put them; the fidelity proof checks the result.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Optional

from .collect import Collected, Item

SUFFIXES = (".otherpkgs.pkglist", ".pkglist", ".exlist", ".synclist", ".postinstall", ".sh")
HOISTABLE = ("erase", "erase_first", "exclude", "litefile", "attributes")


@dataclass
class ProfileSpec:
    name: str
    items: list[Item] = field(default_factory=list)
    inherits: list[str] = field(default_factory=list)
    images: set[str] = field(default_factory=set)
    files: list[str] = field(default_factory=list)  # xCAT files it came from
    made: str = "leaf"  # leaf | file | common


@dataclass
class Factored:
    profiles: dict[str, ProfileSpec]
    chains: dict[str, list[str]]  # image -> chain (resolved order)
    leaf_of: dict[str, str]  # image -> its profile
    losses: dict[str, list[str]]
    hoisted: dict[str, int]  # new parent -> number of entries


def stem(path: str) -> str:
    base = posixpath.basename(path)
    for suffix in SUFFIXES:
        if base.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)]
    return base


def profile_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", text).strip(".-_") or "shared"
    return name if name[0].isalnum() else f"p{name}"


def factor(images: list[Collected]) -> Factored:
    """Profiles, chains and leaves for the collected images (sorted by name)."""
    users: dict[str, set[str]] = {}
    for image in images:
        for item in image.items:
            if item.origin:
                users.setdefault(item.origin, set()).add(image.name)
    shared_files = {f for f, u in users.items() if len(u) >= 2}
    groups: dict[tuple[str, frozenset[str]], list[str]] = {}
    for path in sorted(shared_files):
        groups.setdefault((stem(path), frozenset(users[path])), []).append(path)
    leaves = {image.profile for image in images}
    profiles: dict[str, ProfileSpec] = {}
    file_profile: dict[str, str] = {}
    for (base, who), paths in sorted(groups.items(), key=lambda g: (-len(g[0][1]), g[0][0])):
        name = _unique(profile_name(base), profiles, ())
        profiles[name] = ProfileSpec(name, images=set(who), files=sorted(paths), made="file")
        file_profile.update(dict.fromkeys(paths, name))
    orders = {image.name: _order(image, file_profile) for image in images}
    _link_shared(profiles, orders)
    losses: dict[str, list[str]] = {image.name: [] for image in images}
    _settle_names(images, profiles, file_profile, orders, leaves)
    leaf_of = _leaves(images, profiles, file_profile, orders, losses)
    chains = {image.name: chain_of(profiles, leaf_of[image.name]) for image in images}
    _drop_redundant(profiles, chains)
    hoisted = _hoist(profiles, chains, leaves)
    chains = {name: chain_of(profiles, leaf) for name, leaf in leaf_of.items()}
    _drop_redundant(profiles, chains)
    return Factored(profiles, chains, leaf_of, losses, hoisted)


def _unique(name: str, taken: Iterable[str], reserved: Iterable[str]) -> str:
    used = set(taken) | set(reserved)
    candidate, number = name, 1
    while candidate in used:
        number += 1
        candidate = f"{name}-{number}"
    return candidate


def _order(image: Collected, file_profile: dict[str, str]) -> list[str]:
    """The image's shared profiles in the order its attributes name their files."""
    edges: list[tuple[str, str]] = []
    seen: list[str] = []
    by_kind: dict[str, list[str]] = {}
    for item in image.items:
        name = file_profile.get(item.origin)
        if name is None:
            continue
        if name not in seen:
            seen.append(name)
        kind = by_kind.setdefault(item.kind, [])
        if name not in kind:
            if kind:
                edges.append((kind[-1], name))
            kind.append(name)
    import networkx as nx

    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(seen)
    graph.add_edges_from(edges)
    try:
        return list(nx.lexicographical_topological_sort(graph, key=seen.index))
    except nx.NetworkXUnfeasible:
        return seen


def _link_shared(profiles: dict[str, ProfileSpec], orders: dict[str, list[str]]) -> None:
    """A shared profile inherits what comes before it in every chain it is part of."""
    for name, spec in profiles.items():
        before: Optional[list[str]] = None
        for image in sorted(spec.images):
            order = orders[image]
            prefix = order[: order.index(name)] if name in order else []
            before = prefix if before is None else [p for p in before if p in prefix]
        spec.inherits = _reduce(profiles, before or [])


def _reduce(profiles: dict[str, ProfileSpec], wanted: list[str]) -> list[str]:
    """The fewest parents whose chain is `wanted` (readable YAML), else `wanted` as it is."""
    covered = _ancestors_of(profiles, wanted)
    pick = [p for p in wanted if p not in covered]
    return pick if _chain_of_parents(profiles, pick) == wanted else wanted


def _ancestors_of(profiles: dict[str, ProfileSpec], names: list[str]) -> set[str]:
    out: set[str] = set()
    for name in names:
        out.update(chain_of(profiles, name)[:-1])
    return out


def _chain_of_parents(profiles: dict[str, ProfileSpec], parents: list[str]) -> list[str]:
    chain: list[str] = []
    for parent in parents:
        for step in chain_of(profiles, parent):
            if step not in chain:
                chain.append(step)
    return chain


def chain_of(profiles: dict[str, ProfileSpec], name: str) -> list[str]:
    """SPEC §4: ancestors first, depth-first through inherits in order, each once, itself last."""
    chain: list[str] = []

    def visit(current: str, path: tuple[str, ...]) -> None:
        if current in path:
            return
        for parent in profiles[current].inherits:
            visit(parent, (*path, current))
        if current not in chain:
            chain.append(current)

    visit(name, ())
    return chain


def _settle_names(
    images: list[Collected],
    profiles: dict[str, ProfileSpec],
    file_profile: dict[str, str],
    orders: dict[str, list[str]],
    leaves: set[str],
) -> None:
    """A shared profile named like a leaf becomes that leaf when the images of that
    xCAT profile have nothing else; otherwise it is renamed `<name>-common`."""
    for name in sorted(leaves & set(profiles)):
        users = [i for i in images if i.profile == name]
        if all(
            orders[i.name] and orders[i.name][-1] == name and not _own(i, file_profile, True)
            for i in users
        ):
            continue
        new = _unique(f"{name}-common", profiles, leaves)
        spec = profiles.pop(name)
        spec.name = new
        profiles[new] = spec
        for other in profiles.values():
            other.inherits = [new if p == name else p for p in other.inherits]
        for path, owner in list(file_profile.items()):
            if owner == name:
                file_profile[path] = new
        for order in orders.values():
            order[:] = [new if p == name else p for p in order]


def _own(
    image: Collected, file_profile: dict[str, str], skip_attributes: bool = False
) -> list[Item]:
    return [
        i
        for i in image.items
        if i.origin not in file_profile and not (skip_attributes and i.kind == "attributes")
    ]


def _leaves(
    images: list[Collected],
    profiles: dict[str, ProfileSpec],
    file_profile: dict[str, str],
    orders: dict[str, list[str]],
    losses: dict[str, list[str]],
) -> dict[str, str]:
    """Each image's leaf profile (named after its xCAT profile) with what no shared file holds."""
    leaf_of: dict[str, str] = {}
    firsts: dict[str, Collected] = {}
    for spec in profiles.values():
        spec.items = _file_items(images, spec, file_profile)
    for image in images:
        name = image.profile
        leaf_of[image.name] = name
        first = firsts.get(name)
        if first is not None:
            if _content(first, file_profile, orders) != _content(image, file_profile, orders):
                losses[image.name].append(
                    f"osimage {first.name} has the same xCAT profile '{name}' but other entries;"
                    f" imagespec names an image's profile after it, so {image.name} would get"
                    f" {first.name}'s entries"
                )
            profiles[name].images.add(image.name)
            continue
        firsts[name] = image
        own = _own(image, file_profile)
        if name in profiles:  # the shared file profile is this image's own (_settle_names)
            profiles[name].items += own
            continue
        spec = ProfileSpec(name, items=own, images={image.name})
        spec.files = sorted({i.origin for i in own if i.origin})
        spec.inherits = _reduce(profiles, [p for p in orders[image.name] if p in profiles])
        profiles[name] = spec
    return leaf_of


def _content(image: Collected, file_profile: dict[str, str], orders: dict[str, list[str]]) -> Any:
    own = [i.key for i in image.items if i.origin not in file_profile and i.kind != "attributes"]
    return (own, orders[image.name])


def _file_items(
    images: list[Collected], spec: ProfileSpec, file_profile: dict[str, str]
) -> list[Item]:
    """A shared profile's entries: its files' lines, as the first image using it read them."""
    image = next(i for i in images if i.name == min(spec.images))
    items: list[Item] = []
    for item in image.items:
        if file_profile.get(item.origin) != spec.name:
            continue
        if item in items and not (isinstance(item.value, str) and item.value.startswith("#")):
            continue  # a file included twice in one image: its entries once
        items.append(item)
    return items


def _ancestors(profiles: dict[str, ProfileSpec], name: str) -> list[str]:
    return chain_of(profiles, name)[:-1]


def _slot(item: Item) -> tuple[str, Any]:
    """What a later level replaces: a sync dest, a litefile path, an attribute name."""
    if item.kind == "sync":
        values = dict(item.value)
        return ("sync", (values["dest"], values.get("src")))
    if item.kind in ("litefile", "attributes"):
        return (item.kind, item.value[0])
    return item.key


def _drop_redundant(profiles: dict[str, ProfileSpec], chains: dict[str, list[str]]) -> None:
    """Drop entries the profile's own chain already holds with the same value: lists keep
    the first of equal entries, and a replace by an equal value changes nothing."""
    for name, spec in profiles.items():
        latest: dict[tuple[str, Any], Any] = {}
        for parent in _ancestors(profiles, name):
            for item in profiles[parent].items:
                latest[_slot(item)] = item.key
        spec.items = [i for i in spec.items if _is_directive(i) or latest.get(_slot(i)) != i.key]


def _is_directive(item: Item) -> bool:
    return isinstance(item.value, str) and item.value.startswith("#")


def _hoistable(spec: ProfileSpec, profiles: dict[str, ProfileSpec]) -> list[Item]:
    """Entries of a profile that can move to a new parent placed just before it."""
    out = []
    chain_directives = any(
        _is_directive(i) for p in _ancestors(profiles, spec.name) for i in profiles[p].items
    )
    blocked: set[str] = set()
    for item in spec.items:
        if item.kind in ("packages", "otherpkgs"):
            if _is_directive(item):
                blocked.add(item.kind)
            elif item.kind not in blocked and not chain_directives:
                out.append(item)
        elif item.kind in HOISTABLE or (
            item.kind == "sync" and dict(item.value).get("mode", "copy") == "copy"
        ):
            out.append(item)
    return out


def _hoist(
    profiles: dict[str, ProfileSpec], chains: dict[str, list[str]], leaves: set[str]
) -> dict[str, int]:
    """Entries held by two or more unrelated profiles move into a parent per set of holders."""
    holders: dict[tuple[str, Any], list[str]] = {}
    for name in sorted(profiles):
        for item in _hoistable(profiles[name], profiles):
            names = holders.setdefault(item.key, [])
            if name not in names:
                names.append(name)
    by_set: dict[tuple[str, ...], list[tuple[str, Any]]] = {}
    for key, names in holders.items():
        unrelated = [n for n in names if not any(m in _ancestors(profiles, n) for m in names)]
        if len(unrelated) >= 2 and len(unrelated) == len(names):
            by_set.setdefault(tuple(sorted(names)), []).append(key)
    hoisted: dict[str, int] = {}
    everyone = set().union(*(spec.images for spec in profiles.values()))
    for number, (holder_set, keys) in enumerate(
        sorted(by_set.items(), key=lambda s: (-len(s[0]), s[0])), 1
    ):
        names = list(holder_set)
        reached = set().union(*(profiles[n].images for n in names))
        if reached == everyone:
            base = "common"
        elif len(names) <= 3:
            base = "-".join(names) + "-common"
        else:
            base = f"common-{number}"
        new = _unique(profile_name(base), profiles, leaves)
        moved = [i for i in profiles[names[0]].items if i.key in set(keys)]
        spec = ProfileSpec(new, items=[Item(i.kind, i.value) for i in moved], made="common")
        for holder in names:
            keep = set(keys)
            profiles[holder].items = [i for i in profiles[holder].items if i.key not in keep]
            profiles[holder].inherits.append(new)
            spec.images |= profiles[holder].images
        profiles[new] = spec
        hoisted[new] = len(moved)
    return hoisted


def duplicated_entries(profiles: dict[str, list[tuple[str, Any]]]) -> list[str]:
    """Entries (kind, value) held by two or more profiles: a common parent could hold them.

    Order-sensitive entries (postinstall, postscripts, directives) are not counted:
    their place in the chain is what they mean.  Used by the tests on imported sites.
    """
    seen: dict[tuple[str, Any], list[str]] = {}
    for name, entries in sorted(profiles.items()):
        for key in entries:
            kind, value = key
            if kind in ("postinstall", "postscripts", "postbootscripts") or (
                isinstance(value, str) and value.startswith("#")
            ):
                continue
            seen.setdefault((kind, repr(value)), []).append(name)
    return [f"{k} {v} in {', '.join(n)}" for (k, v), n in sorted(seen.items()) if len(n) >= 2]
