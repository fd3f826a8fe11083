"""apply / plan / status against a remote director: the real OpenSSH client and rsync,
a real sshd on 127.0.0.1 (tests/sshd.py) and the xCAT stand-in on the remote PATH."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import git
import pytest

from tests.helpers import write_tree
from tests.integration.sites import (
    Clock,
    SiteRepo,
    apply_site_files,
    build_calls,
    changing_calls,
    foreign_lock,
    new_repo,
    run_main,
    work_in,
)
from tests.sshd import SshServer
from tests.xcatstub import add_nodes, read_calls, read_osimages

pytestmark = pytest.mark.slow  # a real sshd per test


@pytest.fixture
def remote(
    tmp_path: Path, sshd: SshServer, xcat_state: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A site whose only director is the loopback sshd; returns the director's install root."""
    for key, value in sshd.env().items():
        monkeypatch.setenv(key, value)
    install = tmp_path / "remote-install"
    director = {"host": sshd.alias, "install_root": str(install), "prefix": "p", "builder": "xcat"}
    site = write_tree(tmp_path / "site", apply_site_files(director))
    work_in(SiteRepo(new_repo(site), site, site, Clock()), monkeypatch)
    return install


def calls(state: Path) -> list[list[str]]:
    return [[c["cmd"], *c["args"]] for c in read_calls(state)]


def test_apply_over_ssh_syncs_with_rsync_builds_remotely_and_is_idempotent(
    remote: Path, xcat_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(capsys, "apply", "--yes")
    assert code == 0, err + out
    assert (remote / "p/custom/netboot/rocky/img-login.pkglist").is_file()
    assert os.stat(remote / "postscripts/p/50-site").st_mode & 0o777 == 0o755
    assert ["genimage", "img-login-imagespec-staging"] in calls(xcat_state)
    assert set(read_osimages(xcat_state)) == {"img-login", "img-compute", "img-lite"}
    state = json.loads((remote / "p/.imagespec/state.json").read_text())
    assert state["images"]["img-compute"]["status"] == "ok"
    assert not list(remote.rglob(".~tmp~")), "rsync leaves no temporary files"
    before = len(changing_calls(calls(xcat_state)))
    assert run_main(capsys, "apply", "--yes")[0] == 0
    assert len(changing_calls(calls(xcat_state))) == before
    assert run_main(capsys, "status")[0] == 0


def test_dry_run_over_ssh_prints_ssh_and_rsync_commands(
    remote: Path, xcat_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_main(capsys, "apply", "--dry-run")
    assert code == 0
    assert "rsync -rlpc --delay-updates" in out
    assert re.search(r"^rsync .* -- \S+/ director:\S+/$", out, re.M), "no host as an option"
    assert "ssh -F " in out and " -- director 'cat " in out and "| mkdef -z'" in out
    assert "-- director 'genimage img-login-imagespec-staging'" in out
    assert not remote.exists()
    assert changing_calls(calls(xcat_state)) == []


def test_a_dropped_connection_loses_nothing_and_the_next_apply_completes(
    remote: Path, xcat_state: Path, sshd: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    sshd.stop()
    code, _, err = run_main(capsys, "apply", "--yes")
    assert code == 1
    assert "Traceback" not in err
    assert "director" in err
    assert not (remote / "p/.imagespec/state.json").exists()
    sshd.start()
    code, _, err = run_main(capsys, "apply", "--yes")
    assert code == 0, err
    assert not (remote / "p/.imagespec/lock").exists()
    assert ["packimage", "-m", "cpio", "-c", "gzip", "img-login"] in build_calls(calls(xcat_state))


def test_a_lock_held_from_another_host_is_reported_not_broken(
    remote: Path, xcat_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = remote / "p/.imagespec/lock"
    foreign_lock(lock)
    code, _, err = run_main(capsys, "apply", "--yes")
    assert code == 1
    assert "director is locked: held by ci@runner-7 (pid 4242) applying 0123456789" in err
    assert f"remove director:{lock}" in err
    assert calls(xcat_state) == []
    assert lock.is_dir()


def test_drift_on_a_remote_director_is_saved_before_overwrite(
    remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    stanza = remote / "p/custom/netboot/rocky/img-compute.stanza"
    stanza.write_text("edited on the director\n")
    _code, out, _ = run_main(capsys, "plan", "--json")
    assert json.loads(out)["drift"] == ["p/custom/netboot/rocky/img-compute.stanza"]
    assert run_main(capsys, "apply", "--yes")[0] == 0
    saved = list(
        (remote / "p/.imagespec/drift").glob("*/p/custom/netboot/rocky/img-compute.stanza")
    )
    assert saved and saved[0].read_text() == "edited on the director\n"
    assert "objtype=osimage" in stanza.read_text()


def test_rollback_and_nodeset_on_a_remote_xcat_director(
    remote: Path, xcat_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The staging build, the switch, rollback and nodeset all run over ssh."""
    add_nodes(
        xcat_state,
        {"cn001": {"groups": "compute", "provmethod": "img-compute", "mac": "52:54:00:00:00:01"}},
    )
    assert run_main(capsys, "apply", "--yes").code == 0
    root = remote / "netboot/rocky8/x86_64/compute"
    assert os.readlink(root) == ".compute.imagespec/1"
    site = Path.cwd()
    write_tree(
        site,
        {"profiles/compute.yaml": "inherits: [base]\npackages: [slurm, kernel-5.14.0-9]\n"},
    )
    SiteRepo(git.Repo(site), site, site, Clock()).commit("newer kernel")
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 0, run.err
    assert os.readlink(root) == ".compute.imagespec/2"
    kernel = xcat_state / "tftpboot/xcat/osimage/img-compute/kernel"
    assert kernel.read_bytes() == b"xcatstub kernel 5.14.0-9\n"
    run = run_main(capsys, "rollback", "img-compute")
    assert run.code == 0, run.err
    assert os.readlink(root) == ".compute.imagespec/1"
    assert kernel.read_bytes() == b"xcatstub kernel default\n"
    assert "nodeset run for 1 node(s) booting img-compute" in run.out


def test_rollout_over_ssh_reboots_in_batches_and_records_each_node(
    remote: Path, xcat_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """rpower, nodestat, lsdef and the director's clock all go through ssh."""
    add_nodes(
        xcat_state,
        {
            f"cn00{i}": {
                "groups": "compute",
                "provmethod": "img-compute",
                "mac": f"52:54:00:00:00:0{i}",
                "mgt": "ipmi",
            }
            for i in (1, 2, 3)
        },
    )
    assert run_main(capsys, "apply", "--yes").code == 0
    start = len(read_calls(xcat_state))
    run = run_main(capsys, "rollout", "--canary", "1", "--batch", "2", "--wait-boot", "20")
    assert run.code == 0, run.out + run.err
    rpowers = [c[1] for c in calls(xcat_state)[start:] if c[0] == "rpower"]
    assert rpowers == ["cn001", "cn002,cn003"]
    state = json.loads((remote / "p/.imagespec/state.json").read_text())
    assert {n: b["running_generation"] for n, b in state["boots"].items()} == {
        "cn001": 1,
        "cn002": 1,
        "cn003": 1,
    }
    running = json.loads((xcat_state / "running.json").read_text())
    assert running["cn003"]["rootimgdir"] == os.path.realpath(
        remote / "netboot/rocky8/x86_64/.compute.imagespec/1"
    )
