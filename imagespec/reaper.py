"""Stopping process groups, and the reaper: the watchdog that stops them when imagespec dies.

Every command imagespec runs gets a process group of its own (runner.py).
While apply holds a director's lock it also runs this module as a small
separate process and tells it, over a pipe, each group it starts (`+pgid`)
and each that ends (`-pgid`).  When the pipe closes while groups are still
listed, imagespec died without stopping them (kill -9, the OOM killer): the
reaper stops them, so no orphaned build goes on writing into an image after
the lock is gone.  It runs in a session of its own, so a signal sent to
imagespec's process group or terminal does not reach it, and it holds none of
imagespec's output pipes open.

This module is run as a script by a bare interpreter: it imports nothing from
imagespec.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterable

KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
MARKER = "imagespec.reaper"  # in the reaper's command line; the lock checks for it


def group_alive(pgid: int) -> bool:
    """Whether any process of the process group still runs."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _has_live_member(pgid)


def _has_live_member(pgid: int) -> bool:
    """Signal 0 reaches a group of zombies too (processes that ended but that no parent
    has collected yet, e.g. the orphans of a killed imagespec); they do nothing more."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()  # state ppid pgrp ...
        if len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _signal_groups(pgids: Iterable[int], signum: int) -> None:
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signum)


def _wait_gone(pgids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    alive = [p for p in pgids if group_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if group_alive(p)]
    return alive


def stop_groups(pgids: Iterable[int], grace: float = KILL_GRACE) -> list[int]:
    """SIGTERM every group (and SIGCONT, so that stopped processes see it), SIGKILL what
    is left after `grace` seconds; return the groups still alive after another `grace`
    (processes stuck in the kernel, e.g. on a dead NFS server)."""
    alive = [p for p in pgids if group_alive(p)]
    if not alive:
        return []
    _signal_groups(alive, signal.SIGTERM)
    _signal_groups(alive, signal.SIGCONT)
    alive = _wait_gone(alive, grace)
    _signal_groups(alive, signal.SIGKILL)
    return _wait_gone(alive, grace)


def main() -> None:
    """Read `+pgid` / `-pgid` lines until end of input, then stop the groups still listed."""
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin:
        sign, number = line[:1], line[1:].strip()
        if not number.isdigit():
            continue
        if sign == "+":
            groups.add(int(number))
        elif sign == "-":
            groups.discard(int(number))
    stop_groups(sorted(groups))


if __name__ == "__main__":
    main()
