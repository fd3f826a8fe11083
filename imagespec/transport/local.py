"""A director on this machine: its tree is a local directory (install_root).

For running imagespec on the director itself, and for the tests.  Commands
run as they are; files are staged beside their targets and renamed into
place.  See transport/base.py for what every transport promises.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Optional

from ..digest import sha256_hex
from ..runner import Effect, Runner
from .base import (
    ADVICE,
    TEMP_NAME,
    CommandsThroughWrap,
    FileData,
    TransportError,
    director_file,
    inside,
    not_a_directory,
    piped,
    write_failed,
)


class LocalTransport(CommandsThroughWrap):
    """A director tree on this machine."""

    def __init__(self, root: str, runner: Runner):
        self.root = root
        self.runner = runner
        self.description = f"local directory {root}"

    def _path(self, rel: str) -> Path:
        return Path(self.root) / rel

    def wrap(self, argv: Sequence[str], stdin_path: Optional[str] = None) -> list[str]:
        """The argv that runs: the command itself, or a shell pipe for input from a file."""
        return ["sh", "-c", piped(argv, stdin_path)] if stdin_path else list(argv)

    def read(self, rel: str) -> Optional[bytes]:
        try:
            return self._path(rel).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise TransportError(f"cannot read {self._path(rel)}: {exc.strerror}") from None

    def exists(self, rel: str) -> bool:
        return self._path(rel).exists()

    def hashes(self, rels: Iterable[str]) -> dict[str, Optional[str]]:
        out: dict[str, Optional[str]] = {}
        for rel in rels:
            data = self.read(rel)
            out[rel] = sha256_hex(data) if data is not None else None
        return out

    def hashes_abs(self, paths: Iterable[str]) -> dict[str, Optional[str]]:
        return {path: file_sha256(Path(director_file(path))) for path in sorted(paths)}

    def write_files(self, files: dict[str, FileData]) -> None:
        """All or nothing, like rsync --delay-updates: every file is staged beside its
        target first, and only when all are written are they renamed into place."""
        targets = {rel: self._path(inside(rel, self.root, "write")) for rel in files}
        plan = [
            f"write {targets[rel]} (mode {mode:o}, {len(data)} bytes)"
            for rel, (data, mode) in sorted(files.items())
        ]
        if self.runner.skips(Effect.CHANGE, *plan):
            return
        for path in targets.values():
            check_way(path)
        staged: list[tuple[str, Path]] = []
        renamed = 0
        try:
            for rel, (data, mode) in sorted(files.items()):
                staged.append((stage_file(targets[rel], data, mode), targets[rel]))
            for tmp, path in staged:
                rename(tmp, path)
                renamed += 1
        except OSError as exc:
            raise write_failed(exc, self.root, _unchanged(renamed)) from None
        finally:
            for tmp, _ in staged[renamed:]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def write_atomic(self, rel: str, data: bytes, mode: int = 0o644) -> bool:
        path = self._path(inside(rel, self.root, "write"))
        if self.runner.skips(Effect.RECORD):
            return False
        try:
            atomic_write(path, data, mode)
        except OSError as exc:
            raise write_failed(exc, path, f"{path} was left as it was") from None
        return True

    def delete(self, rels: Iterable[str]) -> None:
        """Remove files; a directory found in a file's place is not ours and is left alone."""
        paths = [self._path(inside(rel, self.root, "delete")) for rel in sorted(rels)]
        if self.runner.skips(Effect.CHANGE, *(f"rm {path}" for path in paths)):
            return
        for path in paths:
            try:
                path.unlink()
            except (FileNotFoundError, IsADirectoryError):
                pass
            except OSError as exc:
                if path.is_dir() and not path.is_symlink():
                    continue  # unlink of a directory: EPERM rather than EISDIR on some systems
                raise TransportError(
                    f"cannot delete {path}: {exc.strerror}; it was left in place"
                    f" ({ADVICE.get(exc.errno or 0, 'fix that, then apply again')})"
                ) from None

    def copy(self, pairs: dict[str, str]) -> None:
        checked = {
            inside(src, self.root, "copy"): inside(dest, self.root, "copy to")
            for src, dest in pairs.items()
        }
        if self.runner.skips(Effect.RECORD):
            return
        for src, dest in sorted(checked.items()):
            data = self.read(src)
            if data is None:
                continue
            try:
                atomic_write(self._path(dest), data, 0o644)
            except OSError as exc:
                raise write_failed(
                    exc, self._path(dest), f"no file was changed; {self._path(src)} is unchanged"
                ) from None

    def make_dir_exclusive(self, rel: str) -> bool:
        """Create the directory; False if a real directory is already there.  A symbolic
        link or a file in its place is refused: it is never followed."""
        path = self._path(rel)
        if self.runner.skips(Effect.RECORD):
            return True
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir()
        except FileExistsError:
            if path.is_symlink() or not path.is_dir():
                raise TransportError(not_a_directory(str(path))) from None
            return False
        except OSError as exc:
            raise write_failed(exc, path, "nothing was done") from None
        return True

    def remove_tree(self, rel: str) -> None:
        """Remove a directory tree (never through a symbolic link); TransportError if it stays."""
        path = self._path(inside(rel, self.root, "remove"))
        if self.runner.skips(Effect.RECORD):
            return
        if path.is_symlink():
            raise TransportError(not_a_directory(str(path)))
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise TransportError(f"cannot remove {exc.filename or path}: {exc.strerror}") from None

    def clean_temp(self, dirs: Iterable[str]) -> list[str]:
        """Remove imagespec's own temporary files that a killed apply left in these directories."""
        directories = [self._path(inside(rel, self.root, "clean")) for rel in sorted(set(dirs))]
        if self.runner.skips(Effect.RECORD):
            return []
        removed = []
        for directory in directories:
            try:
                entries = list(os.scandir(directory))
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise TransportError(f"cannot list {directory}: {exc.strerror}") from None
            for entry in entries:
                if TEMP_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    self._unlink_temp(Path(entry.path))
                    removed.append(entry.path)
        return removed

    def _unlink_temp(self, path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise TransportError(
                f"cannot remove the temporary file {path}: {exc.strerror}"
                f" ({ADVICE.get(exc.errno or 0, 'remove it by hand, then apply again')})"
            ) from None


def file_sha256(path: Path) -> Optional[str]:
    """sha256 hex of a regular file (symlinks followed), read in blocks; None when it is
    missing, unreadable or something else (a FIFO would block, a directory is no file)."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (fstat then refuses it)
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb", buffering=0) as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            digest = hashlib.sha256()
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _unchanged(done: int) -> str:
    if not done:
        return "no file on the director was changed"
    return f"only {done} file(s) were replaced; the rest were left as they were"


def check_way(path: Path) -> None:
    """Fail before writing anything when a directory sits where a file goes, or the reverse."""
    if path.is_dir() and not path.is_symlink():
        raise write_failed(
            OSError(errno.EISDIR, "it is a directory", str(path)), path, _unchanged(0)
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise write_failed(
                    OSError(errno.ENOTDIR, "it is not a directory", str(parent)),
                    parent,
                    _unchanged(0),
                )
            return


def stage_file(path: Path, data: bytes, mode: int) -> str:
    """Write `data` to a temporary file beside `path` (fsynced); the caller renames it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.imagespec-")
    except OSError as exc:
        exc.filename = str(path)  # not the random name of a file that was never made
        raise
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not exc.filename:
            exc.filename = str(path)
        raise
    return tmp


def atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Write to a temporary file beside the target, fsync, then rename over it."""
    tmp = stage_file(path, data, mode)
    try:
        rename(tmp, path)
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def rename(tmp: str, path: Path) -> None:
    """os.replace, with an error that names the target rather than the temporary file."""
    try:
        os.replace(tmp, path)
    except OSError as exc:
        exc.filename, exc.filename2 = str(path), None
        raise
