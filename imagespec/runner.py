"""Every external command imagespec runs goes through here.

One place for dry runs (Runner.skips: a change is printed, not made; a read
runs; imagespec's own records are skipped) and for tracing (-v: each command
and how long it took, on stderr).  How a command reaches a director (as it
is, or wrapped in ssh) is the transport's business (transport/).

One place, too, for stopping what imagespec started.  Every command runs in
a process group of its own (a new session), which is stopped as a whole when
its deadline passes, when imagespec is interrupted, and -- through the reaper
(reaper.py) -- when imagespec itself is killed.  A command's group never
outlives the command: processes it leaves behind in its group are stopped
when it ends, so nothing holds its output pipe open or goes on writing.
Every command has a deadline: IMAGESPEC_BUILD_TIMEOUT for builds,
IMAGESPEC_IO_TIMEOUT for the small reads and writes of a remote director and
IMAGESPEC_SYNC_TIMEOUT for rsync (transport/ssh.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
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

    @property
    def cause(self) -> str:
        """Why it failed, in the command's own last meaningful words (see `cause_of`)."""
        return cause_of(self.output, self.returncode)

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


# Lines that say why a command failed: dnf's "No match for argument" and
# "Unable to find a match", "Error:" lines, and the usual words of failing tools.
CAUSE_WORDS = (
    r"error|unable to|no match|cannot|can't|could not|not found|no such|denied|"
    r"failed|fatal|timed out|no space|problem"
)
# a line that starts with one (after a "tool:" or "[host]:" prefix) is surer than one that
# only has one somewhere, maybe in a path
CAUSE_START_RE = re.compile(rf"^(\S+:\s*)?({CAUSE_WORDS})", re.IGNORECASE)
CAUSE_RE = re.compile(CAUSE_WORDS, re.IGNORECASE)
CAUSE_WINDOW = 10  # the last lines of the output the cause is looked for in
CAUSE_LINES = 4  # lines of it kept at most
CAUSE_CHARS = 500
NON_PRINTING = re.compile(r"[\x00-\x1f\x7f]")


def cause_of(output: str, returncode: Optional[int] = None) -> str:
    """The cause of a failure in a command's output, for reports and state.json.

    A failing build prints its reason last (dnf ends with "Error: Unable to find
    a match: htop", a script with its last stderr lines), after pages of
    progress: among the last lines, from the first one that reads as an error
    to the end (a few lines at most), else the last few lines.
    """
    lines = [" ".join(NON_PRINTING.sub(" ", line).split()) for line in output.splitlines()]
    window = [line for line in lines if line][-CAUSE_WINDOW:]
    if not window:
        return f"exit code {returncode}, no output" if returncode is not None else "no output"
    first = next((i for i, line in enumerate(window) if CAUSE_START_RE.match(line)), None)
    if first is None:
        first = next((i for i, line in enumerate(window) if CAUSE_RE.search(line)), None)
    # from the first error on: the first one is the cause, later ones its consequences
    # (rsync's "could not make way ..." before its "rsync error: ... (code 23)");
    # without one, the last lines
    chosen = window[first:][:CAUSE_LINES] if first is not None else window[-CAUSE_LINES:]
    cause = "; ".join(dict.fromkeys(chosen))
    return cause if len(cause) <= CAUSE_CHARS else cause[: CAUSE_CHARS - 3] + "..."


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


def build_timeout() -> int:
    """Deadline of each build command (IMAGESPEC_BUILD_TIMEOUT, default 14400 = 4 h)."""
    return env_seconds("IMAGESPEC_BUILD_TIMEOUT", 14400)


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


class Effect(Enum):
    """What a command or a file operation does to a director: what a dry run does with it."""

    READ = "read"  # runs in a dry run too: a plan needs the director's real state
    CHANGE = "change"  # printed instead of done
    RECORD = "record"  # imagespec's own records (state, logs, lock, clean-up): skipped silently


@dataclass
class Runner:
    """Runs commands on this machine: the builds (`run`) and a transport's reads and
    writes (`io`).  The one place that decides what a dry run does (`skips`)."""

    dry_run: bool = False
    echo: Callable[[str], None] = print
    trace: Optional[Callable[[str], None]] = None  # -v: each command and how long it took

    def __post_init__(self) -> None:
        self._held = threading.local()  # this thread's dry-run lines, while `grouped`
        self._print_lock = threading.Lock()

    def skips(self, effect: Effect, *lines: str) -> bool:
        """Whether the caller must leave the work undone: in a dry run, a change (which is
        printed as `lines`) or a record (silently).  Reads always run."""
        if not self.dry_run or effect is Effect.READ:
            return False
        if effect is Effect.CHANGE:
            held: Optional[list[str]] = getattr(self._held, "lines", None)
            for line in lines:
                if held is not None:
                    held.append(line)
                else:
                    self.echo(line)
        return True

    @contextmanager
    def grouped(self, title: str) -> Iterator[None]:
        """In a dry run, the commands this thread would run inside the block are printed
        together at its end, under `title`: parallel images' commands never interleave."""
        if not self.dry_run:
            yield
            return
        self._held.lines = []
        try:
            yield
        finally:
            lines, self._held.lines = self._held.lines, None
            if lines:
                with self._print_lock:
                    self.echo(title)
                    for line in lines:
                        self.echo(f"  {line}")

    def run(
        self,
        argv: Sequence[str],
        *,
        input_data: Optional[bytes] = None,
        check: bool = True,
        effect: Effect = Effect.CHANGE,
    ) -> Result:
        """A build command: CommandError when it fails, unless not `check`.

        Each has a deadline (IMAGESPEC_BUILD_TIMEOUT), none starts once imagespec
        is stopping, and one that runs for more than a moment is recorded in the
        director's lock.
        """
        if self.skips(effect, shlex.join(argv)):
            return Result(list(argv), 0, "")
        if GROUPS.stopping.is_set():
            raise Interrupted(f"interrupted before {shlex.join(argv)} could start")
        with self._traced(argv):
            return run_local(
                argv, input_data=input_data, check=check, timeout=build_timeout(), record=True
            )

    def io(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        input_data: Optional[bytes] = None,
        effect: Effect = Effect.READ,
        merge: bool = True,
    ) -> Finished:
        """A transport's read or write (ssh, rsync): its exit code and output, never an
        exception for a failure; `timeout` seconds at most."""
        if self.skips(effect, shlex.join(argv)):
            return Finished(0, b"", b"")
        with self._traced(argv):
            return execute(argv, input_data=input_data, timeout=timeout, merge=merge)

    def start_reaper(self) -> Optional[int]:
        """The reaper of the builds started from now on (see ProcessGroups); a dry run
        starts no builds, so no reaper either."""
        if self.skips(Effect.RECORD):
            return None
        return GROUPS.start_reaper()

    def _traced(self, argv: Sequence[str]) -> contextlib.AbstractContextManager[None]:
        return traced(self.trace, argv)


@contextmanager
def traced(trace: Optional[Callable[[str], None]], argv: Sequence[str]) -> Iterator[None]:
    """-v: the command and how long it took, once it ended (also gitrepo's git commands)."""
    start = time.monotonic()
    try:
        yield
    finally:
        if trace is not None:
            trace(f"{time.monotonic() - start:7.2f} s  {shlex.join(argv)}")


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
