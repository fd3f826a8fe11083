"""Reading the director's files by absolute path: a protocol and its local implementation.

An import reads the files the osimage attributes name (lists, scripts, sync
sources) from a local copy of the director's install root, or over ssh
(transport/files.py TransportFiles).  Paths are the director's absolute
paths; a path that cannot be read is None, never an exception, so that the
caller can say which image loses what.
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path
from typing import Optional, Protocol

from ..safe import is_abs_path, is_under

MAX_FILE = 16 * 1024 * 1024  # the same bound as site files (source.py)


class DirectorFiles(Protocol):
    """The director's files as the import sees them (absolute director paths)."""

    install_root: str

    def read(self, path: str) -> Optional[bytes]:
        """A regular file's bytes (symlinks followed inside what may be read), else None."""
        ...

    def mode(self, path: str) -> Optional[int]:
        """Permission bits of the file (after symlinks), None when it cannot be read."""
        ...

    def is_dir(self, path: str) -> bool: ...

    def listdir(self, path: str) -> list[str]:
        """Entry names of a directory, sorted bytewise; [] when it is none."""
        ...

    def readlink(self, path: str) -> Optional[str]:
        """The target text of a symlink, None when path is no symlink."""
        ...

    def readable(self, path: str) -> bool:
        """Whether this reader can see the path at all (a local copy sees only the install root)."""
        ...


def normal(path: str) -> Optional[str]:
    """A director path normalised, or None when it is not a plain absolute path."""
    if not path.startswith("/") or "\0" in path:
        return None
    norm = posixpath.normpath(path)
    return norm if is_abs_path(norm, directory_ok=False) else None


class LocalInstall:
    """A local copy of the director's install root: `install_root` on the director is `copy` here.

    Only paths below install_root can be read; a symlink whose target (resolved
    in the copy) leaves the copy is not followed.
    """

    def __init__(self, copy: Path, install_root: str = "/install"):
        self.copy = copy.resolve()
        self.install_root = posixpath.normpath(install_root)

    def readable(self, path: str) -> bool:
        return is_under(path, self.install_root)

    def _local(self, path: str) -> Optional[Path]:
        """The file in the copy that a director path leads to, symlinks resolved as the
        director would (an absolute target is a director path); None when it leaves the
        install root or goes round in circles."""
        real = self.resolve(path)
        if real is None:
            return None
        rel = posixpath.relpath(real, self.install_root)
        return self.copy if rel == "." else self.copy / rel

    def resolve(self, path: str) -> Optional[str]:
        """A director path with every symlink resolved, if it stays below install_root."""
        norm = normal(path)
        if norm is None or not is_under(norm, self.install_root):
            return None
        done = self.install_root
        todo = posixpath.relpath(norm, self.install_root).split("/")
        hops = 0
        while todo:
            part = todo.pop(0)
            if part in ("", "."):
                continue
            candidate = posixpath.normpath(posixpath.join(done, part))
            if not is_under(candidate, self.install_root):
                return None
            local = self.copy / posixpath.relpath(candidate, self.install_root)
            if not local.is_symlink():
                done = candidate
                continue
            hops += 1
            target = os.readlink(local)
            if hops > 40:
                return None
            base = target if target.startswith("/") else posixpath.join(done, target)
            base = posixpath.normpath(base)
            if not is_under(base, self.install_root):
                return None
            todo = posixpath.relpath(base, self.install_root).split("/") + todo
            done = self.install_root
        return done

    def read(self, path: str) -> Optional[bytes]:
        local = self._local(path)
        if local is None:
            return None
        try:
            info = local.stat()
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE:
                return None
            return local.read_bytes()
        except OSError:
            return None

    def mode(self, path: str) -> Optional[int]:
        local = self._local(path)
        try:
            return None if local is None else stat.S_IMODE(local.stat().st_mode)
        except OSError:
            return None

    def is_dir(self, path: str) -> bool:
        local = self._local(path)
        return local is not None and local.is_dir()

    def listdir(self, path: str) -> list[str]:
        local = self._local(path)
        if local is None or not local.is_dir():
            return []
        return sorted(os.listdir(local), key=os.fsencode)

    def readlink(self, path: str) -> Optional[str]:
        norm = normal(path)
        if norm is None or not is_under(norm, self.install_root):
            return None
        parent = self._local(posixpath.dirname(norm))
        if parent is None:
            return None
        link = parent / posixpath.basename(norm)
        return os.readlink(link) if link.is_symlink() else None


class Overlay:
    """Rendered files (by director path) over the director's own: the new site as it would land.

    The fidelity proof reads the new site through this, so a `from: director`
    source or a postscript left on the director reads the same on both sides.
    """

    def __init__(self, files: dict[str, tuple[bytes, int]], below: DirectorFiles):
        self.files = files
        self.below = below
        self.install_root = below.install_root
        self.dirs = {posixpath.dirname(p) for p in files}

    def readable(self, path: str) -> bool:
        return path in self.files or self.below.readable(path)

    def read(self, path: str) -> Optional[bytes]:
        return self.files[path][0] if path in self.files else self.below.read(path)

    def mode(self, path: str) -> Optional[int]:
        return self.files[path][1] if path in self.files else self.below.mode(path)

    def is_dir(self, path: str) -> bool:
        return path in self.dirs or self.below.is_dir(path)

    def listdir(self, path: str) -> list[str]:
        own = {posixpath.basename(p) for p in self.files if posixpath.dirname(p) == path}
        return sorted(own | set(self.below.listdir(path)), key=os.fsencode)

    def readlink(self, path: str) -> Optional[str]:
        return None if path in self.files else self.below.readlink(path)
