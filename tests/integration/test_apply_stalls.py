"""A remote director that stops answering: every remote call has a deadline, gives up
with a clear message, and leaves nothing running behind it (checked in /proc)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import kill_processes_with, processes_with
from tests.integration.test_apply_ssh import remote  # noqa: F401 - fixture
from tests.sshd import SshServer

pytestmark = pytest.mark.slow  # a real sshd per test, and waits for deadlines


def apply_bounded(env: dict[str, str], timeout: float = 40.0) -> subprocess.CompletedProcess[str]:
    """apply in a child process that cannot outlive `timeout` (a hang fails the test)."""
    return subprocess.run(
        [sys.executable, "-m", "imagespec.cli", "apply", "--yes"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        check=False,
    )


def fake_ssh(tmp_path: Path, body: str) -> str:
    """A directory holding an `ssh` script, for the front of PATH."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    script = bin_dir / "ssh"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def test_a_stopped_local_ssh_is_given_up_with_its_children(
    remote: Path,  # noqa: F811 - fixture
    tmp_path: Path,
) -> None:
    marker = "987651"
    path = fake_ssh(
        tmp_path,
        f"sleep {marker} &  # a child holding ssh's output, as a ProxyCommand would\nkill -STOP $$",
    )
    try:
        done = apply_bounded({"PATH": path, "IMAGESPEC_IO_TIMEOUT": "2"})
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert done.stderr.count("\n") == 1
        assert "director did not answer within 2 s (IMAGESPEC_IO_TIMEOUT)" in done.stderr
        assert not processes_with(marker), "the ssh call's children were stopped"
        assert not processes_with(str(tmp_path / "fake-bin")), "and so was ssh"
    finally:
        kill_processes_with(marker)
        kill_processes_with(str(tmp_path / "fake-bin"))
    assert not (remote / "p/.imagespec").exists(), "nothing was done"


def test_output_held_open_by_a_leftover_does_not_hold_up_apply(
    remote: Path,  # noqa: F811 - fixture
    tmp_path: Path,
) -> None:
    marker = "987652"
    flag = tmp_path / "first-call"
    flag.touch()
    path = fake_ssh(
        tmp_path,
        f'if [ -f "{flag}" ]; then rm -f "{flag}"; sleep {marker} & fi\nexec /usr/bin/ssh "$@"',
    )
    try:
        done = apply_bounded({"PATH": path})
        assert done.returncode == 0, done.stderr
        assert not processes_with(marker), "the leftover was stopped"
    finally:
        kill_processes_with(marker)
    assert not flag.exists()
    assert (remote / "p/.imagespec/state.json").is_file()
    assert not (remote / "p/.imagespec/lock").exists()


def test_a_stopped_remote_rsync_fails_within_the_deadline(
    remote: Path,  # noqa: F811 - fixture
    sshd: SshServer,
    stub_bin: Path,
) -> None:
    stopped = stub_bin / "rsync"  # first on the director's PATH
    stopped.write_text(
        '#!/bin/sh\n# the director\'s rsync starts and then stops\n/usr/bin/rsync "$@" &\n'
        "kill -STOP $!\nwait\n"
    )
    stopped.chmod(0o755)
    try:
        done = apply_bounded({"IMAGESPEC_IO_TIMEOUT": "2", "IMAGESPEC_SYNC_TIMEOUT": "6"})
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert "rsync to director:" in done.stderr
        assert "no file was half-written" in done.stderr
        assert not processes_with(str(sshd.config)), "no local ssh is left"
        assert not processes_with("imagespec-stage-"), "no local rsync is left"
    finally:
        kill_processes_with(str(remote))  # the director's stopped rsync
    assert not (remote / "p/.imagespec/lock").exists()
    assert not list(remote.rglob(".~tmp~"))


def test_a_stopped_ssh_under_rsync_is_given_up_with_its_children(
    remote: Path,  # noqa: F811 - fixture
    tmp_path: Path,
) -> None:
    marker = "987653"
    path = fake_ssh(
        tmp_path,
        'case "$*" in *"rsync --server"*)\n'
        f"  sleep {marker} &  # holds rsync's pipe\n"
        "  kill -STOP $$ ;;\n"
        "esac\n"
        'exec /usr/bin/ssh "$@"',
    )
    try:
        done = apply_bounded(
            {"PATH": path, "IMAGESPEC_IO_TIMEOUT": "2", "IMAGESPEC_SYNC_TIMEOUT": "6"}
        )
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert done.stderr.count("\n") == 1
        assert "rsync to director:" in done.stderr
        assert "no file was half-written" in done.stderr
        assert not processes_with(marker), "the ssh under rsync was stopped with its children"
        assert not processes_with("imagespec-stage-"), "no local rsync is left"
    finally:
        kill_processes_with(marker)
        kill_processes_with(str(tmp_path / "fake-bin"))
    assert not (remote / "p/.imagespec/lock").exists()
