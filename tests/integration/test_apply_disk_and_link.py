"""Faults in the middle of a sync: a full disk on the director, and an ssh
connection that breaks while rsync is transferring.  Nothing may be lost or
left half-written, the message must say what happened, and the next apply
must complete."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.sites import Env, run_main
from tests.integration.test_apply_ssh import remote  # noqa: F401 - fixture
from tests.sshd import SshServer

BIG = "x" * (3 * 1024 * 1024)  # more than the tmpfs holds


@pytest.fixture
def small_disk(env: Env) -> Iterator[Path]:
    """The director's install root on a 1 MiB tmpfs (skipped where mounting is not allowed)."""
    env.install.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(env.install)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield env.install
    finally:
        subprocess.run(["umount", "-l", str(env.install)], check=False)


def snapshot(top: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(top)): p.read_bytes()
        for p in sorted(top.rglob("*"))
        if p.is_file() and "/logs/" not in str(p) and p.name != "lock"
    }


def test_a_full_disk_fails_cleanly_and_loses_nothing(
    env: Env, small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    before = snapshot(small_disk)
    env.write("synclists/etc/motd", BIG)
    env.write("profiles/aux.yaml", "inherits: [base]\npackages: [vim-enhanced, htop]\n")
    env.commit("a motd too big for the director")
    code, out, err = run_main(capsys, "apply", "--yes")
    assert code == 1
    assert "Traceback" not in err
    assert "No space left on device" in err
    assert snapshot(small_disk) == before, "no file changed, nothing half-written"
    assert not list(small_disk.rglob(".*.imagespec-*")), "no temporary files left"
    assert not (small_disk / "p/.imagespec/lock").exists()
    env.write("synclists/etc/motd", "short again\n")
    env.commit("fixed")
    code, out, err = run_main(capsys, "apply", "--yes")
    assert code == 0, out + err
    assert (small_disk / "p/custom/synclists/etc/motd").read_text() == "short again\n"
    assert "htop" in (small_disk / "p/custom/netboot/rocky/img-login.pkglist").read_text()


@pytest.mark.slow
def test_an_ssh_link_cut_mid_rsync_leaves_no_partial_files(
    remote: Path,  # noqa: F811 - fixture
    sshd: SshServer,
    stub_bin: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IMAGESPEC_IO_TIMEOUT", "3")
    cut = stub_bin / "rsync"
    cut.write_text(
        "#!/bin/sh\n# the link breaks after 64 KiB of the rsync stream\n"
        'head -c 65536 | /usr/bin/rsync "$@"\n'
    )
    cut.chmod(0o755)
    site = Path.cwd()
    (site / "synclists/etc/motd").write_text(os.urandom(512 * 1024).hex())
    subprocess.run(["git", "commit", "-qam", "a big motd"], cwd=site, check=True)
    code, _, err = run_main(capsys, "apply", "--yes")
    assert code == 1
    assert "Traceback" not in err
    assert "rsync to director:" in err and "no file was half-written" in err
    assert not (remote / "p/custom/synclists/etc/motd").exists(), "no partial file"
    assert not list(remote.rglob(".~tmp~")), "rsync's delay-updates directory is gone"
    assert not (remote / "p/.imagespec/state.json").exists() or not json.loads(
        (remote / "p/.imagespec/state.json").read_text()
    ).get("commit")
    assert not (remote / "p/.imagespec/lock").exists()
    cut.unlink()
    code, _, err = run_main(capsys, "apply", "--yes")
    assert code == 0, err
    assert len((remote / "p/custom/synclists/etc/motd").read_text()) == 1024 * 1024
