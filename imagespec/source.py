"""Where a site's files come from: the working tree, or (see gitrepo) a git revision.

Loading reads through this small interface only, so the same loader serves
the working tree and any commit without checking anything out.
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import stat
from pathlib import Path
from typing import Optional, Protocol, Union

from .errors import ConfigError, Pos, Problem

SITE_FILE = "imagespec.yaml"
SITE_DIRS = ("profiles", "postinstall", "postscripts", "synclists")
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_LINKS = 8
LINK_FIX = (
    "a symlink may only point to a file under profiles/, synclists/, postinstall/ or "
    "postscripts/ of the same site: replace it with the file itself"
)
DIR_LINK_FIX = "imagespec does not follow symlinked directories: make it a real directory"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class SiteSource(Protocol):
    """Read-only view of a site's files, paths relative to the site root with '/'."""

    root: Path
    label: str

    def read(self, rel: str) -> bytes:
        """Bytes of a file; FileNotFoundError when missing, OSError when unreadable."""
        ...

    def is_file(self, rel: str) -> bool: ...

    def mode(self, rel: str) -> int:
        """Permission bits (0o644 / 0o755) of a file."""
        ...

    def list_files(self, rel_dir: str) -> list[str]:
        """Every file below a directory, recursively, sorted, as site-relative paths."""
        ...

    def cache_key(self, rel: str) -> Optional[str]:
        """A content id (e.g. a git blob id) that changes whenever the bytes do, or None."""
        ...


class SiteFileError(ConfigError):
    """A site file imagespec refuses to read: a symlink out of the site, a FIFO, a huge file."""

    def __init__(self, rel: str, reason: str):
        self.rel = rel
        self.reason = reason
        super().__init__([Problem(Pos(rel), reason)])


def is_site_path(rel: str) -> bool:
    """imagespec.yaml or a path below a site folder, with no '', '.', '..' or '.git' parts."""
    parts = rel.split("/")
    if any(part in ("", ".", "..", ".git") for part in parts):
        return False
    return rel == SITE_FILE or (len(parts) > 1 and parts[0] in SITE_DIRS)


def follow_link(rel: str, link: str, target: str) -> str:
    """The site path a symlink at `link` points to; SiteFileError (about rel) when it leaves."""
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link), target))
    if resolved in SITE_DIRS:
        raise SiteFileError(rel, f"is a symlink to a directory ('{resolved}'); {DIR_LINK_FIX}")
    if not is_site_path(resolved):
        raise SiteFileError(rel, f"is a symlink that leads out of the site's files; {LINK_FIX}")
    return resolved


def read_site_file(root: Path, rel: str) -> tuple[bytes, int]:
    """Bytes and permission bits (0o644 / 0o755) of a site file, read without leaving the site.

    The working tree is hostile input in CI: a symlink is followed only to another
    site file, as git does for a commit, and never through a symlinked directory, so
    no file of the machine can end up in a render or an error message; FIFOs, devices
    and files over MAX_FILE_BYTES are refused so that a checkout cannot hang a run.
    """
    fd = open_site_file(root, rel)
    try:
        info = os.fstat(fd)
        check_regular(rel, info)
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:
        raise SiteFileError(rel, too_big_reason(size))
    return b"".join(chunks), 0o755 if info.st_mode & stat.S_IXUSR else 0o644


def open_site_file(root: Path, rel: str) -> int:
    """A read-only descriptor of the regular file rel names (following in-site symlinks).

    FileNotFoundError / NotADirectoryError / IsADirectoryError when rel itself is not a
    file; SiteFileError when it is something imagespec refuses to read.
    """
    if not is_site_path(rel):
        raise FileNotFoundError(errno.ENOENT, "not a site file", rel)
    current = rel
    for _ in range(MAX_LINKS + 1):
        try:
            found = _open_no_follow(root, current, rel)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            if current == rel:
                raise
            what = "a directory" if isinstance(exc, IsADirectoryError) else "nothing"
            raise SiteFileError(rel, f"is a symlink to {what} ('{current}'); {LINK_FIX}") from None
        if isinstance(found, int):
            return found
        current = follow_link(rel, current, found)
    raise SiteFileError(rel, f"is a chain of more than {MAX_LINKS} symlinks; {LINK_FIX}")


def _open_no_follow(root: Path, rel: str, origin: str) -> Union[int, str]:
    """A descriptor of the file at rel, or the target of the symlink at rel.

    Each directory is opened relative to its parent with O_NOFOLLOW, so a symlinked
    directory is refused even if it is swapped in while we walk.
    """
    parts = rel.split("/")
    dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for depth, part in enumerate(parts[:-1]):
            if stat.S_ISLNK(os.stat(part, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                where = "/".join(parts[: depth + 1])
                raise SiteFileError(
                    origin, f"is reached through '{where}', a symlinked directory; {DIR_LINK_FIX}"
                )
            next_fd = os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
        info = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode):
            return os.readlink(parts[-1], dir_fd=dir_fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), rel)
        check_regular(origin, info)
        return os.open(parts[-1], _FILE_FLAGS, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def check_regular(rel: str, info: os.stat_result) -> None:
    """SiteFileError unless info is a regular file of at most MAX_FILE_BYTES."""
    if not stat.S_ISREG(info.st_mode):
        kinds = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device"}
        kind = kinds.get(stat.S_IFMT(info.st_mode), "a device")
        raise SiteFileError(
            rel, f"is {kind}, not a regular file; imagespec reads only regular files: remove it"
        )
    if info.st_size > MAX_FILE_BYTES:
        raise SiteFileError(rel, too_big_reason(info.st_size))


def too_big_reason(size: int) -> str:
    """Why a file is refused for its size, and what to do instead."""
    return (
        f"is {size} bytes, over the {MAX_FILE_BYTES >> 20} MiB limit for a site file; keep "
        "big files out of the site (a sync entry with from: director reads a file on the director)"
    )


def site_dir(root: Path, rel_dir: str) -> Optional[Path]:
    """The directory rel_dir under root, None when there is none; SiteFileError for a symlink."""
    current = root
    parts = rel_dir.strip("/").split("/")
    for depth in range(len(parts)):
        current = current / parts[depth]
        if current.is_symlink():
            where = "/".join(parts[: depth + 1])
            raise SiteFileError(where, f"is a symlink to a directory; {DIR_LINK_FIX}")
        if not current.is_dir():
            return None
    return current


class WorktreeSource:
    """The site as it is on disk, read as safely as a git commit (see read_site_file)."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.label = "worktree"
        self._data: dict[str, tuple[bytes, int]] = {}

    def _file(self, rel: str) -> tuple[bytes, int]:
        if rel not in self._data:
            self._data[rel] = read_site_file(self.root, rel)
        return self._data[rel]

    def read(self, rel: str) -> bytes:
        return self._file(rel)[0]

    def is_file(self, rel: str) -> bool:
        """True for a readable site file; SiteFileError for one imagespec refuses to read."""
        try:
            os.close(open_site_file(self.root, rel))
        except OSError:
            return False
        return True

    def mode(self, rel: str) -> int:
        return self._file(rel)[1]

    def list_files(self, rel_dir: str) -> list[str]:
        """Files below rel_dir; a symlinked directory is listed as an entry, never entered."""
        base = site_dir(self.root, rel_dir)
        if base is None:
            return []
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in links)
            for name in [*filenames, *links]:
                full = Path(dirpath) / name
                found.append(full.relative_to(self.root).as_posix())
        return sorted(found)

    def cache_key(self, rel: str) -> Optional[str]:
        """The git blob id of the file's bytes (so the parse cache is shared with git revisions)."""
        try:
            data = self.read(rel)
        except OSError:
            return None
        return blob_id(data)


def blob_id(data: bytes) -> str:
    """The id git gives a blob with these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def find_site_root(start: Path) -> Optional[Path]:
    """Walk up from start to the first directory holding imagespec.yaml."""
    current = start.resolve()
    for candidate in (current, *current.parents):
        if (candidate / "imagespec.yaml").is_file():
            return candidate
    return None


class MemorySource:
    """A site held in memory: {relative path: text or bytes}; executables named in `executable`.

    Used by the pure unit tests and the benchmark generator.
    """

    def __init__(
        self,
        files: dict[str, str | bytes],
        root: Path = Path("/site"),
        executable: set[str] | None = None,
    ):
        self.files = {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}
        self.root = root
        self.label = "memory"
        self.executable = (
            executable
            if executable is not None
            else {k for k in self.files if k.startswith(("postinstall/", "postscripts/"))}
        )

    def read(self, rel: str) -> bytes:
        if rel not in self.files:
            raise FileNotFoundError(rel)
        return self.files[rel]

    def is_file(self, rel: str) -> bool:
        return rel in self.files

    def mode(self, rel: str) -> int:
        return 0o755 if rel in self.executable else 0o644

    def list_files(self, rel_dir: str) -> list[str]:
        prefix = rel_dir.rstrip("/") + "/"
        return sorted(k for k in self.files if k.startswith(prefix))

    def cache_key(self, rel: str) -> Optional[str]:
        return None
