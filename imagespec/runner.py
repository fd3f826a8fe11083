"""Every external command imagespec runs goes through here.

One place for dry runs (commands are printed, not run), for logging (each
command and its output can be appended to a log), and for running on a
director over ssh (the admin's own OpenSSH client, so ssh config, keys,
jump hosts and ControlMaster apply).

One place, too, for stopping what imagespec started.  Every command runs in
a process group of its own (a new session), which is stopped as a whole when
its deadline passes, when imagespec is interrupted, and -- through the reaper
(reaper.py) -- when imagespec itself is killed.  A command's group never
outlives the command: processes it leaves behind in its group are stopped
when it ends, so nothing holds its output pipe open or goes on writing.
Every command has a deadline: IMAGESPEC_BUILD_TIMEOUT for builds,
IMAGESPEC_IO_TIMEOUT for the small reads and writes of a remote director and
IMAGESPEC_SYNC_TIMEOUT for rsync (transport.py).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Callable, Optional

from .errors import ImagespecError
from .reaper import KILL_GRACE, MARKER, group_alive, stop_groups

POLL = 0.5  # seconds between checks on a running command
RECORD_AFTER = 1.0  # a build running this long is recorded in the director's lock


class CommandError(ImagespecError):
    """An external command failed; carries its output for the logs."""

    def __init__(self, argv: Sequence[str], returncode: int, output: str, timed_out: bool = False):
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        self.timed_out = timed_out
        tail = output.strip().splitlines()[-1] if output.strip() else "no output"
        super().__init__(f"{shlex.join(argv)} failed with exit code {returncode}: {tail}")


class Interrupted(ImagespecError):
    """imagespec is stopping (interrupted): no new command is started."""


@dataclass
class Result:
    argv: list[str]
    returncode: int
    output: str  # stdout and stderr interleaved
    note: str = ""  # what imagespec had to do to end the command, for the logs

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def env_seconds(name: str, default: int) -> int:
    """A positive number of seconds from the environment; `default` when unset or invalid."""
    try:
        return max(1, int(os.environ.get(name, str(default))))
    except ValueError:
        return default


def io_timeout() -> int:
    """Seconds a remote director may stay silent (IMAGESPEC_IO_TIMEOUT, default 120): rsync's
    --timeout, ssh's keep-alives, and the deadline of each small read or write over ssh."""
    return env_seconds("IMAGESPEC_IO_TIMEOUT", 120)


def sync_timeout() -> int:
    """Deadline of one rsync of the rendered files (IMAGESPEC_SYNC_TIMEOUT, default 1800)."""
    return env_seconds("IMAGESPEC_SYNC_TIMEOUT", 1800)


def build_timeout() -> int:
    """Deadline of each build command (IMAGESPEC_BUILD_TIMEOUT, default 14400 = 4 h)."""
    return env_seconds("IMAGESPEC_BUILD_TIMEOUT", 14400)


def ssh_base() -> list[str]:
    """The ssh client command; IMAGESPEC_SSH_CONFIG adds `-F file` (the tests' sshd uses it).

    A connection that cannot be made, or a link that carries nothing (not even
    keep-alive replies) for about IMAGESPEC_IO_TIMEOUT seconds, fails instead
    of hanging.
    """
    io = io_timeout()
    interval = max(1, min(15, io // 4))
    argv = [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        f"ConnectTimeout={min(io, 30)}",
        "-o",
        f"ServerAliveInterval={interval}",
        "-o",
        f"ServerAliveCountMax={max(1, io // interval)}",
    ]
    config = os.environ.get("IMAGESPEC_SSH_CONFIG")
    if config:
        argv[1:1] = ["-F", config]
    return argv


def check_host(host: str) -> str:
    """A director host must never reach ssh or rsync as an option."""
    if not host or host.startswith("-"):
        raise ImagespecError(
            f"director host {host!r} would be read by ssh as an option; use a host name,"
            " user@host or an ssh config alias"
        )
    return host


def ssh_argv(host: str, command: str) -> list[str]:
    """`ssh OPTIONS -- HOST COMMAND`: the `--` keeps any host from being read as an option.

    COMMAND is one shell string that starts with a command name, never with `-`
    (older OpenSSH parses options again after the host).
    """
    return [*ssh_base(), "--", check_host(host), command]


# ------------------------------------------------------------------ process groups


class ProcessGroups:
    """The process groups of the commands this process is running, so they can be stopped.

    While a director's lock is held, the reaper is told of every group, and
    builds that run for more than a moment are recorded in the lock (through
    `recorder`), so that a later apply never breaks the lock of a build still
    running.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[int] = set()
        self._recorded: set[int] = set()
        self._record_lock = threading.Lock()
        self._reaper: Optional[subprocess.Popen[bytes]] = None
        self.recorder: Optional[Callable[[list[int]], None]] = None
        self.stopping = threading.Event()

    def add(self, pgid: int) -> None:
        with self._lock:
            self._running.add(pgid)
            self._tell_reaper(f"+{pgid}")

    def remove(self, pgid: int) -> None:
        with self._lock:
            self._running.discard(pgid)
            self._tell_reaper(f"-{pgid}")
            recorded = pgid in self._recorded
        if recorded:
            self._record(lambda groups: groups.discard(pgid))

    def record(self, pgid: int) -> None:
        """Note a long-running build in the lock (if one is held)."""
        with self._lock:
            if pgid not in self._running:
                return
        self._record(lambda groups: groups.add(pgid))

    def _record(self, change: Callable[[set[int]], None]) -> None:
        with self._record_lock:  # writes reach the lock in the order the changes happen
            change(self._recorded)
            if self.recorder is not None:
                self.recorder(sorted(self._recorded))

    def running(self) -> list[int]:
        with self._lock:
            return sorted(self._running)

    def stop_all(self) -> list[int]:
        """Stop every running command's group; no builds start afterwards.  The groups
        that would not die are returned."""
        self.stopping.set()
        return stop_groups(self.running())

    def start_reaper(self) -> int:
        """Start the reaper (see reaper.py) for the groups started from now on; its pid."""
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reaper.py")
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", path, MARKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        with self._lock:
            self._reaper = proc
            for pgid in sorted(self._running):
                self._tell_reaper(f"+{pgid}")
        return proc.pid

    def close_reaper(self) -> None:
        """Let the reaper go: it stops whatever is still listed, then exits."""
        with self._lock:
            proc, self._reaper = self._reaper, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        # if it takes longer, it goes on in its own session; nothing waits for it
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=3 * KILL_GRACE)

    def _tell_reaper(self, line: str) -> None:
        stdin = self._reaper.stdin if self._reaper is not None else None
        if stdin is None:
            return
        try:
            stdin.write(f"{line}\n".encode())
            stdin.flush()
        except OSError:
            pass  # the reaper is gone; the lock's record still protects the builds


GROUPS = ProcessGroups()


@dataclass
class Runner:
    """Runs commands locally or on `host` over ssh; in dry-run mode only prints them."""

    host: Optional[str] = None
    dry_run: bool = False
    echo: Callable[[str], None] = print
    timeout: Optional[float] = None
    printed: list[str] = field(default_factory=list)

    def wrap(self, argv: Sequence[str], stdin_path: Optional[str] = None) -> list[str]:
        """The argv that actually runs: remote commands become one ssh call.

        Input from a file is piped with cat: xCAT's mkdef/chdef read a stanza from
        standard input only when it is a pipe (a `< file` redirect is ignored).
        """
        command = shlex.join(argv)
        if stdin_path:
            command = f"cat {shlex.quote(stdin_path)} | {command}"
        if self.host is None:
            return ["sh", "-c", command] if stdin_path else list(argv)
        return ssh_argv(self.host, command)

    def describe(self, argv: Sequence[str], stdin_path: Optional[str] = None) -> str:
        return shlex.join(self.wrap(argv, stdin_path))

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin_path: Optional[str] = None,
        input_data: Optional[bytes] = None,
        check: bool = True,
        mutating: bool = True,
        env: Optional[dict[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> Result:
        """Run a command (on the director).  Read-only commands (mutating=False) run even in dry runs.

        These are the builds: each has a deadline (IMAGESPEC_BUILD_TIMEOUT unless
        given), none starts once imagespec is stopping, and one that runs for more
        than a moment is recorded in the director's lock.
        """
        full = self.wrap(argv, stdin_path)
        if self.dry_run and mutating:
            line = shlex.join(full)
            self.printed.append(line)
            self.echo(line)
            return Result(full, 0, "")
        if GROUPS.stopping.is_set():
            raise Interrupted(f"interrupted before {shlex.join(argv)} could start")
        return run_local(
            full,
            input_data=input_data,
            check=check,
            env=env,
            timeout=timeout or self.timeout or build_timeout(),
            record=True,
        )


@dataclass
class Finished:
    returncode: int
    stdout: bytes
    stderr: bytes
    note: str = ""  # what imagespec had to do to end the command
    timed_out: bool = False


def run_local(
    argv: Sequence[str],
    *,
    input_data: Optional[bytes] = None,
    check: bool = True,
    env: Optional[dict[str, str]] = None,
    timeout: Optional[float] = None,
    cwd: Optional[str] = None,
    record: bool = False,
) -> Result:
    """Run a command here, capturing stdout+stderr together; CommandError when it fails,
    when `timeout` seconds pass (exit code 124; its whole process group is stopped)."""
    done = execute(argv, input_data=input_data, env=env, timeout=timeout, cwd=cwd, record=record)
    output = done.stdout.decode("utf-8", "replace")
    result = Result(list(argv), done.returncode, output, done.note.strip())
    if (check or done.timed_out) and done.returncode != 0:
        raise CommandError(argv, done.returncode, output + done.note, done.timed_out)
    return result


def execute(
    argv: Sequence[str],
    *,
    input_data: Optional[bytes] = None,
    env: Optional[dict[str, str]] = None,
    timeout: Optional[float] = None,
    cwd: Optional[str] = None,
    record: bool = False,
    merge: bool = True,
) -> Finished:
    """Run a command in a process group of its own and wait for it, `timeout` at most.

    stdout and stderr are read together (merge) or apart.  Standard input is
    `input_data`, or nothing: a command never reads imagespec's terminal.
    """
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if input_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge else subprocess.PIPE,
            env={**os.environ, **env} if env else None,
            cwd=cwd,
            start_new_session=True,
        )
    except FileNotFoundError:
        return Finished(127, f"{argv[0]}: command not found\n".encode(), b"")
    GROUPS.add(proc.pid)
    try:
        return _wait(proc, input_data, timeout, record)
    except BaseException:
        stop_groups([proc.pid])  # interrupted: the command goes with us
        _close(proc)
        raise
    finally:
        GROUPS.remove(proc.pid)


def _wait(
    proc: subprocess.Popen[bytes],
    input_data: Optional[bytes],
    timeout: Optional[float],
    record: bool,
) -> Finished:
    """communicate() in slices: meanwhile record a long build, stop the group when the
    deadline passes, and stop leftovers that hold the output pipe after the command ended."""
    start = time.monotonic()
    ended_at: Optional[float] = None
    data, recorded, swept = input_data, False, False
    while True:
        elapsed = time.monotonic() - start
        if timeout is not None and elapsed >= timeout:
            note = f"\ntimed out after {timeout:g} s; stopped it and its process group"
            return _give_up(proc, note)
        step = POLL if timeout is None else min(POLL, timeout - elapsed)
        try:
            out, err = proc.communicate(data, timeout=step)
            break
        except subprocess.TimeoutExpired:
            data = None  # communicate() keeps the rest of the input
        if record and not recorded and elapsed >= RECORD_AFTER:
            recorded = True
            GROUPS.record(proc.pid)
        if proc.poll() is not None:
            ended_at = ended_at if ended_at is not None else time.monotonic()
            if time.monotonic() - ended_at >= POLL:  # leftovers hold the pipe: they go
                stop_groups([proc.pid])
                swept = True
    if group_alive(proc.pid):  # leftovers that let go of the pipe go as well
        stop_groups([proc.pid])
        swept = True
    note = "\n(imagespec stopped processes the command left running)" if swept else ""
    return Finished(proc.returncode, out or b"", err or b"", note)


def _give_up(proc: subprocess.Popen[bytes], note: str) -> Finished:
    """Stop the whole group, then take what output there is without waiting on a pipe
    that a process outside the group may still hold."""
    stop_groups([proc.pid])
    try:
        out, err = proc.communicate(timeout=KILL_GRACE)
    except subprocess.TimeoutExpired:
        out, err = b"", b""
        _close(proc)
    return Finished(124, out or b"", err or b"", note, timed_out=True)


def _close(proc: subprocess.Popen[bytes]) -> None:
    streams: list[Optional[IO[bytes]]] = [proc.stdin, proc.stdout, proc.stderr]
    for stream in streams:
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KILL_GRACE)
