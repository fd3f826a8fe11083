"""Which director(s) a command acts on (SPEC §8 director choice)."""

from __future__ import annotations

import difflib
import os
import re
from contextlib import suppress
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from ..errors import ConfigError, GitError, ImagespecError, UsageError, choice_list, suggest
from ..gitrepo import GitRepo
from ..model import Site
from ..render import RenderedDirector
from ..runner import Runner
from ..site import SiteView

if TYPE_CHECKING:
    from .reconcile import Target


ENV_DIRECTOR = "IMAGESPEC_DIRECTOR"


@dataclass(frozen=True)
class Choice:
    """The directors a command acts on, and why: '' when named (-d, --branch) or the only one."""

    names: list[str]
    why: str = ""

    def line(self) -> str:
        """What the command says on stderr about a director it chose itself."""
        if not self.why:
            return ""
        plural = "s" if len(self.names) > 1 else ""
        return f"director{plural} {', '.join(self.names)}: {self.why}; -d NAME chooses another"


def choose_directors(
    site: Site, site_root: Path, director: Optional[str] = None, branch: Optional[str] = None
) -> list[str]:
    """--director, else --branch (may be empty), else the rules of pick_directors."""
    return pick_directors(site, site_root, director, branch).names


def pick_directors(
    site: Site,
    site_root: Path,
    director: Optional[str] = None,
    branch: Optional[str] = None,
    base_branch: Optional[str] = None,
) -> Choice:
    """--director, --branch, IMAGESPEC_DIRECTOR, the director following the current branch,
    `base_branch` (diff's BASE), the branch's upstream, the branch it was created from,
    default_director, the only director; otherwise a UsageError listing the choices."""
    names = list(site.directors)
    if director is not None:
        return Choice([_known(site, director, "")])
    if branch is not None:
        return Choice([n for n, d in site.directors.items() if d.branch == branch])
    env = os.environ.get(ENV_DIRECTOR, "")
    if env:
        return Choice([_known(site, env, f" ({ENV_DIRECTOR})")], f"{ENV_DIRECTOR} is set")
    facts = _git_facts(site, site_root)
    current = facts.current
    # The current branch's own director is the documented rule and goes without saying;
    # every guess beyond it is said on stderr.
    for followed, why in (
        (current, ""),
        (base_branch, f"it follows the base branch '{base_branch}'"),
        *facts.inferred,
    ):
        following = [n for n, d in site.directors.items() if followed and d.branch == followed]
        if following:
            return Choice(following, why.replace("it follows", "they follow", len(following) > 1))
    if site.default_director is not None:
        return Choice(
            [_known(site, site.default_director, "")], "default_director in imagespec.yaml"
        )
    if len(names) == 1:
        return Choice(names)
    where = f"the current branch '{current}' is followed by none, and " if current else ""
    raise UsageError(
        f"{where}there are several directors; choose one with --director NAME, "
        f"{ENV_DIRECTOR} or default_director in imagespec.yaml (directors: {choice_list(names)})"
    )


def _known(site: Site, name: str, via: str) -> str:
    if name not in site.directors:
        names = list(site.directors)
        raise UsageError(
            f"unknown director '{name}'{via}{suggest(name, names)} (directors: {choice_list(names)})"
        )
    return name


@dataclass
class _GitFacts:
    current: Optional[str] = None
    inferred: list[tuple[str, str]] = field(default_factory=list)  # (branch, why) in order


def _git_facts(site: Site, site_root: Path) -> _GitFacts:
    """The current branch, then what git can tell of the branch it belongs to: its upstream
    (origin/main -> main), and the followed branch it was created from (the nearest
    merge base; a tie tells nothing).  Outside git: nothing."""
    try:
        repo = GitRepo.find(site_root)
    except GitError:
        return _GitFacts()
    with repo:
        current = repo.branch()
        if current is None:
            return _GitFacts()
        facts = _GitFacts(current)
        upstream = repo.upstream()
        if upstream is not None:
            spelled, name = upstream
            facts.inferred.append(
                (name, f"the current branch '{current}' tracks {spelled}, which it follows")
            )
        followed = sorted({d.branch for d in site.directors.values() if d.branch})
        distances = {b: repo.commits_since_fork(b) for b in followed if b != current}
        # nearest merge base first; on a tie, the branch whose tip HEAD contains
        known = {b: (n[0], n[1] > 0) for b, n in distances.items() if n is not None}
        if known:
            nearest = min(known.values())
            forks = [b for b, n in known.items() if n == nearest]
            if len(forks) == 1:
                why = f"the current branch '{current}' was created from '{forks[0]}', which it follows"
                facts.inferred.append((forks[0], why))
        return facts


def choose_one(
    site: Site,
    site_root: Path,
    director: Optional[str] = None,
    branch: Optional[str] = None,
    say: Optional[Callable[[str], None]] = None,
) -> str:
    """Exactly one director, for commands that show or render one tree; `say` hears why
    when the command chose it itself."""
    choice = pick_directors(site, site_root, director, branch)
    chosen = choice.names
    if len(chosen) == 1:
        if say is not None and choice.line():
            say(choice.line())
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
    # the site's files edited and not committed, when the commit is HEAD: (path, how)
    uncommitted: list[tuple[str, str]] = field(default_factory=list)
    rendered: str = "HEAD"  # how the commit was named: --rev, --branch or HEAD
    why: str = ""  # which directors the command chose itself, and why (Choice.line)
    # status only: why the site at `commit` does not load; the targets are then those of
    # `loaded`, the nearest ancestor whose site does, to reach the director and read its state
    broken: Optional[str] = None
    loaded: Optional[str] = None
    # the site at `commit` and the directors chosen, also when no target was made (offline)
    view: Optional[SiteView] = None
    names: list[str] = field(default_factory=list)


def uncommitted_lines(setup: Reconcile, verb: str, shown: int = 5) -> list[str]:
    """What plan and apply say about edits they do not see (they render a commit)."""
    where = f"{verb} renders {setup.rendered} ({setup.commit[:7]})"
    what = "commit it, or use `imagespec diff` to see the working tree"
    lines = [
        f"{path} is {how} and not committed: {where}; {what}"
        for path, how in setup.uncommitted[:shown]
    ]
    if len(setup.uncommitted) > shown:
        lines.append(f"... and {len(setup.uncommitted) - shown} more site files not committed")
    return lines


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
    repo = GitRepo.find(root, runner.trace)
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
                    return Reconcile(repo, commit, found.targets, broken=why, loaded=older)
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
    connect: bool = True,
) -> Reconcile:
    """The commit to reconcile to (never the working tree) and the directors to act on;
    `connect=False` (plan --offline): no target, so no transport, is made for them.

    The caller closes `repo` when it is done (its git processes end with it).
    """
    repo = GitRepo.find(root, runner.trace)
    try:
        return _targets_at(repo, root, director, branch, rev, runner, connect)
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
    connect: bool = True,
) -> Reconcile:
    from ..overlap import check_director_root
    from .diff import open_site_at
    from .reconcile import make_target

    commit = _commit_to_apply(repo, rev, branch)
    view = open_site_at(repo, commit, root, commit[:10])
    if view is None:
        raise UsageError(f"there is no imagespec.yaml at {commit[:10]}")
    choice = pick_directors(view.docs.site.model, root, director, branch)
    names = choice.names
    if names and branch and not rev and not _has_branch(repo, branch):
        raise UsageError(
            f"branch '{branch}' is followed by {', '.join(names)} but does not exist here"
        )
    for name in names:
        check_director_root(view.docs.site, name, view.render(name), root)
    targets = [make_target(view, name, commit, runner) for name in names] if connect else []
    uncommitted = repo.uncommitted(root) if commit == repo.resolve("HEAD") else []
    how = rev or branch or "HEAD"
    return Reconcile(
        repo, commit, targets, uncommitted, how, choice.line(), view=view, names=list(names)
    )


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


GLOB = re.compile(r"[*?\[]")


def select_images(
    rendered: RenderedDirector, only: list[str], profiles: Optional[list[str]] = None
) -> set[str]:
    """The images `--only NAME|GLOB` and `--profile NAME` choose on the director: a glob
    matches image names (fnmatch, case-sensitive), a profile the images whose chain
    includes it.  Every name, glob and profile must choose at least one image."""
    chosen: set[str] = set()
    names = sorted(rendered.images)
    for pattern in only:
        if not GLOB.search(pattern):
            check_images(rendered, [pattern])
            chosen.add(pattern)
            continue
        matched = {n for n in names if fnmatchcase(n, pattern)}
        if not matched:
            raise UsageError(
                f"--only '{pattern}' matches no image of director {rendered.name}"
                f" (nearest: {', '.join(nearest(pattern, names))})"
            )
        chosen |= matched
    for profile in profiles or []:
        matched = {n for n in names if profile in rendered.images[n].resolved.chain}
        if not matched:
            used = {p for image in rendered.images.values() for p in image.resolved.chain}
            raise UsageError(
                f"--profile '{profile}': no image of director {rendered.name} has it in its"
                f" chain{suggest(profile, used)} (profiles: {choice_list(used)})"
            )
        chosen |= matched
    return chosen


def nearest(pattern: str, names: list[str], count: int = 3) -> list[str]:
    """The names most like a glob's literal start (the whole pattern when it has none)."""
    literal = GLOB.split(pattern)[0] or GLOB.sub("", pattern)

    def likeness(name: str) -> float:
        return difflib.SequenceMatcher(None, literal, name[: len(literal)]).ratio()

    return sorted(names, key=lambda n: (-likeness(n), n))[:count]
