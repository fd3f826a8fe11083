"""Read a site straight from git: any revision's tree, or the working tree as git sees it.

Nothing is checked out and the working tree is never touched.  A revision's
file list comes from one `git ls-tree`; file bytes come from git's object
database through gitpython.  Every file has a content id (the git blob id; for
the working tree computed the way git does), which the loader uses to parse
each distinct blob once.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .errors import GitError
from .source import blob_id

SITE_DIRS = ("profiles", "postinstall", "postscripts", "synclists")
WORKTREE = "worktree"


@dataclass(frozen=True)
class GitFile:
    mode: int
    sha: str


def open_repo(path: Path) -> Any:
    """The git repository holding path; GitError when there is none."""
    import git

    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitError(
            f"{path} is not inside a git repository; diff compares git revisions"
        ) from None


def site_prefix(repo: Any, site_root: Path) -> str:
    """The site's directory inside the repository ('' at the top)."""
    top = Path(repo.working_tree_dir).resolve()
    try:
        rel = site_root.resolve().relative_to(top)
    except ValueError:
        raise GitError(f"site {site_root} is not inside the repository at {top}") from None
    return "" if str(rel) == "." else rel.as_posix()


def resolve_rev(repo: Any, rev: str) -> str:
    """A revision (branch, tag, sha, origin/main, HEAD~1) as a commit sha; GitError if unknown."""
    import git

    try:
        return str(repo.commit(rev).hexsha)
    except (git.BadName, ValueError, git.GitCommandError):
        raise GitError(
            f"unknown revision '{rev}'; give a branch, tag or commit of {repo.working_tree_dir}"
        ) from None


class IndexedSource:
    """Shared lookups over a {site-relative path: GitFile} index."""

    root: Path
    label: str
    index: dict[str, GitFile]

    def read(self, rel: str) -> bytes:
        raise NotImplementedError

    def is_file(self, rel: str) -> bool:
        return rel in self.index

    def mode(self, rel: str) -> int:
        entry = self.index.get(rel)
        if entry is None:
            raise FileNotFoundError(rel)
        return 0o755 if entry.mode & 0o111 else 0o644

    def list_files(self, rel_dir: str) -> list[str]:
        prefix = rel_dir.rstrip("/") + "/"
        return sorted(p for p in self.index if p.startswith(prefix))

    def cache_key(self, rel: str) -> Optional[str]:
        entry = self.index.get(rel)
        return entry.sha if entry else None


class GitTreeSource(IndexedSource):
    """The site as it is in one commit."""

    def __init__(self, repo: Any, commit: str, prefix: str, root: Path):
        self.repo = repo
        self.commit = commit
        self.prefix = prefix
        self.root = root
        self.label = commit
        self.index = self._ls_tree()

    def _ls_tree(self) -> dict[str, GitFile]:
        args = ["-r", "-z", "--full-tree", self.commit]
        if self.prefix:
            args.append(self.prefix + "/")
        out = self.repo.git.ls_tree(*args)
        index: dict[str, GitFile] = {}
        cut = len(self.prefix) + 1 if self.prefix else 0
        for record in out.split("\0"):
            if not record:
                continue
            meta, _, path = record.partition("\t")
            mode, kind, sha = meta.split()
            if kind == "blob":
                index[path[cut:]] = GitFile(int(mode, 8), sha)
        return self._follow_links(index)

    def _follow_links(self, index: dict[str, GitFile]) -> dict[str, GitFile]:
        """Symlinks inside the tree stand for their target, as in the working tree."""
        for _ in range(8):  # links to links, bounded
            links = {p: f for p, f in index.items() if f.mode == 0o120000}
            if not links:
                break
            for path, link in links.items():
                target = self._blob(link.sha).decode("utf-8", "replace")
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
                if resolved in index and resolved != path:
                    index[path] = index[resolved]
                else:
                    del index[path]  # dangling or pointing outside the site: not a file
        return {p: f for p, f in index.items() if f.mode != 0o120000}

    def _blob(self, sha: str) -> bytes:
        return bytes(self.repo.odb.stream(bytes.fromhex(sha)).read())

    def read(self, rel: str) -> bytes:
        entry = self.index.get(rel)
        if entry is None:
            raise FileNotFoundError(rel)
        return self._blob(entry.sha)


class WorktreeGitSource(IndexedSource):
    """The working tree as git sees it: tracked and untracked-but-not-ignored files, as on disk."""

    def __init__(self, repo: Any, prefix: str, root: Path):
        self.repo = repo
        self.root = root
        self.label = WORKTREE
        self._data: dict[str, bytes] = {}
        self.index = self._scan(prefix)

    def _scan(self, prefix: str) -> dict[str, GitFile]:
        out = self.repo.git.ls_files(
            "-z", "--cached", "--others", "--exclude-standard", "--", prefix or "."
        )
        index: dict[str, GitFile] = {}
        cut = len(prefix) + 1 if prefix else 0
        top = Path(self.repo.working_tree_dir)
        for path in sorted(set(out.split("\0"))):
            if not path:
                continue
            rel = path[cut:]
            if rel != "imagespec.yaml" and rel.split("/", 1)[0] not in SITE_DIRS:
                continue
            full = top / path
            if not full.is_file():  # deleted but still in the index
                continue
            data = full.read_bytes()
            self._data[rel] = data
            executable = full.stat().st_mode & 0o111
            index[rel] = GitFile(0o100755 if executable else 0o100644, blob_id(data))
        return index

    def read(self, rel: str) -> bytes:
        if rel not in self._data:
            raise FileNotFoundError(rel)
        return self._data[rel]


def open_revision(repo: Any, rev: Optional[str], site_root: Path) -> IndexedSource:
    """A source for a revision, or for the working tree when rev is None."""
    prefix = site_prefix(repo, site_root)
    if rev is None:
        return WorktreeGitSource(repo, prefix, site_root)
    return GitTreeSource(repo, resolve_rev(repo, rev), prefix, site_root)


def changed_paths(old: IndexedSource, new: IndexedSource) -> set[str]:
    """Site-relative paths whose content or mode differs (or that exist on one side only)."""
    paths = set(old.index) | set(new.index)
    return {p for p in paths if old.index.get(p) != new.index.get(p)}
