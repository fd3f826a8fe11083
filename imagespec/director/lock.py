"""One apply per director at a time: a lock directory created atomically on the director.

`mkdir` is atomic locally and over ssh alike.  The lock names its holder
(user@host, pid), the commit and the start time.  A lock whose holder ran on
this machine and is no longer running is stale: it is broken with a note
(a killed apply must not block the next one).  Any other held lock fails at
once with the holder's details, or is waited for with --wait.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable, Optional

from ..errors import ImagespecError
from .state import now
from .transport import Transport, this_host


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


def _is_stale(info: Optional[dict[str, Any]]) -> bool:
    if not info or info.get("host") != this_host():
        return False
    pid = info.get("pid")
    return isinstance(pid, int) and not _alive(pid)


@contextmanager
def director_lock(
    transport: Transport,
    lock_rel: str,
    commit: Optional[str],
    wait: bool = False,
    timeout: float = 1800.0,
    note: Callable[[str], None] = print,
) -> Iterator[None]:
    """Hold the director's lock for the duration of the block."""
    info = {
        "holder": f"{getpass.getuser()}@{this_host()}",
        "host": this_host(),
        "pid": os.getpid(),
        "commit": commit,
        "started": now(),
    }
    deadline = time.monotonic() + timeout
    where = f"{transport.description}/{lock_rel}"
    while not transport.make_dir_exclusive(lock_rel):
        held = _read_info(transport, lock_rel)
        if _is_stale(held):
            note(f"breaking a stale lock at {where}: {_describe(held or {})}, no longer running")
            transport.remove_tree(lock_rel)
            continue
        message = f"director is locked: {_describe(held) if held else 'lock being taken'} ({where})"
        if not wait:
            raise LockHeld(
                f"{message}; retry later, use --wait, or if that apply is dead remove {where}"
            )
        if time.monotonic() > deadline:
            raise LockHeld(f"{message}; gave up after waiting {timeout:.0f} s")
        time.sleep(1.0)
    try:
        transport.write_atomic(f"{lock_rel}/info.json", json.dumps(info, indent=2).encode())
        yield
    finally:
        transport.remove_tree(lock_rel)
