"""Which director(s) a command acts on (SPEC §8 director choice)."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ..errors import ConfigError, GitError, ImagespecError, UsageError, choice_list, suggest
from ..gitrepo import GitRepo, current_branch
from ..model import Site
from ..render import RenderedDirector
from ..runner import Runner

if TYPE_CHECKING:
    from .reconcile import Target


def choose_directors(
    site: Site, site_root: Path, director: Optional[str] = None, branch: Optional[str] = None
) -> list[str]:
    """--director, else --branch (may be empty), else the current branch's, else the only one."""
    names = list(site.directors)
    if director is not None:
        if director not in site.directors:
            raise UsageError(
                f"unknown director '{director}'{suggest(director, names)} (directors: {choice_list(names)})"
            )
        return [director]
    if branch is not None:
        return [n for n, d in site.directors.items() if d.branch == branch]
    current = current_branch(site_root)
    following = [n for n, d in site.directors.items() if current and d.branch == current]
    if following:
        return following
    if len(names) == 1:
        return names
    where = f"the current branch '{current}' is followed by none, and " if current else ""
    raise UsageError(
        f"{where}there are several directors; choose one with --director NAME "
        f"(directors: {choice_list(names)})"
    )


def choose_one(
    site: Site, site_root: Path, director: Optional[str] = None, branch: Optional[str] = None
) -> str:
    """Exactly one director, for commands that show or render one tree."""
    chosen = choose_directors(site, site_root, director, branch)
    if len(chosen) == 1:
        return chosen[0]
    if not chosen:
        raise UsageError(
            f"no director follows branch '{branch}' (directors: {choice_list(site.directors)})"
        )
    raise UsageError(
        f"several directors match ({choice_list(chosen)}); choose one with --director NAME"
    )


@dataclass
class Reconcile:
    repo: GitRepo
    commit: str
    targets: list[Target]
    # status only: why the site at `commit` does not load; the targets are then those of
    # `loaded`, the nearest ancestor whose site does, to reach the director and read its state
    broken: Optional[str] = None
    loaded: Optional[str] = None


ANCESTORS = 50  # commits status looks back for a site that loads, when HEAD's does not


def open_status_targets(
    root: Path,
    director: Optional[str],
    branch: Optional[str],
    rev: Optional[str],
    runner: Runner,
) -> Reconcile:
    """open_targets, but a site that does not load at the commit is no dead end: the
    directors are read from the nearest first-parent ancestor whose site loads, so that
    status can still show what the director has (`broken` says why, `loaded` where)."""
    repo = GitRepo.find(root)
    try:
        try:
            return _targets_at(repo, root, director, branch, rev, runner)
        except ConfigError as exc:
            commit = _commit_to_apply(repo, rev, branch)
            first = exc.lines()[0] if exc.lines() else str(exc)
            more = len(exc.problems) - 1
            why = first + (f" (and {more} more problem(s): imagespec validate)" if more else "")
            for older in repo.first_parents(commit, ANCESTORS):
                with suppress(ImagespecError):
                    found = _targets_at(repo, root, director, branch, older, runner)
                    return Reconcile(repo, commit, found.targets, why, older)
            raise
    except BaseException:
        repo.close()
        raise


def open_targets(
    root: Path,
    director: Optional[str],
    branch: Optional[str],
    rev: Optional[str],
    runner: Runner,
) -> Reconcile:
    """The commit to reconcile to (never the working tree) and the directors to act on.

    The caller closes `repo` when it is done (its git processes end with it).
    """
    repo = GitRepo.find(root)
    try:
        return _targets_at(repo, root, director, branch, rev, runner)
    except BaseException:
        repo.close()  # on success the caller closes it; on an error nobody else can
        raise


def _targets_at(
    repo: GitRepo,
    root: Path,
    director: Optional[str],
    branch: Optional[str],
    rev: Optional[str],
    runner: Runner,
) -> Reconcile:
    from ..overlap import check_director_root
    from .diff import open_site_at
    from .reconcile import make_target

    commit = _commit_to_apply(repo, rev, branch)
    view = open_site_at(repo, commit, root, commit[:10])
    if view is None:
        raise UsageError(f"there is no imagespec.yaml at {commit[:10]}")
    names = choose_directors(view.docs.site.model, root, director, branch)
    if names and branch and not rev and not _has_branch(repo, branch):
        raise UsageError(
            f"branch '{branch}' is followed by {', '.join(names)} but does not exist here"
        )
    for name in names:
        check_director_root(view.docs.site, name, view.render(name), root)
    targets = [make_target(view, name, commit, runner) for name in names]
    return Reconcile(repo, commit, targets)


def _commit_to_apply(repo: GitRepo, rev: Optional[str], branch: Optional[str]) -> str:
    """--rev, else the tip of --branch (local, then origin/), else HEAD.

    A branch that does not exist here reads the directors from HEAD, so that
    `apply --branch X` for a branch no director follows is a clean no-op.
    """
    if rev or not branch:
        return repo.resolve(rev or "HEAD")
    for candidate in (branch, f"origin/{branch}", "HEAD"):
        with suppress(GitError):
            return repo.resolve(candidate)
    return repo.resolve(branch)


def _has_branch(repo: GitRepo, branch: str) -> bool:
    return any(repo.has_commit(c) for c in (branch, f"origin/{branch}"))


def check_images(rendered: RenderedDirector, names: list[str]) -> None:
    """--only and --rebuild must name images of the director."""
    for name in names:
        if name not in rendered.images:
            known = list(rendered.images)
            raise UsageError(
                f"unknown image '{name}'{suggest(name, known)} (images: {choice_list(known)})"
            )
