"""The director lock's decisions on literal lock records, against an in-memory director.

Which processes are alive is given by the test (the lock's liveness probes
are replaced), so a stale, held, reaping or orphaned lock is a literal dict.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import pytest

from imagespec.errors import ImagespecError
from imagespec.transport import lock
from imagespec.transport.lock import LockHeld, acquire

HERE = "node-a"
LOCK = "p/.imagespec/lock"
WHERE = f"host:/install/{LOCK}"
RECORD: dict[str, Any] = {
    "holder": "alice@node-a",
    "host": HERE,
    "pid": 4242,
    "commit": "0123456789abcdef0123456789abcdef01234567",
    "started": "2026-01-31T12:00:00Z",
    "reaper": 4243,
    "groups": [5000, 5001],
}
HELD_BY = "held by alice@node-a (pid 4242) applying 0123456789 since 2026-01-31T12:00:00Z"
RETRY = f"; retry later, use --wait, or if that apply is dead remove {WHERE}"


class Director:
    """Just enough of a Transport for the lock: directories, files, and a log of removals."""

    description = "host:/install"

    def __init__(
        self,
        record: Optional[dict[str, Any]] = None,
        removable: bool = True,
        remove_error: str = "",
    ) -> None:
        self.dirs: set[str] = set()
        self.files: dict[str, bytes] = {}
        self.removed: list[str] = []
        self.removable = removable
        self.remove_error = remove_error
        if record is not None:
            self.dirs.add(LOCK)
            self.files[f"{LOCK}/info.json"] = json.dumps(record).encode()

    def make_dir_exclusive(self, rel: str) -> bool:
        if rel in self.dirs:
            return False
        self.dirs.add(rel)
        return True

    def read(self, rel: str) -> Optional[bytes]:
        return self.files.get(rel)

    def remove_tree(self, rel: str) -> None:
        if self.remove_error:
            raise ImagespecError(self.remove_error)
        self.removed.append(rel)
        if self.removable:
            self.dirs.discard(rel)
            self.files = {k: v for k, v in self.files.items() if not k.startswith(f"{rel}/")}


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """The pids and process groups alive on this host (node-a); the test fills it in."""
    alive: set[int] = set()
    monkeypatch.setattr(lock, "this_host", lambda: HERE)
    monkeypatch.setattr(lock, "_alive", lambda pid: pid in alive)
    monkeypatch.setattr(lock, "_is_reaper", lambda pid: pid in alive)
    monkeypatch.setattr(lock, "group_alive", lambda group: group in alive)
    return alive


def take(director: Director, wait: bool = False) -> list[str]:
    notes: list[str] = []
    acquire(director, LOCK, wait, 0.0, notes.append)  # type: ignore[arg-type]
    return notes


# ---------------------------------------------------------------- what holds the lock


def test_the_description_names_holder_pid_short_commit_and_start() -> None:
    assert lock._describe(RECORD) == HELD_BY


def test_a_description_of_an_empty_record_has_placeholders() -> None:
    assert lock._describe({}) == "held by ? (pid ?) applying ? since ?"
    assert lock._describe({"commit": None}) == "held by ? (pid ?) applying ? since ?"


@pytest.mark.parametrize(
    ("record", "alive", "verdict"),
    [
        (None, set(), ("held", [])),
        ({**RECORD, "host": "node-b"}, set(), ("held", [])),
        ({**RECORD, "pid": "4242"}, set(), ("held", [])),
        (RECORD, {4242}, ("held", [])),
        (RECORD, {4243, 5000}, ("reaping", [])),
        (RECORD, {5001}, ("orphans", [5001])),
        (RECORD, {5000, 5001}, ("orphans", [5000, 5001])),
        ({**RECORD, "groups": [0, -1, "5000", 5000]}, {5000}, ("orphans", [5000])),
        (RECORD, set(), ("stale", [])),
        ({**RECORD, "groups": None, "reaper": None}, set(), ("stale", [])),
    ],
    ids=[
        "unreadable",
        "other host",
        "pid not a number",
        "holder alive",
        "reaper alive",
        "one build group left",
        "two build groups left",
        "only real group numbers",
        "everything gone",
        "nothing recorded",
    ],
)
def test_examine_decides_from_the_record_and_what_is_alive(
    world: set[int],
    record: Optional[dict[str, Any]],
    alive: set[int],
    verdict: tuple[str, list[int]],
) -> None:
    world.update(alive)
    assert lock._examine(record) == verdict


# ---------------------------------------------------------------- messages


def test_held_message_for_each_kind() -> None:
    assert lock._held_message("held", RECORD, [], WHERE) == (
        f"director is locked: {HELD_BY} ({WHERE})"
    )
    assert lock._held_message("held", None, [], WHERE) == (
        f"director is locked: lock being taken ({WHERE})"
    )
    assert lock._held_message("reaping", RECORD, [], WHERE) == (
        f"director is locked: the apply {HELD_BY} is gone, but its reaper (pid 4243) is still"
        f" stopping its builds; apply again in a moment, or use --wait ({WHERE})"
    )
    assert lock._held_message("orphans", RECORD, [5000, 5001], WHERE) == (
        f"director is locked: the apply {HELD_BY} is gone, but its build process group(s)"
        " 5000, 5001 still run and may write into images; wait for them to end (--wait) or"
        f" stop them (kill -TERM -- -5000 -5001), then apply again ({WHERE})"
    )


# ---------------------------------------------------------------- acquire


def test_a_free_lock_is_taken_silently(world: set[int]) -> None:
    director = Director()
    assert take(director) == []
    assert LOCK in director.dirs


def test_a_stale_lock_is_broken_once_with_a_note(world: set[int]) -> None:
    director = Director(RECORD)
    assert take(director) == [f"breaking a stale lock at {WHERE}: {HELD_BY}, no longer running"]
    assert director.removed == [LOCK]
    assert LOCK in director.dirs


def test_a_stale_lock_that_comes_back_is_not_broken_twice(world: set[int]) -> None:
    director = Director(RECORD, removable=False)
    with pytest.raises(LockHeld) as exc:
        take(director)
    assert str(exc.value) == (
        f"the stale lock at {WHERE} came back after it was removed; remove it by hand once"
        " you are sure no apply is running"
    )
    assert director.removed == [LOCK]


def test_a_stale_lock_that_cannot_be_removed_says_what_to_do(world: set[int]) -> None:
    director = Director(RECORD, remove_error="permission denied")
    with pytest.raises(LockHeld) as exc:
        take(director)
    assert str(exc.value) == (
        f"cannot break the stale lock at {WHERE}: permission denied; remove it by hand once"
        " you are sure no apply is running"
    )


def test_a_live_holder_fails_at_once_without_wait(world: set[int]) -> None:
    world.add(4242)
    director = Director(RECORD)
    with pytest.raises(LockHeld) as exc:
        take(director)
    assert str(exc.value) == f"director is locked: {HELD_BY} ({WHERE}){RETRY}"
    assert director.removed == []


def test_a_lock_of_another_host_is_never_broken(world: set[int]) -> None:
    director = Director({**RECORD, "host": "node-b"})
    with pytest.raises(LockHeld) as exc:
        take(director)
    assert str(exc.value) == f"director is locked: {HELD_BY} ({WHERE}){RETRY}"
    assert director.removed == []


def test_a_lock_being_taken_has_no_record_yet(world: set[int]) -> None:
    director = Director(RECORD)
    del director.files[f"{LOCK}/info.json"]
    with pytest.raises(LockHeld) as exc:
        take(director)
    assert str(exc.value) == f"director is locked: lock being taken ({WHERE}){RETRY}"


def test_a_damaged_record_counts_as_held(world: set[int]) -> None:
    director = Director(RECORD)
    director.files[f"{LOCK}/info.json"] = b"[1, 2"
    with pytest.raises(LockHeld, match="lock being taken"):
        take(director)
    assert director.removed == []


def test_surviving_build_groups_block_the_lock_and_are_named(world: set[int]) -> None:
    world.add(5001)
    director = Director(RECORD)
    with pytest.raises(LockHeld) as exc:
        take(director)
    message = str(exc.value)
    assert message.startswith(f"director is locked: the apply {HELD_BY} is gone")
    assert "process group(s) 5001 still run" in message
    assert "(kill -TERM -- -5001)" in message
    assert not message.endswith(RETRY)
    assert director.removed == []


def test_waiting_gives_up_at_the_deadline_with_the_holder(world: set[int]) -> None:
    world.add(4242)
    director = Director(RECORD)
    with pytest.raises(LockHeld) as exc:
        take(director, wait=True)
    assert str(exc.value) == (f"director is locked: {HELD_BY} ({WHERE}); gave up after waiting 0 s")
