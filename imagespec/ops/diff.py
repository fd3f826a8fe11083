"""`diff`: open two revisions of a site from git and compare one director's rendering."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..cache import DiskCache
from ..diff import DiffReport, compare
from ..errors import ConfigError, Pos, Problem, UsageError, choice_list
from ..gitrepo import WORKTREE, GitRepo, IndexedSource, changed_paths, open_revision
from ..site import SiteView, open_site
from .select import pick_directors


@dataclass(frozen=True)
class RevPair:
    base: str
    head: Optional[str]  # None: the working tree
    symmetric: bool = False  # BASE...HEAD: compare against the merge base


def parse_revs(first: Optional[str], second: Optional[str]) -> RevPair:
    """`diff`, `diff BASE`, `diff BASE HEAD`, `diff BASE..HEAD`, `diff BASE...HEAD`."""
    if first is None:
        return RevPair("HEAD", None)
    if second is None:
        for sep, symmetric in (("...", True), ("..", False)):
            if sep in first:
                base, _, head = first.partition(sep)
                return RevPair(base or "HEAD", head or "HEAD", symmetric)
        return RevPair(first, None)
    if ".." in first:
        raise UsageError("give either BASE..HEAD or BASE HEAD, not both")
    return RevPair(first, second)


def open_site_at(repo: GitRepo, rev: Optional[str], root: Path, label: str) -> Optional[SiteView]:
    """Load one side; None when that revision has no site yet.  Errors name the revision.

    Every command that reads a site from git opens it here.
    """
    source = open_revision(repo, rev, root)
    try:
        if not source.is_file("imagespec.yaml"):
            return None
        return open_site(source, merge_all=False, cache=DiskCache())
    except ConfigError as exc:
        if rev is None:
            raise
        raise ConfigError(
            Problem(Pos(f"{label}:{p.pos.path}", p.pos.line, p.pos.col), p.message, p.severity)
            for p in exc.problems
        ) from None


def _merge_base(repo: GitRepo, pair: RevPair, base: str, head: Optional[str]) -> str:
    """BASE...HEAD compares against the merge base, and fails like git when there is none."""
    spelled = (pair.base, pair.head or "HEAD")
    return repo.merge_base(base, head or repo.resolve("HEAD"), spelled)


def _branch_name(rev: str) -> str:
    for prefix in ("refs/heads/", "refs/remotes/origin/", "origin/"):
        if rev.startswith(prefix):
            return rev[len(prefix) :]
    return rev


def run_diff(
    site_root: Path,
    first: Optional[str],
    second: Optional[str],
    director: Optional[str] = None,
    branch: Optional[str] = None,
) -> DiffReport:
    """Compare BASE and HEAD (default: HEAD and the working tree) for one director."""
    pair = parse_revs(first, second)
    with GitRepo.find(site_root) as repo:
        base = repo.resolve(pair.base)
        head = repo.resolve(pair.head) if pair.head is not None else None
        if pair.symmetric:
            base = _merge_base(repo, pair, base, head)
        old = open_site_at(repo, base, site_root, base[:10])
        new = open_site_at(repo, head, site_root, (head or WORKTREE)[:10])
        if new is None:
            raise UsageError(f"there is no imagespec.yaml at {head or 'the working tree'}")
        name = _choose(new, site_root, director, branch, pair.base)
        changed = changed_files(old, new)
        return compare(old, new, name, changed, base, head or WORKTREE)


def changed_files(old: Optional[SiteView], new: SiteView) -> set[str]:
    """Site files that differ between the two sides (every file when BASE has no site)."""
    new_src = new.docs.source
    assert isinstance(new_src, IndexedSource)
    if old is None:
        return set(new_src.index)
    old_src = old.docs.source
    assert isinstance(old_src, IndexedSource)
    return changed_paths(old_src, new_src)


def _choose(
    view: SiteView, root: Path, director: Optional[str], branch: Optional[str], base: str
) -> str:
    """Director rules of SPEC §8, then the director following BASE when it names a branch."""
    model = view.docs.site.model
    chosen = pick_directors(model, root, director, branch, _branch_name(base)).names
    if len(chosen) != 1:
        what = f"follow branch '{branch}'" if branch else "match"
        raise UsageError(
            f"{len(chosen) or 'no'} directors {what} ({choice_list(chosen)}); "
            f"choose one with --director NAME (directors: {choice_list(model.directors)})"
        )
    return chosen[0]
