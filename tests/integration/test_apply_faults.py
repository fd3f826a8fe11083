"""Faults during apply: a killed apply, a concurrent apply."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.applysite import Env, build_calls, run

SLOW_FLAG = "IMAGESPEC_TEST_SLOW"


def slow_postinstall(env: Env, flag: Path) -> None:
    """Make genimage of every image block while `flag` exists (the stub runs postinstall)."""
    script = (
        f'#!/bin/sh\ntouch "{flag}.started"\nwhile [ -f "{flag}" ]; do sleep 0.1; done\nexit 0\n'
    )
    env.write("postinstall/10-a", script)
    env.commit("slow postinstall")


def start_apply(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "imagespec.cli", "apply", "--yes", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_for(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def genimage_started(flag: Path) -> bool:
    """The stub records a call when it ends; the slow postinstall marks its start."""
    return flag.with_name(flag.name + ".started").exists()


def test_a_killed_apply_is_completed_by_the_next_one(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flag = tmp_path / "slow"
    flag.touch()
    slow_postinstall(env, flag)
    proc = start_apply("--jobs", "1")
    try:
        wait_for(lambda: genimage_started(flag))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        flag.unlink()
    lock = env.install / "p/.imagespec/lock"
    assert lock.is_dir(), "the killed apply left its lock"
    state = env.state()
    assert state["files"], "the file sync was recorded before the builds"
    assert not any(i["status"] == "ok" for i in state["images"].values())
    code, out, err = run(capsys, "apply", "--yes")
    assert code == 0, err
    assert "breaking a stale lock" in out
    state = env.state()
    assert {n: i["status"] for n, i in state["images"].items()} == {
        "img-compute": "ok",
        "img-lite": "ok",
        "img-login": "ok",
    }
    assert run(capsys, "status")[0] == 0


def test_a_concurrent_apply_fails_at_once_or_waits(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flag = tmp_path / "slow"
    flag.touch()
    slow_postinstall(env, flag)
    first = start_apply("--jobs", "1")
    try:
        wait_for(lambda: genimage_started(flag))
        started = time.monotonic()
        code, _, err = run(capsys, "apply", "--yes")
        assert code == 1
        assert "director is locked" in err and f"pid {first.pid}" in err
        assert time.monotonic() - started < 10, "fails at once"
        waiter = start_apply("--wait", "--wait-timeout", "60")
        time.sleep(1.0)
        assert waiter.poll() is None, "--wait waits for the lock"
    finally:
        flag.unlink()
    assert first.wait(timeout=60) == 0
    assert waiter.wait(timeout=60) == 0
    counts = [c for c in build_calls(env.calls()) if c[0] == "genimage"]
    assert len(counts) == 3, "the waiting apply found nothing left to build"
