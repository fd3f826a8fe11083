"""Faults during apply: a killed or interrupted apply and its builds, a concurrent
apply, stale locks that cannot be broken."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import kill_processes_with, processes_with
from tests.integration.sites import Env, build_calls, run_main

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
    code, out, err = run_main(capsys, "apply", "--yes")
    assert code == 0, err
    assert "breaking a stale lock" in out
    state = env.state()
    assert {n: i["status"] for n, i in state["images"].items()} == {
        "img-compute": "ok",
        "img-lite": "ok",
        "img-login": "ok",
    }
    assert run_main(capsys, "status")[0] == 0


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
        code, _, err = run_main(capsys, "apply", "--yes")
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


# ------------------------------------------------------------------ stale locks


def apply_bounded(timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """apply in a child process that cannot outlive `timeout` (a hang fails the test)."""
    return subprocess.run(
        [sys.executable, "-m", "imagespec.cli", "apply", "--yes"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def dead_lock_info() -> str:
    """The info.json of a lock left by an apply of this machine that no longer runs."""
    info = {
        "holder": "root@here",
        "host": socket.gethostname(),
        "pid": 2**22 + 12345,  # no such process
        "commit": "abc",
        "started": "2026-01-01T00:00:00Z",
    }
    return json.dumps(info)


def test_a_lock_that_is_a_symlink_is_refused_once_never_followed(env: Env, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "info.json").write_text(dead_lock_info())
    (elsewhere / "keep").write_text("not imagespec's\n")
    lock = env.install / "p/.imagespec/lock"
    lock.parent.mkdir(parents=True)
    lock.symlink_to(elsewhere)
    done = apply_bounded()
    assert done.returncode == 1
    assert len(done.stdout) + len(done.stderr) < 2000, "one message, no loop"
    assert "breaking a stale lock" not in done.stdout
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
    assert f"{lock} is a symbolic link" in done.stderr and "never follows" in done.stderr
    assert (elsewhere / "keep").read_text() == "not imagespec's\n", "the target is untouched"
    assert lock.is_symlink()
    assert env.calls() == []


@pytest.fixture
def read_only_meta(env: Env) -> Iterator[Path]:
    """The director's .imagespec directory as a read-only bind mount (skipped where
    mounting is not allowed), holding a stale lock."""
    meta = env.install / "p/.imagespec"
    (meta / "lock").mkdir(parents=True)
    (meta / "lock/info.json").write_text(dead_lock_info())
    for argv in (
        ["mount", "--bind", str(meta), str(meta)],
        ["mount", "-o", "remount,ro,bind", str(meta)],
    ):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(meta)], check=False, capture_output=True)
            pytest.skip(f"cannot make a read-only mount here: {done.stderr.strip()}")
    try:
        yield meta
    finally:
        subprocess.run(["umount", "-l", str(meta)], check=False)


def test_a_stale_lock_that_cannot_be_removed_fails_once_with_what_to_do(
    env: Env, read_only_meta: Path
) -> None:
    done = apply_bounded()
    assert done.returncode == 1
    assert len(done.stdout) + len(done.stderr) < 2000, "one message, no loop"
    assert done.stdout.count("breaking a stale lock") == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
    assert "cannot break the stale lock" in done.stderr
    assert "Read-only file system" in done.stderr and "remove it by hand" in done.stderr
    assert (read_only_meta / "lock/info.json").exists()
    assert env.calls() == []


# ------------------------------------------------------------------ builds of a killed apply


def orphan_postinstall(env: Env, flag: Path, marker: Path) -> str:
    """A postinstall that runs while `flag` exists and then writes `marker`; returns
    the text that is in its command line."""
    script = (
        f'#!/bin/sh\ntouch "{flag}.started"\nwhile [ -f "{flag}" ]; do sleep 0.1; done\n'
        f'echo late > "{marker}"\necho late > "$1/etc/late"\n'
    )
    env.write("postinstall/10-a", script)
    env.commit("slow postinstall")
    return str(env.install / "p/custom/netboot/rocky/postinstall/10-a")


def lock_info(env: Env) -> dict[str, Any]:
    info: dict[str, Any] = json.loads((env.install / "p/.imagespec/lock/info.json").read_text())
    return info


def test_a_killed_apply_takes_its_builds_with_it(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flag, marker = tmp_path / "slow", tmp_path / "late"
    flag.touch()
    script = orphan_postinstall(env, flag, marker)
    proc = start_apply("--jobs", "1")
    try:
        wait_for(lambda: genimage_started(flag))
        assert processes_with(script)
        os.kill(proc.pid, signal.SIGKILL)  # apply alone: its builds run in groups of their own
        proc.wait(timeout=10)
        wait_for(lambda: not processes_with(script), timeout=20)
    finally:
        flag.unlink()
        kill_processes_with(script)
    assert not marker.exists(), "the build died with the apply"
    code, out, err = run_main(capsys, "apply", "--yes")
    assert code == 0, err
    assert "breaking a stale lock" in out
    assert {i["status"] for i in env.state()["images"].values()} == {"ok"}


def test_builds_outliving_a_killed_apply_block_its_lock_until_they_end(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flag, marker = tmp_path / "slow", tmp_path / "late"
    flag.touch()
    script = orphan_postinstall(env, flag, marker)
    proc = start_apply("--jobs", "1")
    try:
        wait_for(lambda: genimage_started(flag))
        wait_for(lambda: bool(lock_info(env).get("groups")))  # a build running for a while
        info = lock_info(env)
        (group,) = info["groups"]
        os.kill(info["reaper"], signal.SIGKILL)  # the OOM killer takes both
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert processes_with(script), "the build outlived them"
        code, out, err = run_main(capsys, "apply", "--yes")
        assert code == 1
        assert "breaking a stale lock" not in out
        assert f"build process group(s) {group} still run" in err
        assert f"kill -TERM -- -{group}" in err
        assert err.count("\n") == 1
        assert (env.install / "p/.imagespec/lock").is_dir()
        os.killpg(group, signal.SIGTERM)
        wait_for(lambda: not processes_with(script), timeout=20)
    finally:
        flag.unlink()
        kill_processes_with(script)
    assert not marker.exists()
    code, out, err = run_main(capsys, "apply", "--yes")
    assert code == 0, err
    assert "breaking a stale lock" in out
    assert {i["status"] for i in env.state()["images"].values()} == {"ok"}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_apply_stops_its_builds_and_releases_the_lock(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str], signum: int
) -> None:
    flag, marker = tmp_path / "slow", tmp_path / "late"
    flag.touch()
    script = orphan_postinstall(env, flag, marker)
    proc = subprocess.Popen(
        [sys.executable, "-m", "imagespec.cli", "apply", "--yes", "--jobs", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        # a test run started in the background (`cmd &` in a script) inherits SIGINT
        # ignored, and so would the apply: give it the disposition a terminal gives
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        wait_for(lambda: genimage_started(flag))
        os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 130, err.decode()
        assert "Traceback" not in err.decode()
        assert not processes_with(script), "its build was stopped"
    finally:
        flag.unlink()
        kill_processes_with(script)
        if proc.poll() is None:
            proc.kill()
    assert not marker.exists()
    assert not (env.install / "p/.imagespec/lock").exists(), "the lock was released"
    assert not any(i["status"] == "ok" for i in env.state()["images"].values())
    # the image being built is recorded as interrupted, not failed, and said so
    assert err.decode().splitlines() == [
        "error: interrupted: apply on director here stopped; img-compute recorded as"
        " interrupted (the next apply builds them again)"
    ]
    entry = env.state()["images"]["img-compute"]
    assert entry["interrupted"] is True and entry["failed_stage"] == "genimage"
    assert entry["error"] == "stopped by Ctrl-C or SIGTERM"
    code, out, _ = run_main(capsys, "status")
    assert code == 2
    assert "interrupted: img-compute in genimage: stopped by Ctrl-C or SIGTERM" in out
    code, out, _ = run_main(capsys, "plan", "--json")
    assert json.loads(out)["images"]["img-compute"]["reasons"][0] == (
        "interrupted last time (genimage)"
    )
    code, out, err = run_main(capsys, "apply", "--yes")
    assert code == 0, err
    assert "stale" not in out
    assert {i["status"] for i in env.state()["images"].values()} == {"ok"}
    assert not any("interrupted" in i for i in env.state()["images"].values())
