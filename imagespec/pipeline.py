"""load -> graph -> resolve -> render, as one value the commands share.

Opening a site loads and checks everything that needs no director; each
director is resolved and rendered on first use and kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .errors import ConfigError, Problem
from .graph import ProfileGraph, build_graph
from .load import SiteDocs, load_site
from .render import RenderedDirector, render_director
from .resolve import ChainMerge, merge_profiles, resolve_director
from .source import SiteSource
from .validate import check_profiles, check_rendered, check_site


@dataclass
class SiteView:
    """A loaded, checked site; renders directors on demand."""

    docs: SiteDocs
    graph: ProfileGraph
    merges: dict[str, ChainMerge]
    strict: bool = False
    problems: list[Problem] = field(default_factory=list)
    _rendered: dict[str, RenderedDirector] = field(default_factory=dict)

    @property
    def directors(self) -> list[str]:
        return list(self.docs.site.model.directors)

    @property
    def warnings(self) -> list[Problem]:
        return sorted(
            set(p for p in self.problems if p.severity == "warning"),
            key=lambda p: (p.pos, p.message),
        )

    def render(self, director: str) -> RenderedDirector:
        """The director's tree; raises ConfigError for problems only rendering shows."""
        if director not in self._rendered:
            resolution = resolve_director(self.docs, self.graph, director, self.merges)
            rendered = render_director(self.docs, resolution)
            self._raise_errors(check_rendered(self.docs, rendered))
            self._rendered[director] = rendered
        return self._rendered[director]

    def render_all(self) -> dict[str, RenderedDirector]:
        return {name: self.render(name) for name in self.directors}

    def _raise_errors(self, problems: list[Problem]) -> None:
        self.problems.extend(problems)
        errors = [p for p in problems if p.severity == "error" or self.strict]
        if errors:
            raise ConfigError(set(_as_error(p) for p in errors))


def _as_error(problem: Problem) -> Problem:
    return Problem(problem.pos, problem.message, "error")


def open_site(
    source: SiteSource, strict: bool = False, profiles: Optional[set[str]] = None
) -> SiteView:
    """Load and check a site; raise ConfigError with every problem (warnings too under strict)."""
    docs = load_site(source)
    graph = build_graph(docs)
    problems = list(docs.warnings) + check_site(docs) + check_profiles(docs)
    view = SiteView(docs=docs, graph=graph, merges={}, strict=strict)
    view._raise_errors(problems)
    view.merges = merge_profiles(
        docs, graph, profiles if profiles is not None else set(docs.profiles)
    )
    view._raise_errors(unused_removals(view.merges))
    return view


def unused_removals(merges: dict[str, ChainMerge]) -> list[Problem]:
    """Removals that remove nothing in every chain they are part of.

    A removal in a shared profile may matter only in some descendants' chains
    (where another parent added the entry); it is reported only when it is
    useless everywhere.
    """
    verdict: dict[object, Optional[Problem]] = {}
    for merge in merges.values():
        for pos, problem in merge.removals.items():
            if pos not in verdict or problem is None:
                verdict[pos] = problem
    return [p for p in verdict.values() if p is not None]
