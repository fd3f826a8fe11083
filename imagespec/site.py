"""load -> graph -> resolve -> render, as one value the commands share.

Opening a site loads and checks everything that needs no director.  Chains
are merged and directors rendered on first use and kept, so a command that
needs one image of one director pays only for that.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Optional

from .errors import ConfigError, Pos, Problem
from .graph import ProfileGraph, build_graph
from .load import NoCache, ParseCache, SiteDocs, load_site
from .render import RenderedDirector, render_director
from .resolve import ChainMerge, merge_chain, resolve_director
from .source import SiteSource
from .validate import check_profiles, check_rendered, check_site


@dataclass
class SiteView:
    """A loaded, checked site; merges chains and renders directors on demand."""

    docs: SiteDocs
    graph: ProfileGraph
    strict: bool = False
    problems: list[Problem] = field(default_factory=list)
    merges: dict[str, ChainMerge] = field(default_factory=dict)
    _rendered: dict[tuple[str, Optional[frozenset[str]]], RenderedDirector] = field(
        default_factory=dict
    )

    @property
    def directors(self) -> list[str]:
        return list(self.docs.site.model.directors)

    @property
    def images(self) -> list[str]:
        return list(self.docs.site.model.images)

    def images_of(self, director: str) -> list[str]:
        """The images a director builds: all but those limited to other directors."""
        return [n for n, i in self.docs.site.model.images.items() if i.on(director)]

    @property
    def warnings(self) -> list[Problem]:
        found = {p for p in self.problems if p.severity == "warning"}
        return sorted(found, key=lambda p: (p.pos, p.message))

    def merge_profiles(self, names: Iterable[str]) -> dict[str, ChainMerge]:
        """Chain merges of the given profiles, computed once each."""
        for name in sorted(set(names) - set(self.merges)):
            self.merges[name] = merge_chain(self.docs, self.graph.chains[name])
        return self.merges

    def render(self, director: str, images: Optional[Iterable[str]] = None) -> RenderedDirector:
        """The director's tree (all its images, or only the named ones it builds)."""
        own = frozenset(self.images_of(director))
        subset = (frozenset(images) & own) if images is not None else None
        key = (director, subset)
        if key not in self._rendered:
            names = subset if subset is not None else own
            model = self.docs.site.model
            merges = self.merge_profiles(model.images[n].profile for n in names)
            resolution = resolve_director(self.docs, director, merges, set(names))
            rendered = render_director(self.docs, resolution)
            self.raise_errors(check_rendered(self.docs, rendered))
            self.raise_strict()
            self._rendered[key] = rendered
        return self._rendered[key]

    def render_all(self) -> dict[str, RenderedDirector]:
        return {name: self.render(name) for name in self.directors}

    def raise_errors(self, problems: list[Problem]) -> None:
        """Keep the problems; on any error raise ConfigError with every problem so far."""
        self.problems.extend(problems)
        if any(p.severity == "error" for p in problems):
            raise ConfigError(self._report())

    def raise_strict(self) -> None:
        """Under --strict, every warning collected so far is an error."""
        if self.strict and self.warnings:
            raise ConfigError(self._report())

    def _report(self) -> set[Problem]:
        if self.strict:
            return {Problem(p.pos, p.message, "error") for p in self.problems}
        return set(self.problems)


def open_site(
    source: SiteSource,
    strict: bool = False,
    merge_all: bool = True,
    cache: ParseCache = NoCache(),
) -> SiteView:
    """Load and check a site; raise ConfigError with every problem found.

    merge_all also merges every profile's chain to find removals that remove
    nothing anywhere (validate wants that; diff does not need it).  `cache`
    keeps parse results across runs (the commands pass cache.DiskCache).
    """
    docs = load_site(source, cache)
    graph = build_graph(docs)
    view = SiteView(docs=docs, graph=graph, strict=strict)
    view.raise_errors(list(docs.warnings) + check_site(docs) + check_profiles(docs))
    if merge_all:
        view.merge_profiles(docs.profiles)
        view.raise_errors(unused_removals(view.merges))
    view.raise_strict()
    return view


def unused_removals(merges: dict[str, ChainMerge]) -> list[Problem]:
    """Removals that remove nothing in every chain they are part of.

    A removal in a shared profile may matter only in some descendants' chains
    (where another parent added the entry); it is reported only when it is
    useless everywhere.
    """
    verdict: dict[Pos, Optional[Problem]] = {}
    for merge in merges.values():
        for pos, problem in merge.removals.items():
            if pos not in verdict or problem is None:
                verdict[pos] = problem
    return [p for p in verdict.values() if p is not None]


def validate_site(
    source: SiteSource, strict: bool = False, cache: ParseCache = NoCache()
) -> SiteView:
    """Everything `validate` checks: load, every chain, every director; all problems in one go.

    Under strict, warnings of every stage are collected first and then raised
    together as errors.
    """
    view = open_site(source, cache=cache)
    view.render_all()
    view.strict = strict
    view.raise_strict()
    return view
