"""One apply per director at a time: a lock directory created atomically on the director.

`mkdir` is atomic locally and over ssh alike.  The lock names its holder
(user@host, pid), the commit and the start time, the pid of the holder's
reaper and the process groups of its builds that are running (runner.py).

A lock whose holder ran on this machine is stale when the holder, its reaper
and every recorded build process group are gone: it is broken with a note (a
killed apply must not block the next), once; if it cannot be removed, apply
fails with what to do.  While the reaper of a killed holder is still
stopping its builds, apply waits for it (seconds).  A build group that
outlived its holder and its reaper blocks the lock, and is named, until it
ends or is stopped.  Any other held lock fails at once with the holder's
details, or is waited for with --wait.  A lock that is a symbolic link is
never followed: it is refused.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable, Optional

from ..errors import ImagespecError, visible
from ..reaper import KILL_GRACE, MARKER, group_alive
from ..runner import GROUPS
from ..state import now
from .base import Transport, this_host

REAPER_WAIT = 4 * KILL_GRACE  # seconds to wait for a killed holder's reaper


class LockHeld(ImagespecError):
    """Another apply holds the director."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_reaper(pid: Any) -> bool:
    """Whether `pid` is a running reaper (its command line says so: pids are reused)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return MARKER.encode() in handle.read().split(b"\0")
    except OSError:
        return False


def _describe(info: dict[str, Any]) -> str:
    return (
        f"held by {info.get('holder', '?')} (pid {info.get('pid', '?')}) "
        f"applying {str(info.get('commit') or '?')[:10]} since {info.get('started', '?')}"
    )


def _read_info(transport: Transport, lock_rel: str) -> Optional[dict[str, Any]]:
    data = transport.read(f"{lock_rel}/info.json")
    if data is None:
        return None
    try:
        info = json.loads(data)
        return info if isinstance(info, dict) else None
    except ValueError:
        return None


def _examine(info: Optional[dict[str, Any]]) -> tuple[str, list[int]]:
    """What holds the lock: "held" (a live or unknown holder), "reaping" (the holder died,
    its reaper is stopping its builds), "orphans" (the holder and reaper are gone, these
    build process groups are not) or "stale"."""
    if not info or info.get("host") != this_host():
        return "held", []
    pid = info.get("pid")
    if not isinstance(pid, int) or _alive(pid):
        return "held", []
    if _is_reaper(info.get("reaper")):
        return "reaping", []
    groups = [g for g in info.get("groups") or [] if isinstance(g, int) and g > 0]
    alive = [g for g in groups if group_alive(g)]
    return ("orphans", alive) if alive else ("stale", [])


def _held_message(kind: str, info: Optional[dict[str, Any]], groups: list[int], where: str) -> str:
    """Why the lock cannot be taken now, and what to do."""
    if kind == "orphans":
        names = ", ".join(str(g) for g in groups)
        kill = " ".join(f"-{g}" for g in groups)
        return (
            f"director is locked: the apply {_describe(info or {})} is gone, but its build"
            f" process group(s) {names} still run and may write into images; wait for them"
            f" to end (--wait) or stop them (kill -TERM -- {kill}), then apply again ({where})"
        )
    if kind == "reaping":
        return (
            f"director is locked: the apply {_describe(info or {})} is gone, but its reaper"
            f" (pid {(info or {}).get('reaper')}) is still stopping its builds; apply again"
            f" in a moment, or use --wait ({where})"
        )
    return f"director is locked: {_describe(info) if info else 'lock being taken'} ({where})"


def holder(transport: Transport, lock_rel: str) -> Optional[dict[str, Any]]:
    """Who holds the director's lock, for status (a read: nothing is broken or waited for);
    None when no apply holds it.  `state`: "held" (an apply is running, or one on another
    host that only its host can tell), "reaping", "orphans" (see _examine) or "stale" (the
    next apply breaks it)."""
    if not transport.exists(lock_rel):
        return None
    info = _read_info(transport, lock_rel)
    kind, groups = _examine(info)
    shown = {
        key: visible(str(value))[:100] if isinstance(value, (str, int)) else None
        for key, value in (info or {}).items()
        if key in ("holder", "host", "pid", "commit", "started")
    }
    return {
        "holder": shown.get("holder"),
        "host": shown.get("host"),
        "pid": shown.get("pid"),
        "commit": shown.get("commit"),
        "started": shown.get("started"),
        "state": kind,
        "groups": groups,
        "where": f"{transport.description}/{lock_rel}",
    }


def holder_text(info: dict[str, Any]) -> str:
    """status's line about the lock: who holds it, applying which commit, since when."""
    held = _describe(info) if info.get("holder") else "being taken (no holder recorded yet)"
    return {
        "held": f"an apply is running: {held}",
        "reaping": f"an apply was killed: {held}; its reaper is stopping its builds",
        "orphans": f"an apply was killed: {held}; its build process group(s)"
        f" {', '.join(map(str, info.get('groups') or []))} still run",
        "stale": f"stale lock: {held}, no longer running; the next apply breaks it",
    }.get(str(info.get("state")), f"locked: {held}")


def _break(transport: Transport, lock_rel: str, where: str) -> None:
    try:
        transport.remove_tree(lock_rel)
    except ImagespecError as exc:
        raise LockHeld(
            f"cannot break the stale lock at {where}: {exc}; remove it by hand once you"
            " are sure no apply is running"
        ) from None


def acquire(
    transport: Transport,
    lock_rel: str,
    wait: bool,
    timeout: float,
    note: Callable[[str], None],
) -> None:
    """Take the lock: break a stale one once, wait for a reaper, fail or wait otherwise."""
    deadline = time.monotonic() + timeout
    reaper_deadline = time.monotonic() + REAPER_WAIT
    where = f"{transport.description}/{lock_rel}"
    broken, told = False, False
    while not transport.make_dir_exclusive(lock_rel):
        held = _read_info(transport, lock_rel)
        kind, groups = _examine(held)
        if kind == "stale":
            if broken:
                raise LockHeld(
                    f"the stale lock at {where} came back after it was removed; remove it"
                    " by hand once you are sure no apply is running"
                )
            note(f"breaking a stale lock at {where}: {_describe(held or {})}, no longer running")
            _break(transport, lock_rel, where)
            broken = True
            continue
        if kind == "reaping" and time.monotonic() < reaper_deadline:
            if not told:
                note(f"waiting for the builds of a killed apply to stop ({where})")
                told = True
            time.sleep(0.2)
            continue
        message = _held_message(kind, held, groups, where)
        if not wait:
            if kind == "held":
                message += f"; retry later, use --wait, or if that apply is dead remove {where}"
            raise LockHeld(message)
        if time.monotonic() > deadline:
            raise LockHeld(f"{message}; gave up after waiting {timeout:.0f} s")
        time.sleep(1.0)


@contextmanager
def director_lock(
    transport: Transport,
    lock_rel: str,
    commit: Optional[str],
    wait: bool = False,
    timeout: float = 1800.0,
    note: Callable[[str], None] = print,
) -> Iterator[None]:
    """Hold the director's lock for the duration of the block.

    Builds started inside are watched by a reaper and recorded in the lock; on
    the way out (also when interrupted) every command still running is stopped,
    and the lock is kept, with a note, if any of them would not die.
    """
    acquire(transport, lock_rel, wait, timeout, note)
    info_rel = f"{lock_rel}/info.json"
    info: dict[str, Any] = {
        "holder": f"{getpass.getuser()}@{this_host()}",
        "host": this_host(),
        "pid": os.getpid(),
        "commit": commit,
        "started": now(),
        "reaper": None,
        "groups": [],
    }
    warned: list[str] = []

    def record(groups: list[int]) -> None:
        info["groups"] = groups
        try:
            transport.write_atomic(info_rel, json.dumps(info, indent=2).encode())
        except ImagespecError as exc:
            if not warned:
                warned.append(str(exc))
                note(f"warning: cannot record running builds in the lock: {exc}")

    try:
        try:
            info["reaper"] = transport.runner.start_reaper()
        except OSError as exc:
            note(f"warning: no reaper for this apply's builds ({exc.strerror})")
        transport.write_atomic(info_rel, json.dumps(info, indent=2).encode())
        GROUPS.recorder = record
        yield
    finally:
        GROUPS.recorder = None
        _release(transport, lock_rel, note, record)


def _release(
    transport: Transport,
    lock_rel: str,
    note: Callable[[str], None],
    record: Callable[[list[int]], None],
) -> None:
    """Stop what still runs, let the reaper go, remove the lock unless a build survived
    (then the lock names it)."""
    where = f"{transport.description}/{lock_rel}"
    survivors = GROUPS.stop_all()
    GROUPS.close_reaper()
    GROUPS.stopping.clear()
    if survivors:
        record(survivors)
        names = ", ".join(str(g) for g in survivors)
        note(
            f"warning: build process group(s) {names} would not stop; the lock at {where}"
            " stays until they are gone"
        )
        return
    try:
        transport.remove_tree(lock_rel)
    except ImagespecError as exc:
        note(f"warning: cannot remove the lock at {where}: {exc}")
