"""The test sshd (tests/sshd.py) is a real server that imagespec can reach.

imagespec runs `ssh -F $IMAGESPEC_SSH_CONFIG -- director <command>` and
`rsync -e "ssh -F $IMAGESPEC_SSH_CONFIG"`; these tests do exactly that.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Optional

import pytest

from tests.sshd import SshServer
from tests.xcatstub import read_calls, read_osimages

pytestmark = pytest.mark.slow  # a real sshd per test


def ssh(
    server: SshServer, command: str, input: Optional[str] = None
) -> subprocess.CompletedProcess[str]:
    config = server.env()["IMAGESPEC_SSH_CONFIG"]
    return subprocess.run(
        ["ssh", "-F", config, "--", server.alias, command],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_ssh_runs_a_remote_command(sshd: SshServer) -> None:
    proc = ssh(sshd, "echo ok")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "ok\n", "")
    assert sshd.alias == "director"
    assert sshd.config.is_file() and sshd.port > 0


def test_remote_path_starts_with_the_stub_bin_dir(sshd: SshServer, stub_bin: Path) -> None:
    proc = ssh(sshd, 'echo "$PATH"; which genimage')
    assert proc.returncode == 0, proc.stderr
    path, which = proc.stdout.splitlines()
    assert path.split(":")[0] == str(stub_bin.resolve())
    assert which == str(stub_bin.resolve() / "genimage")


def test_the_stub_works_over_ssh(sshd: SshServer, xcat_state: Path) -> None:
    stanza = "# <xCAT data object stanza file>\n\nimg:\n    objtype=osimage\n    profile=p\n"
    proc = ssh(sshd, "mkdef -z", input=stanza)
    assert proc.returncode == 0, proc.stderr
    assert read_osimages(xcat_state) == {"img": {"profile": "p"}}
    proc = ssh(sshd, "lsdef -t osimage -o img -z")
    assert proc.stdout == stanza
    proc = ssh(sshd, "lsdef -t osimage -o nope")
    assert proc.returncode == 1
    assert "Could not find an object named 'nope'" in proc.stderr
    assert [c["cmd"] for c in read_calls(xcat_state)] == ["mkdef", "lsdef", "lsdef"]


def test_rsync_over_ssh(sshd: SshServer, tmp_path: Path) -> None:
    if shutil.which("rsync") is None:
        pytest.fail("rsync is not installed: run scripts/setup", pytrace=False)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.sh").write_text("#!/bin/sh\n")
    (src / "sub" / "b.sh").chmod(0o755)
    dst = tmp_path / "dst"
    rsh = f"ssh -F {sshd.env()['IMAGESPEC_SSH_CONFIG']}"
    proc = subprocess.run(
        ["rsync", "-a", "-e", rsh, f"{src}/", f"{sshd.alias}:{dst}/"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert (dst / "a.txt").read_text() == "alpha\n"
    assert (dst / "sub" / "b.sh").stat().st_mode & 0o777 == 0o755


def test_a_stopped_server_refuses_quickly(sshd: SshServer) -> None:
    sshd.stop()
    start = time.monotonic()
    proc = ssh(sshd, "echo ok")
    assert proc.returncode == 255
    assert time.monotonic() - start < 5
    sshd.stop()  # idempotent


def test_kill_drops_open_connections_and_restart_serves_again(sshd: SshServer) -> None:
    session = subprocess.Popen(
        sshd.ssh_argv("echo started; sleep 30; echo finished"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert session.stdout is not None
        assert session.stdout.readline() == "started\n"
        start = time.monotonic()
        sshd.kill()
        out, _ = session.communicate(timeout=15)
        assert session.returncode == 255 and "finished" not in out
        assert time.monotonic() - start < 10
    finally:
        if session.poll() is None:
            session.kill()
            session.wait(timeout=10)
    assert not sshd.running
    sshd.restart()
    assert ssh(sshd, "echo again").stdout == "again\n"
