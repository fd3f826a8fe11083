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
import errno
import hashlib
import os
import posixpath
import re
import shlex
import shutil
import socket
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Optional, Protocol

from ..errors import ImagespecError, first_line
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


# The names stage_file (mkstemp) and SshTransport.write_atomic (mktemp) give their
# temporary files: `.NAME.imagespec-` and 8 random letters, digits or '_'.
TEMP_NAME = re.compile(r"\..+\.imagespec-[A-Za-z0-9_]{8}")
TEMP_GLOB = ".?*.imagespec-????????"
RSYNC_TEMP_DIR = ".~tmp~"  # where rsync --delay-updates keeps files until the end

ADVICE = {
    errno.ENOSPC: "free some space on the director, then apply again",
    errno.EDQUOT: "free some space (the quota is exhausted), then apply again",
    errno.EROFS: "the file system is read-only: remount it read-write, then apply again",
    errno.EACCES: "fix the permissions, then apply again",
    errno.EPERM: "fix the permissions or the immutable attribute (lsattr), then apply again",
    errno.EISDIR: "a directory is where imagespec writes a file: move it away, then apply again",
    errno.ENOTDIR: "a file is where imagespec needs a directory: move it away, then apply again",
    errno.EEXIST: "a file is where imagespec needs a directory: move it away, then apply again",
}


def write_failed(exc: OSError, path: object, outcome: str) -> TransportError:
    """One line for a failed write on the director: the path, why, what it left, what to do."""
    where = exc.filename or path
    advice = ADVICE.get(exc.errno or 0, "fix that, then apply again")
    return TransportError(f"cannot write {where}: {exc.strerror or exc}; {outcome} ({advice})")


def inside(rel: str, root: str, verb: str) -> str:
    """`rel` if it names something under install_root; never act on a path that leaves it.

    Callers pass paths from the render or from state.json, which state.py
    checks; this is the last line of defence whatever the caller.
    """
    norm = posixpath.normpath(rel) if rel else ""
    if not norm or norm == "." or norm.startswith(("/", "../")) or norm == ".." or "\0" in rel:
        raise TransportError(
            f"refusing to {verb} {rel!r}: it is not a path under the director's tree {root};"
            " nothing was done (check .imagespec/state.json on the director)"
        )
    return rel


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

    def clean_temp(self, dirs: Iterable[str]) -> list[str]: ...

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
        targets = {rel: self._path(inside(rel, self.root, "write")) for rel in files}
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

    def write_atomic(self, rel: str, data: bytes) -> None:
        path = self._path(inside(rel, self.root, "write"))
        try:
            atomic_write(path, data, 0o644)
        except OSError as exc:
            raise write_failed(exc, path, f"{path} was left as it was") from None

    def delete(self, rels: Iterable[str]) -> None:
        """Remove files; a directory found in a file's place is not ours and is left alone."""
        paths = [self._path(inside(rel, self.root, "delete")) for rel in sorted(rels)]
        for path in paths:
            if self.runner.dry_run:
                self.runner.echo(f"rm {path}")
                continue
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
        removed = []
        for rel in sorted(set(dirs)):
            directory = self._path(inside(rel, self.root, "clean"))
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
        if self.runner.dry_run:
            self.runner.echo(f"rm {path}")
            return
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise TransportError(
                f"cannot remove the temporary file {path}: {exc.strerror}"
                f" ({ADVICE.get(exc.errno or 0, 'remove it by hand, then apply again')})"
            ) from None


def not_a_directory(path: str) -> str:
    return (
        f"{path} is a symbolic link or not a directory, and imagespec never follows one;"
        " remove it (rm) if no apply is running"
    )


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


def rsync_cause(output: str) -> str:
    """The line of rsync's output that says what went wrong (not its closing summary)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    causes = [line for line in lines if not line.startswith(("rsync error:", "Warning:"))]
    return (causes or lines or ["no output"])[0][:300]


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
        for rel in files:
            inside(rel, self.root, "write")
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
                    f"rsync to {self.description} failed: {rsync_cause(exc.output)};"
                    " rsync renames files into place only when the whole transfer is done,"
                    " so no file was half-written; apply again when that is fixed"
                ) from None

    def _clean_partial(self, files: dict[str, FileData]) -> None:
        """Remove what a broken transfer left in rsync's delay-updates directories."""
        dirs = sorted({posixpath.dirname(self._abs(rel)) for rel in files})
        script = "rm -rf " + " ".join(shlex.quote(posixpath.join(d, ".~tmp~")) for d in dirs)
        with contextlib.suppress(TransportError):
            self._sh(script, check=False)

    def write_atomic(self, rel: str, data: bytes) -> None:
        """A temporary file named like stage_file's, synced, then renamed over the target."""
        path = self._abs(inside(rel, self.root, "write"))
        parent, name = posixpath.split(path)
        template = shlex.quote(posixpath.join(parent, f".{name}.imagespec-XXXXXXXX"))
        script = (
            f"mkdir -p {shlex.quote(parent)} && t=$(mktemp {template}) || exit 1; "
            f'if cat > "$t" && chmod 644 "$t" && {{ sync -- "$t" 2>/dev/null || true; }}'
            f' && mv -f "$t" {shlex.quote(path)}; then exit 0; fi; rm -f "$t"; exit 1'
        )
        try:
            self._sh(script, data)
        except TransportError as exc:
            raise TransportError(
                f"cannot write {self.description}/{rel}: {first_line(str(exc))}; it was left as"
                " it was (fix the cause on the director, then apply again)"
            ) from None

    def delete(self, rels: Iterable[str]) -> None:
        """Remove files; a directory found in a file's place is not ours and is left alone."""
        names = [inside(rel, self.root, "delete") for rel in sorted(rels)]
        if names:
            script = (
                f"cd {shlex.quote(self.root)} && xargs -0 -r sh -c"
                """ 'for f; do [ -d "$f" ] && [ ! -L "$f" ] || rm -f -- "$f" || exit 1; done' sh"""
            )
            self._sh(script, "\0".join(f"./{n}" for n in names).encode())

    def copy(self, pairs: dict[str, str]) -> None:
        for src, dest in sorted(pairs.items()):
            s = shlex.quote(self._abs(inside(src, self.root, "copy")))
            d = shlex.quote(self._abs(inside(dest, self.root, "copy to")))
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
        path = shlex.quote(self._abs(inside(rel, self.root, "remove")))
        out = self._sh(
            f"if [ -L {path} ]; then echo refused; else rm -rf -- {path}; fi", mutating=False
        )
        if out.strip() == "refused":
            raise TransportError(not_a_directory(f"{self.host}:{self._abs(rel)}"))

    def clean_temp(self, dirs: Iterable[str]) -> list[str]:
        """Remove what a killed apply left in these directories: imagespec's temporary files
        and rsync's delay-updates directory."""
        names = [inside(rel, self.root, "clean") for rel in sorted(set(dirs))]
        if not names:
            return []
        find = (
            'find "$@" -mindepth 1 -maxdepth 1 \\('
            f" -type f -name {shlex.quote(TEMP_GLOB)}"
            f" -o -type d -name {shlex.quote(RSYNC_TEMP_DIR)} \\) -print"
        )
        script = (
            f"cd {shlex.quote(self.root)} && xargs -0 -r sh -c {shlex.quote(find)} sh 2>/dev/null;"
            " true"
        )
        listing = self._sh(script, "\0".join(f"./{n}" for n in names).encode(), mutating=False)
        found = [
            line[2:]
            for line in listing.splitlines()
            if line.startswith("./")
            and (
                TEMP_NAME.fullmatch(posixpath.basename(line))
                or posixpath.basename(line) == RSYNC_TEMP_DIR
            )
        ]
        if found:
            removal = f"cd {shlex.quote(self.root)} && xargs -0 -r rm -rf --"
            self._sh(removal, "\0".join(f"./{n}" for n in found).encode())
        return [self._abs(n) for n in found]


def last_line(text: str) -> str:
    """The last non-empty line of a command's output: ssh's or rsync's reason."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
