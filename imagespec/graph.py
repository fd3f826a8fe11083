"""The profile DAG: parents, cycles, unknown names, and each profile's chain.

Edges point from a profile to each parent it inherits.  A chain is the SPEC's
linearisation: ancestors first, depth-first through `inherits` in declared
order, each profile once, the profile itself last.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from .errors import ConfigError, Pos, Problem, suggest
from .load import SiteDocs


@dataclass(frozen=True)
class ProfileGraph:
    """The validated DAG and the chain of every profile."""

    graph: nx.DiGraph[str]
    chains: dict[str, tuple[str, ...]]

    def images_reaching(self, profile: str) -> set[str]:
        """Profiles whose chain includes the given profile (itself included)."""
        return {name for name, chain in self.chains.items() if profile in chain}


def build_graph(docs: SiteDocs) -> ProfileGraph:
    """Build the DAG; raise ConfigError for unknown parents, cycles and unknown image profiles."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    problems: list[Problem] = []
    for name, loaded in sorted(docs.profiles.items()):
        graph.add_node(name)
        for index, parent in enumerate(loaded.model.inherits):
            pos = loaded.pos("inherits", index)
            if parent not in docs.profiles:
                hint = suggest(parent, docs.profiles)
                problems.append(Problem(pos, f"unknown parent '{parent}'{hint}"))
            elif graph.has_edge(name, parent):
                problems.append(
                    Problem(pos, f"'{parent}' is inherited twice; remove one", "warning")
                )
            else:
                graph.add_edge(name, parent, pos=pos, index=index)
    problems += _cycle_problems(graph)
    problems += _image_problems(docs)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ConfigError(errors)
    docs.warnings.extend(p for p in problems if p.severity == "warning")
    _check_depth(docs, graph)
    chains = {name: linearise(docs, name) for name in docs.profiles}
    return ProfileGraph(graph=graph, chains=chains)


# Real sites inherit a handful of levels; a far deeper graph is a mistake or an
# attack, and every image would pay for merging it.
MAX_DEPTH = 64


def _check_depth(docs: SiteDocs, graph: nx.DiGraph[str]) -> None:
    """Refuse inheritance deeper than MAX_DEPTH levels, naming the deepest profile."""
    path = nx.dag_longest_path(graph)
    if len(path) > MAX_DEPTH:
        raise ConfigError(
            [
                Problem(
                    docs.profiles[path[0]].pos("inherits"),
                    f"profile '{path[0]}' inherits through {len(path) - 1} levels (at most {MAX_DEPTH}"
                    " are allowed); flatten the inheritance",
                )
            ]
        )


def _cycle_problems(graph: nx.DiGraph[str]) -> list[Problem]:
    problems = []
    for component in nx.strongly_connected_components(graph):
        start = min(component)
        if len(component) == 1 and not graph.has_edge(start, start):
            continue
        cycle = _cycle_from(graph, start, component)
        pos: Pos = graph.edges[cycle[0], cycle[1]]["pos"]
        problems.append(Problem(pos, f"inheritance cycle: {' -> '.join(cycle)}"))
    return problems


def _cycle_from(graph: nx.DiGraph[str], start: str, component: set[str]) -> list[str]:
    """A shortest cycle through start inside its component, as a closed path."""
    sub = graph.subgraph(component)
    best: list[str] = []
    for succ in sorted(sub.successors(start)):
        path = [start] if succ == start else nx.shortest_path(sub, succ, start)
        if not best or len(path) < len(best):
            best = path
    return [start, *best] if best[0] != start else [start, start]


def _image_problems(docs: SiteDocs) -> list[Problem]:
    problems = []
    site = docs.site
    for name, image in site.model.images.items():
        if image.profile not in docs.profiles:
            hint = suggest(image.profile, docs.profiles)
            problems.append(
                Problem(
                    site.pos("images", name, "profile"),
                    f"image '{name}': unknown profile '{image.profile}'{hint}",
                )
            )
        if image.distro not in site.model.distros:
            hint = suggest(image.distro, site.model.distros)
            problems.append(
                Problem(
                    site.pos("images", name, "distro"),
                    f"image '{name}': unknown distro '{image.distro}'{hint}",
                )
            )
    for director, settings in site.model.directors.items():
        for distro in settings.distros:
            if distro not in site.model.distros:
                hint = suggest(distro, site.model.distros)
                problems.append(
                    Problem(
                        site.pos("directors", director, "distros", distro),
                        f"director '{director}' overrides unknown distro '{distro}'{hint}",
                    )
                )
    return problems


def linearise(docs: SiteDocs, name: str) -> tuple[str, ...]:
    """Ancestors first, depth-first in declared order, each once, the profile last.

    Iterative, so that a chain thousands of profiles deep cannot exhaust the stack.
    """
    chain: list[str] = []
    seen = {name}
    stack = [(name, iter(docs.profiles[name].model.inherits))]
    while stack:
        current, parents = stack[-1]
        parent = next((p for p in parents if p not in seen), None)
        if parent is None:
            stack.pop()
            chain.append(current)
        else:
            seen.add(parent)
            stack.append((parent, iter(docs.profiles[parent].model.inherits)))
    return tuple(chain)
