"""Where a site's files come from: the working tree, or (see gitsource) a git revision.

Loading reads through this small interface only, so the same loader serves
the working tree and any commit without checking anything out.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Optional, Protocol


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


class WorktreeSource:
    """The site as it is on disk."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.label = "worktree"
        self._data: dict[str, bytes] = {}

    def _path(self, rel: str) -> Path:
        return self.root / rel

    def read(self, rel: str) -> bytes:
        if rel not in self._data:
            self._data[rel] = self._path(rel).read_bytes()
        return self._data[rel]

    def is_file(self, rel: str) -> bool:
        return self._path(rel).is_file()

    def mode(self, rel: str) -> int:
        st = self._path(rel).stat()
        return 0o755 if st.st_mode & stat.S_IXUSR else 0o644

    def list_files(self, rel_dir: str) -> list[str]:
        base = self._path(rel_dir)
        if not base.is_dir():
            return []
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in filenames:
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
