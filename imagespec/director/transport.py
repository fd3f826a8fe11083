"""Moving files to a director and running commands there.

LocalTransport works on a directory of this machine (for running on the
director itself, and for tests); SshTransport drives a remote director with
the real OpenSSH client and rsync.  Both write every file atomically (a
temporary name in the same directory, then a rename; rsync --delay-updates
for remote directors), never follow the user's files outside install_root,
and report missing files as None rather than failing.

Every remote call has a deadline (IMAGESPEC_IO_TIMEOUT for the small reads
and writes, IMAGESPEC_SYNC_TIMEOUT for rsync); when it passes, the call's
whole process group (ssh, rsync and what they started) is stopped and the
call fails with a TransportError.  The director's host reaches ssh and rsync
only after `--`, never where it could be read as an option.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import shlex
import shutil
import socket
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Optional, Protocol

from ..errors import ImagespecError
from ..runner import (
    CommandError,
    Runner,
    check_host,
    execute,
    io_timeout,
    run_local,
    ssh_argv,
    ssh_base,
    sync_timeout,
)

FileData = tuple[bytes, int]  # content, mode


class TransportError(ImagespecError):
    """The director could not be read or written."""


def this_host() -> str:
    return socket.gethostname()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Transport(Protocol):
    root: str  # install_root as seen on the director
    runner: Runner
    description: str

    def read(self, rel: str) -> Optional[bytes]: ...

    def hashes(self, rels: Iterable[str]) -> dict[str, Optional[str]]: ...

    def write_files(self, files: dict[str, FileData]) -> None: ...

    def delete(self, rels: Iterable[str]) -> None: ...

    def copy(self, pairs: dict[str, str]) -> None: ...

    def write_atomic(self, rel: str, data: bytes) -> None: ...

    def make_dir_exclusive(self, rel: str) -> bool: ...

    def remove_tree(self, rel: str) -> None: ...

    def exists(self, rel: str) -> bool: ...


class LocalTransport:
    """A director tree on this machine."""

    def __init__(self, root: str, runner: Runner):
        self.root = root
        self.runner = runner
        self.description = f"local directory {root}"

    def _path(self, rel: str) -> Path:
        return Path(self.root) / rel

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

    def write_files(self, files: dict[str, FileData]) -> None:
        """All or nothing, like rsync --delay-updates: every file is staged beside its
        target first, and only when all are written are they renamed into place."""
        if self.runner.dry_run:
            for rel, (data, mode) in sorted(files.items()):
                self.runner.echo(f"write {self._path(rel)} (mode {mode:o}, {len(data)} bytes)")
            return
        staged: list[tuple[str, Path]] = []
        try:
            for rel, (data, mode) in sorted(files.items()):
                staged.append((stage_file(self._path(rel), data, mode), self._path(rel)))
        except OSError as exc:
            for tmp, _ in staged:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            raise TransportError(
                f"cannot write {exc.filename or self.root}: {exc.strerror}; no file on the"
                " director was changed (free some space or fix the permissions, then apply again)"
            ) from None
        for tmp, path in staged:
            os.replace(tmp, path)

    def write_atomic(self, rel: str, data: bytes) -> None:
        atomic_write(self._path(rel), data, 0o644)

    def delete(self, rels: Iterable[str]) -> None:
        for rel in sorted(rels):
            if self.runner.dry_run:
                self.runner.echo(f"rm {self._path(rel)}")
                continue
            with contextlib.suppress(FileNotFoundError):
                self._path(rel).unlink()

    def copy(self, pairs: dict[str, str]) -> None:
        for src, dest in sorted(pairs.items()):
            data = self.read(src)
            if data is not None:
                atomic_write(self._path(dest), data, 0o644)

    def make_dir_exclusive(self, rel: str) -> bool:
        """Create the directory; False if a real directory is already there.  A symbolic
        link or a file in its place is refused: it is never followed."""
        path = self._path(rel)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir()
        except FileExistsError:
            if path.is_symlink() or not path.is_dir():
                raise TransportError(not_a_directory(str(path))) from None
            return False
        except OSError as exc:
            raise TransportError(f"cannot create {path}: {exc.strerror}") from None
        return True

    def remove_tree(self, rel: str) -> None:
        """Remove a directory tree (never through a symbolic link); TransportError if it stays."""
        path = self._path(rel)
        if path.is_symlink():
            raise TransportError(not_a_directory(str(path)))
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise TransportError(f"cannot remove {exc.filename or path}: {exc.strerror}") from None


def not_a_directory(path: str) -> str:
    return (
        f"{path} is a symbolic link or not a directory, and imagespec never follows one;"
        " remove it (rm) if no apply is running"
    )


def stage_file(path: Path, data: bytes, mode: int) -> str:
    """Write `data` to a temporary file beside `path` (fsynced); the caller renames it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.imagespec-")
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
    os.replace(stage_file(path, data, mode), path)


class SshTransport:
    """A remote director: commands over ssh, files with rsync (checksums, delayed updates)."""

    def __init__(self, host: str, root: str, runner: Runner):
        self.host = check_host(host)
        self.root = root
        self.runner = runner
        self.description = f"{host}:{root}"

    def _abs(self, rel: str) -> str:
        return posixpath.join(self.root, rel)

    def _sh(
        self, script: str, data: Optional[bytes] = None, mutating: bool = True, check: bool = True
    ) -> str:
        argv = ssh_argv(self.host, script)
        if self.runner.dry_run and mutating:
            self.runner.echo(shlex.join(argv))
            return ""
        try:
            return run_local(argv, input_data=data, check=check, timeout=self._deadline()).output
        except CommandError as exc:
            if exc.timed_out:
                raise TransportError(self._timed_out()) from None
            raise TransportError(f"{self.host}: {last_line(exc.output) or exc}") from None

    def _deadline(self) -> float:
        return self.runner.timeout or io_timeout()

    def _timed_out(self) -> str:
        return (
            f"{self.host} did not answer within {self._deadline():g} s (IMAGESPEC_IO_TIMEOUT);"
            " the ssh call and everything it started were stopped: check the director and"
            " the link, then try again"
        )

    def read(self, rel: str) -> Optional[bytes]:
        path = shlex.quote(self._abs(rel))
        script = f"if [ -f {path} ]; then cat {path}; else exit 3; fi"
        done = execute(ssh_argv(self.host, script), timeout=self._deadline(), merge=False)
        if done.timed_out:
            raise TransportError(self._timed_out())
        if done.returncode == 3:
            return None
        if done.returncode != 0:
            detail = last_line((done.stderr + done.note.encode()).decode("utf-8", "replace"))
            raise TransportError(f"cannot read {self.description}/{rel}: {detail}")
        return done.stdout

    def exists(self, rel: str) -> bool:
        path = shlex.quote(self._abs(rel))
        out = self._sh(f"if [ -e {path} ]; then echo yes; fi", mutating=False)
        return out.strip() == "yes"

    def hashes(self, rels: Iterable[str]) -> dict[str, Optional[str]]:
        names = sorted(rels)
        out: dict[str, Optional[str]] = dict.fromkeys(names)
        if not names:
            return out
        script = (
            f"cd {shlex.quote(self.root)} 2>/dev/null && xargs -0 -r sha256sum -- 2>/dev/null; true"
        )
        listing = self._sh(script, "\0".join(names).encode(), mutating=False)
        for line in listing.splitlines():
            digest, _, name = line.partition("  ")
            if name in out:
                out[name] = digest
        return out

    def write_files(self, files: dict[str, FileData]) -> None:
        """Stage the files locally, then one rsync: checksums, updates renamed into place at the end."""
        if not files:
            return
        with tempfile.TemporaryDirectory(prefix="imagespec-stage-") as stage:
            for rel, (data, mode) in files.items():
                path = Path(stage) / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                path.chmod(mode)
            argv = [
                "rsync",
                "-rlpc",
                "--delay-updates",
                "--no-owner",
                "--no-group",
                "--omit-dir-times",
                f"--timeout={io_timeout()}",
                "-e",
                shlex.join(ssh_base()),
                "--",
                f"{stage}/",
                f"{check_host(self.host)}:{self.root}/",
            ]
            if self.runner.dry_run:
                self.runner.echo(shlex.join(argv))
                return
            try:
                run_local(argv, timeout=self.runner.timeout or sync_timeout())
            except CommandError as exc:
                self._clean_partial(files)
                if exc.timed_out:
                    raise TransportError(
                        f"rsync to {self.description} did not finish within"
                        f" {self.runner.timeout or sync_timeout():g} s (IMAGESPEC_SYNC_TIMEOUT);"
                        " it was stopped with everything it started, and rsync renames files"
                        " into place only at the end, so no file was half-written"
                    ) from None
                raise TransportError(
                    f"rsync to {self.description} failed: {last_line(exc.output)}; rsync"
                    " renames files into place only when the whole transfer is done, so no"
                    " file was half-written; apply again when the director is reachable"
                ) from None

    def _clean_partial(self, files: dict[str, FileData]) -> None:
        """Remove what a broken transfer left in rsync's delay-updates directories."""
        dirs = sorted({posixpath.dirname(self._abs(rel)) for rel in files})
        script = "rm -rf " + " ".join(shlex.quote(posixpath.join(d, ".~tmp~")) for d in dirs)
        with contextlib.suppress(TransportError):
            self._sh(script, check=False)

    def write_atomic(self, rel: str, data: bytes) -> None:
        path = self._abs(rel)
        parent, tmp = posixpath.dirname(path), f"{path}.tmp-$$"
        self._sh(
            f"mkdir -p {shlex.quote(parent)} && cat > {tmp} && mv -f {tmp} {shlex.quote(path)}",
            data,
        )

    def delete(self, rels: Iterable[str]) -> None:
        names = sorted(rels)
        if names:
            script = f"cd {shlex.quote(self.root)} && xargs -0 -r rm -f --"
            self._sh(script, "\0".join(names).encode())

    def copy(self, pairs: dict[str, str]) -> None:
        for src, dest in sorted(pairs.items()):
            s, d = shlex.quote(self._abs(src)), shlex.quote(self._abs(dest))
            self._sh(f'mkdir -p "$(dirname {d})" && cp -p {s} {d}')

    def make_dir_exclusive(self, rel: str) -> bool:
        """As LocalTransport's: False if a real directory is there, a symlink is refused."""
        path = shlex.quote(self._abs(rel))
        out = self._sh(
            f'mkdir -p "$(dirname {path})" && if mkdir {path} 2>/dev/null; then echo ok;'
            f" elif [ -L {path} ] || [ ! -d {path} ]; then echo refused; fi",
            mutating=False,
        )
        if out.strip() == "refused":
            raise TransportError(not_a_directory(f"{self.host}:{self._abs(rel)}"))
        return out.strip() == "ok"

    def remove_tree(self, rel: str) -> None:
        path = shlex.quote(self._abs(rel))
        out = self._sh(
            f"if [ -L {path} ]; then echo refused; else rm -rf -- {path}; fi", mutating=False
        )
        if out.strip() == "refused":
            raise TransportError(not_a_directory(f"{self.host}:{self._abs(rel)}"))


def last_line(text: str) -> str:
    """The last non-empty line of a command's output: ssh's or rsync's reason."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
