"""What every transport promises, and what the transports share.

A transport is the only way imagespec reaches a director: it runs commands
there (the builds) and reads and writes files under install_root.  Every
transport, whatever the way (transport/local.py, transport/ssh.py):

- writes every file atomically (a temporary name in the same directory, then
  a rename), never follows the user's files outside install_root, refuses a
  path that leaves it (`inside`), and reports missing files as None rather
  than failing;
- fails with a TransportError that says what was left and what to do;
- leaves every dry-run decision to its runner (Runner.skips): reads always
  run; the files it delivers (write_files, delete) and the commands it runs
  are printed instead; its own records (write_atomic, copy, the lock
  directory, clean-up) are skipped silently, since a dry run records nothing.
"""

from __future__ import annotations

import errno
import posixpath
import re
import shlex
import socket
from collections.abc import Iterable, Sequence
from typing import Optional, Protocol

from ..errors import ImagespecError
from ..runner import Effect, Result, Runner
from ..safe import is_director_file

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


class Transport(Protocol):
    root: str  # install_root as seen on the director
    runner: Runner
    description: str

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin_path: Optional[str] = None,
        input_data: Optional[bytes] = None,
        check: bool = True,
        effect: Effect = Effect.CHANGE,
    ) -> Result:
        """Run a build command on the director (stdin_path: a director file piped in)."""

    def describe(self, argv: Sequence[str], stdin_path: Optional[str] = None) -> str:
        """The command line `run` runs, for the logs."""

    def read(self, rel: str) -> Optional[bytes]: ...

    def hashes(self, rels: Iterable[str]) -> dict[str, Optional[str]]: ...

    def hashes_abs(self, paths: Iterable[str]) -> dict[str, Optional[str]]:
        """Read only: sha256 hex of files anywhere on the director by absolute path (the
        `from: director` sync sources), symlinks followed as packimage's `rsync -L` does;
        None for a path that is missing, unreadable or not a regular file."""

    def write_files(self, files: dict[str, FileData]) -> None: ...

    def delete(self, rels: Iterable[str]) -> None: ...

    def copy(self, pairs: dict[str, str]) -> None: ...

    def write_atomic(self, rel: str, data: bytes, mode: int = 0o644) -> bool:
        """Write one of imagespec's records; False when a dry run skipped it."""

    def make_dir_exclusive(self, rel: str) -> bool: ...

    def remove_tree(self, rel: str) -> None: ...

    def clean_temp(self, dirs: Iterable[str]) -> list[str]: ...

    def exists(self, rel: str) -> bool: ...


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


def director_file(path: str) -> str:
    """`path` if it may name a `from: director` file (safe.is_director_file); the transports
    check again whatever validation did, since the path reaches a shell over ssh."""
    if not is_director_file(path):
        raise TransportError(
            f"refusing to read {path!r} on the director: it is not an absolute, normalised"
            " path of safe characters; nothing was read (fix the sync entry's src)"
        )
    return path


def this_host() -> str:
    return socket.gethostname()


def piped(argv: Sequence[str], stdin_path: Optional[str] = None) -> str:
    """One shell command line; input from a file is piped with cat: xCAT's mkdef/chdef
    read a stanza from standard input only when it is a pipe (`< file` is ignored)."""
    command = shlex.join(argv)
    if stdin_path:
        command = f"cat {shlex.quote(stdin_path)} | {command}"
    return command


def not_a_directory(path: str) -> str:
    return (
        f"{path} is a symbolic link or not a directory, and imagespec never follows one;"
        " remove it (rm) if no apply is running"
    )


def last_line(text: str) -> str:
    """The last non-empty line of a command's output: ssh's or rsync's reason."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


class CommandsThroughWrap:
    """`run` and `describe` for a transport whose `wrap` says how a command reaches the
    director (as it is, or inside one ssh call); the runner runs what `wrap` returns."""

    runner: Runner

    def wrap(self, argv: Sequence[str], stdin_path: Optional[str] = None) -> list[str]:
        raise NotImplementedError

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin_path: Optional[str] = None,
        input_data: Optional[bytes] = None,
        check: bool = True,
        effect: Effect = Effect.CHANGE,
    ) -> Result:
        full = self.wrap(argv, stdin_path)
        return self.runner.run(full, input_data=input_data, check=check, effect=effect)

    def describe(self, argv: Sequence[str], stdin_path: Optional[str] = None) -> str:
        return shlex.join(self.wrap(argv, stdin_path))
