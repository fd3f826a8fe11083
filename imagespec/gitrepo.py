"""Read a site straight from git: any revision's tree, or the working tree as git sees it.

The only module that uses gitpython: everything else reaches git through
GitRepo and the sources here.

Nothing is checked out and the working tree is never touched.  A revision's
file list comes from one `git ls-tree`; file bytes come from git's object
database through gitpython.  Every file has a content id (the git blob id; for
the working tree computed the way git does), which the loader uses to parse
each distinct blob once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Callable, Optional

from .errors import GitError
from .runner import traced
from .source import (
    DIR_LINK_FIX,
    LINK_FIX,
    MAX_FILE_BYTES,
    MAX_LINKS,
    SITE_DIRS,
    SiteFileError,
    blob_id,
    follow_link,
    is_site_path,
    read_site_file,
    site_dir,
    too_big_reason,
)

if TYPE_CHECKING:
    import git

WORKTREE = "worktree"
DEEPEN = "fetch more history with git fetch --deepen=<n> or git fetch --unshallow"


@dataclass(frozen=True)
class GitFile:
    mode: int
    sha: str


class GitRepo:
    """The repository holding a site: the only door to gitpython (imported on first use,
    so that commands which never read git do not pay for it)."""

    def __init__(self, repo: git.Repo, trace: Optional[Callable[[str], None]] = None):
        self._repo = repo
        self.trace = trace  # -v: each git command and its duration (the runner's trace)

    @classmethod
    def find(cls, path: Path, trace: Optional[Callable[[str], None]] = None) -> GitRepo:
        """The git repository holding path; GitError when there is none."""
        import git

        try:
            return cls(git.Repo(path, search_parent_directories=True), trace)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise GitError(
                f"{path} is not inside a git repository; diff compares git revisions"
            ) from None

    def __enter__(self) -> GitRepo:
        return self

    def __exit__(
        self,
        kind: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def close(self) -> None:
        self._repo.close()

    @property
    def top(self) -> Path:
        """The work tree's top directory."""
        top = self._repo.working_tree_dir
        if top is None:
            raise GitError(f"{self._repo.git_dir} is a bare repository; a site needs a work tree")
        return Path(top)

    def site_prefix(self, site_root: Path) -> str:
        """The site's directory inside the repository ('' at the top)."""
        top = self.top.resolve()
        try:
            rel = site_root.resolve().relative_to(top)
        except ValueError:
            raise GitError(f"site {site_root} is not inside the repository at {top}") from None
        return "" if str(rel) == "." else rel.as_posix()

    def resolve(self, rev: str) -> str:
        """A revision (branch, tag, sha, origin/main, HEAD~1) as a commit sha; GitError if unknown.

        git itself resolves it (gitpython's own parser raises on @{-1} or a short reflog),
        and the commit must be present: in a shallow clone HEAD~1 may be named but missing.
        """
        import git

        if rev.startswith("-"):
            raise GitError(f"'{rev}' is not a revision; give a branch, tag or commit")
        try:
            return self._git("rev_parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
        except git.GitCommandError:
            raise GitError(self._unknown_rev_message(rev)) from None

    def has_commit(self, rev: str) -> bool:
        """Whether rev names a commit here."""
        try:
            self.resolve(rev)
        except GitError:
            return False
        return True

    def _unknown_rev_message(self, rev: str) -> str:
        """Why rev names no commit here, and what to do, in one line."""
        if "@{-" in rev:
            why = (
                f"'{rev}' means a branch checked out earlier, and this clone has no such checkout; "
                "name the branch instead"
            )
        elif "@{u" in rev or "@{push}" in rev:
            why = f"'{rev}' needs an upstream branch, and none is set; name the remote branch (origin/main)"
        elif "@{" in rev:
            why = (
                f"'{rev}' is not in the reflog (git reflog lists its entries; a fresh clone has "
                "few); give a branch, tag or commit"
            )
        else:
            why = f"unknown revision '{rev}'; give a branch, tag or commit of {self._repo.working_tree_dir}"
        if self.is_shallow():
            why += f" (this clone is shallow: {DEEPEN})"
        return why

    def is_shallow(self) -> bool:
        """True in a shallow clone (CI checkouts often are), where old commits are missing."""
        import git

        try:
            return self._git("rev_parse", "--is-shallow-repository").strip() == "true"
        except git.GitCommandError:
            return False

    def merge_base(self, base: str, head: str, spelled: tuple[str, str]) -> str:
        """The merge base of two commits, as for BASE...HEAD; GitError when there is none."""
        import git

        try:
            found = self._git("merge_base", base, head).strip()
        except git.GitCommandError:
            found = ""
        if found:
            return found
        first, second = spelled
        tips = f"or compare the tips with {first}..{second}"
        if self.is_shallow():
            raise GitError(
                f"{first} and {second} have no merge base here: this clone is shallow; {DEEPEN}, {tips}"
            )
        raise GitError(f"{first} and {second} have no merge base (unrelated histories); {tips}")

    def uncommitted(self, site_root: Path) -> list[tuple[str, str]]:
        """The site's files whose working-tree state is not HEAD's, as (site-relative
        path, how: modified, new or deleted); untracked new files count, ignored ones not."""
        prefix = self.site_prefix(site_root)
        out = self._git(
            "status",
            "--porcelain=v1",
            "-z",
            "--no-renames",
            "--untracked-files=all",
            "--",
            prefix or ".",
        )
        cut = len(prefix) + 1 if prefix else 0
        found = []
        for record in out.split("\0"):
            code, path = record[:2], record[3:]
            rel = path[cut:]
            if record and is_site_path(rel):
                how = "new" if code == "??" else "deleted" if "D" in code else "modified"
                found.append((rel, how))
        return sorted(found)

    def branch(self) -> Optional[str]:
        """The checked-out branch; None when HEAD is detached."""
        import git

        try:
            return self._git("symbolic_ref", "--quiet", "--short", "HEAD").strip() or None
        except git.GitCommandError:
            return None

    def upstream(self) -> Optional[tuple[str, str]]:
        """The current branch's upstream as (how git spells it, the branch name on its
        remote): ('origin/main', 'main'); None when there is none."""
        import git

        try:
            spelled = self._git("rev_parse", "--abbrev-ref", "--verify", "-q", "@{upstream}")
            merge = self._git("config", "--get", f"branch.{self.branch()}.merge")
        except git.GitCommandError:
            return None
        name = merge.strip().removeprefix("refs/heads/")
        return (spelled.strip(), name) if spelled.strip() and name else None

    def commits_since_fork(self, branch: str) -> Optional[tuple[int, int]]:
        """How far HEAD is from `branch` (the local branch, else origin/branch): the commits
        HEAD has since their merge base, and those the branch has (0: HEAD contains its
        tip); None when there is no such branch or no merge base."""
        import git

        for ref in (f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"):
            try:
                base = self._git("merge_base", "HEAD", ref).strip()
                ours = self._git("rev_list", "--count", f"{base}..HEAD").strip()
                theirs = self._git("rev_list", "--count", f"{base}..{ref}").strip()
                return int(ours), int(theirs)
            except git.GitCommandError:
                continue
        return None

    def first_parents(self, commit: str, count: int) -> list[str]:
        """`commit`'s first-parent ancestors, nearest first, `count` at most (not itself)."""
        import git

        try:
            out = self._git("rev_list", "--first-parent", f"--max-count={count}", f"{commit}~1")
        except git.GitCommandError:  # a root commit, or a shallow clone's edge
            return []
        return out.split()

    def ls_tree(self, *args: str) -> str:
        return self._git("ls_tree", *args)

    def ls_files(self, *args: str) -> str:
        return self._git("ls_files", *args)

    def blob(self, sha: str) -> bytes:
        """A blob's bytes, straight from the object database."""
        return bytes(self._repo.odb.stream(bytes.fromhex(sha)).read())

    def _git(self, command: str, *args: str) -> str:
        """`git COMMAND ARGS` (gitpython's spelling: rev_parse for rev-parse); its stdout."""
        with traced(self.trace, ["git", command.replace("_", "-"), *args]):
            return str(getattr(self._repo.git, command)(*args))


class IndexedSource:
    """Shared lookups over a {site-relative path: GitFile} index.

    `refused` holds the site files imagespec will not read (a symlink out of the
    site, a FIFO, a huge file) with the reason; using one is a SiteFileError.
    """

    root: Path
    label: str
    index: dict[str, GitFile]
    refused: dict[str, str]

    def _check(self, rel: str) -> None:
        """SiteFileError when rel, or a directory holding it, is refused."""
        parts = rel.split("/")
        for depth in range(len(parts), 0, -1):
            where = "/".join(parts[:depth])
            if where in self.refused:
                raise SiteFileError(where, self.refused[where])

    def read(self, rel: str) -> bytes:
        raise NotImplementedError

    def is_file(self, rel: str) -> bool:
        self._check(rel)
        return rel in self.index

    def mode(self, rel: str) -> int:
        self._check(rel)
        entry = self.index.get(rel)
        if entry is None:
            raise FileNotFoundError(rel)
        return 0o755 if entry.mode & 0o111 else 0o644

    def list_files(self, rel_dir: str) -> list[str]:
        """Files below rel_dir, refused ones included (so that reading them says why)."""
        self._check(rel_dir.rstrip("/"))
        prefix = rel_dir.rstrip("/") + "/"
        return sorted(p for p in (*self.index, *self.refused) if p.startswith(prefix))

    def cache_key(self, rel: str) -> Optional[str]:
        entry = self.index.get(rel)
        return entry.sha if entry else None


class GitTreeSource(IndexedSource):
    """The site as it is in one commit."""

    def __init__(self, repo: GitRepo, commit: str, prefix: str, root: Path):
        self.repo = repo
        self.commit = commit
        self.prefix = prefix
        self.root = root
        self.label = commit
        self.refused = {}
        self.index = self._ls_tree()

    def _ls_tree(self) -> dict[str, GitFile]:
        args = ["-r", "-z", "-l", "--full-tree", self.commit]
        if self.prefix:
            args.append(self.prefix + "/")
        out = self.repo.ls_tree(*args)
        index: dict[str, GitFile] = {}
        cut = len(self.prefix) + 1 if self.prefix else 0
        for record in out.split("\0"):
            if not record:
                continue
            meta, _, path = record.partition("\t")
            mode, kind, sha, size = meta.split()
            if kind != "blob":
                continue
            rel = path[cut:]
            if int(size) > MAX_FILE_BYTES and is_site_path(rel):
                self.refused[rel] = too_big_reason(int(size))
            else:
                index[rel] = GitFile(int(mode, 8), sha)
        return self._follow_links(index)

    def _follow_links(self, index: dict[str, GitFile]) -> dict[str, GitFile]:
        """A symlink to another site file stands for it, as in the working tree.

        Any other symlink is refused (one to outside the site, to a directory, or to
        nothing); a symlink where a site folder should be refuses that whole folder.
        """
        links = {p: f for p, f in index.items() if f.mode == 0o120000}
        files = {p: f for p, f in index.items() if f.mode != 0o120000}
        for path in links:
            if path in SITE_DIRS:
                self.refused[path] = f"is a symlink to a directory; {DIR_LINK_FIX}"
            elif is_site_path(path):
                try:
                    files[path] = self._link_target(path, links, files)
                except SiteFileError as exc:
                    self.refused[path] = exc.reason
        return files

    def _link_target(
        self, path: str, links: dict[str, GitFile], files: dict[str, GitFile]
    ) -> GitFile:
        current = path
        for _ in range(MAX_LINKS):
            target = self.repo.blob(links[current].sha).decode("utf-8", "surrogateescape")
            current = follow_link(path, current, target)
            if current in self.refused:
                raise SiteFileError(path, self.refused[current])
            if current in files:
                return files[current]
            if current not in links:
                raise SiteFileError(
                    path, f"is a symlink to '{current}', not a file of this commit; {LINK_FIX}"
                )
        raise SiteFileError(path, f"is a chain of more than {MAX_LINKS} symlinks; {LINK_FIX}")

    def read(self, rel: str) -> bytes:
        self._check(rel)
        entry = self.index.get(rel)
        if entry is None:
            raise FileNotFoundError(rel)
        return self.repo.blob(entry.sha)


class WorktreeGitSource(IndexedSource):
    """The working tree as git sees it: tracked and untracked-but-not-ignored files, as on disk.

    Files are read as WorktreeSource reads them (read_site_file): never from
    outside the site, never a FIFO or a huge file.
    """

    def __init__(self, repo: GitRepo, prefix: str, root: Path):
        self.repo = repo
        self.root = root
        self.label = WORKTREE
        self.refused = {}
        self._data: dict[str, bytes] = {}
        self.index = self._scan(prefix)

    def _scan(self, prefix: str) -> dict[str, GitFile]:
        out = self.repo.ls_files(
            "-z", "--cached", "--others", "--exclude-standard", "--", prefix or "."
        )
        top = self.repo.top
        base = top / prefix if prefix else top
        self._check_site_dirs(base)
        index: dict[str, GitFile] = {}
        cut = len(prefix) + 1 if prefix else 0
        for path in sorted(set(out.split("\0"))):
            rel = path[cut:]
            if not path or not is_site_path(rel):
                continue
            try:
                data, mode = read_site_file(base, rel)
            except SiteFileError as exc:
                self.refused[rel] = exc.reason
                continue
            except (FileNotFoundError, NotADirectoryError):  # deleted but still in the index
                continue
            except OSError as exc:
                self.refused[rel] = f"cannot be read ({exc.strerror or exc}); fix its permissions"
                continue
            self._data[rel] = data
            index[rel] = GitFile(0o100755 if mode == 0o755 else 0o100644, blob_id(data))
        return index

    def _check_site_dirs(self, base: Path) -> None:
        """A site folder that is a symlink is refused, as in a commit."""
        for folder in SITE_DIRS:
            try:
                site_dir(base, folder)
            except SiteFileError as exc:
                self.refused[folder] = exc.reason

    def read(self, rel: str) -> bytes:
        self._check(rel)
        if rel not in self._data:
            raise FileNotFoundError(rel)
        return self._data[rel]


def open_revision(repo: GitRepo, rev: Optional[str], site_root: Path) -> IndexedSource:
    """A source for a revision, or for the working tree when rev is None."""
    prefix = repo.site_prefix(site_root)
    if rev is None:
        return WorktreeGitSource(repo, prefix, site_root)
    return GitTreeSource(repo, repo.resolve(rev), prefix, site_root)


def changed_paths(old: IndexedSource, new: IndexedSource) -> set[str]:
    """Site-relative paths whose content or mode differs (or that exist on one side only)."""
    paths = set(old.index) | set(new.index)
    return {p for p in paths if old.index.get(p) != new.index.get(p)}


def tracked_below(top: Path, path: Path) -> Optional[str]:
    """A file git tracks at or below path in the work tree at top; '' for none, None if git fails."""
    import git

    rel = path.relative_to(top).as_posix()
    try:
        repo = git.Repo(top)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    try:
        out = str(repo.git.ls_files("-z", "--", rel))
    except git.GitCommandError:
        return None
    finally:
        repo.close()
    return out.split("\0", 1)[0]


def current_branch(path: Path) -> Optional[str]:
    """The checked-out branch of the repository holding path, or None (no repo, detached)."""
    try:
        import git

        repo = git.Repo(path, search_parent_directories=True)
        try:
            return str(repo.active_branch.name)
        finally:
            repo.close()
    except Exception:
        return None
