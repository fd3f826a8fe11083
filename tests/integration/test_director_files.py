"""`from: director` sync sources end to end: files on the director, never in git.

A real director tree in tmp_path with the xCAT stand-in (its packimage copies absolute
synclist sources into the root as `xdcp -i` does, DSHCLI.pm:4975-5085), the native
builder with real dnf builds, and a real sshd for the remote read of the hashes.  The
director files live in tmp_path beside the director tree, as /etc/hosts would.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from imagespec.ops.reconcile import salted
from tests.helpers import dump_yaml, write_tree
from tests.integration.sites import (
    APPLY_PROFILES,
    NATIVE_PROFILES,
    Clock,
    Env,
    NativeSite,
    SiteRepo,
    apply_site_files,
    build_calls,
    changing_calls,
    new_repo,
    run_main,
    work_in,
)
from tests.integration.test_native import cpio_members
from tests.sshd import SshServer

pytestmark = pytest.mark.slow

HOSTS = b"10.0.0.1 head\n10.0.0.2 cn001\n"
SECRET = b"munge-key-TOP-SECRET-7f3a9c\n"  # must never leave the director files and images


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """The director's own files, outside its install_root: etc/hosts and a 0400 secret."""
    top = tmp_path / "director-files"
    write_tree(top, {"etc/hosts": HOSTS, "root/secrets/munge.key": SECRET})
    os.chmod(top / "root/secrets/munge.key", 0o400)
    return top


def director_sync(files: Path) -> list[dict[str, Any]]:
    """The two entries, in the YAML form `imagespec import` writes too."""
    return [
        {"src": str(files / "etc/hosts"), "dest": "/etc/hosts", "from": "director"},
        {
            "src": str(files / "root/secrets/munge.key"),
            "dest": "/etc/munge/munge.key",
            "from": "director",
        },
    ]


def root_of(env: Env, profile: str) -> Path:
    return env.install / "netboot/rocky8/x86_64" / profile / "rootimg"


def with_login_director_files(env: Env, files: Path) -> None:
    """login (only) syncs the director files; compute and lite do not."""
    login = dict(APPLY_PROFILES["login"])
    login["sync"] = director_sync(files)
    env.write("profiles/login.yaml", dump_yaml(login))
    env.commit("login: /etc/hosts and the munge key from the director")


def recorded_hash(managed: Path, data: bytes) -> str:
    """What state.json records for a director file: its sha256 keyed with the director's
    salt (`.imagespec/salt` under the managed tree), never the bare sha256."""
    salt = (managed / ".imagespec/salt").read_bytes().strip()
    return salted(salt, hashlib.sha256(data).hexdigest())


def assert_secret_nowhere(top: Path, *outputs: str, images: tuple[Path, ...] = ()) -> None:
    """The secret's bytes appear in no file under `top` outside the image roots and
    archives, nor in any command output, and neither does its bare sha256 (which would
    let anyone who reads state.json, often served over http with /install, test guesses)."""
    content, digest = SECRET.strip(), hashlib.sha256(SECRET).hexdigest().encode()
    for path in top.rglob("*"):
        if any(path.is_relative_to(image) for image in images) or not path.is_file():
            continue
        if path.is_symlink() or path.name.startswith("rootimg"):
            continue
        data = path.read_bytes()
        assert content not in data, f"the secret leaked into {path}"
        assert digest not in data, f"its hash is in {path}"
    for text in outputs:
        assert content.decode() not in text and digest.decode() not in text


def apply_json(out: str) -> Any:
    """apply --json's report (after the progress lines)."""
    return json.loads(out[out.index("\n{") :])


# ---------------------------------------------------------------- xcat builder (stand-in)


def test_xcat_packimage_copies_director_files_and_a_change_owes_only_a_pack(
    env: Env, files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_login_director_files(env, files)
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 0, run.err
    root = root_of(env, "login")
    assert (root / "etc/hosts").read_bytes() == HOSTS
    assert (root / "etc/munge/munge.key").read_bytes() == SECRET
    assert (root / "etc/munge/munge.key").stat().st_mode & 0o777 == 0o400, "rsync -p keeps it"
    synclist = env.install / "p/custom/netboot/rocky/img-login.synclist"
    assert f"{files}/etc/hosts -> /etc/hosts\n" in synclist.read_text()
    assert not (env.install / "p/custom/synclists" / str(files).lstrip("/")).exists()
    recorded = env.state()["images"]["img-login"]["director_files"]
    assert recorded == {
        f"{files}/etc/hosts": recorded_hash(env.install / "p", HOSTS),
        f"{files}/root/secrets/munge.key": recorded_hash(env.install / "p", SECRET),
    }
    assert (env.install / "p/.imagespec/salt").stat().st_mode & 0o777 == 0o600
    assert "director_files" not in env.state()["images"]["img-compute"], "written only if any"

    before = len(changing_calls(env.calls()))
    assert run_main(capsys, "apply", "--yes").code == 0
    assert len(changing_calls(env.calls())) == before, "nothing changed, nothing done"

    (files / "etc/hosts").write_bytes(HOSTS + b"10.0.0.3 cn002\n")
    plan = run_main(capsys, "plan", "--json")
    assert plan.code == 0
    login = plan.json()["images"]["img-login"]
    assert login["actions"] == ["pack"]
    assert login["reasons"] == [f"director file {files}/etc/hosts changed"]
    assert plan.json()["images"]["img-compute"]["actions"] == []
    status = run_main(capsys, "status")
    assert status.code == 2
    assert f"img-login: director file {files}/etc/hosts changed" in status.out
    status_json = run_main(capsys, "--json", "status").json()
    assert status_json["images"]["img-login"]["owed"] == ["pack", "nodeset"]
    assert status_json["director_files"] == {
        "img-login": [f"director file {files}/etc/hosts changed"]
    }
    calls = len(env.calls())
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 0, run.err
    assert build_calls(env.calls()[calls:]) == [
        ["packimage", "-m", "cpio", "-c", "gzip", "img-login"]
    ]
    assert (root / "etc/hosts").read_bytes() == HOSTS + b"10.0.0.3 cn002\n"
    assert run_main(capsys, "status").code == 0
    assert_secret_nowhere(
        env.install,
        plan.out,
        status.out,
        run.out + run.err,
        images=(env.install / "netboot",),
    )


def test_xcat_a_missing_director_file_fails_that_image_and_the_others_go_on(
    env: Env, files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_login_director_files(env, files)
    assert run_main(capsys, "apply", "--yes").code == 0
    (files / "etc/hosts").unlink()
    compute = {**APPLY_PROFILES["compute"], "packages": ["slurm", "munge"]}
    env.write("profiles/compute.yaml", dump_yaml(compute))
    env.commit("compute: munge")
    plan = run_main(capsys, "plan", "--json").json()
    reasons = plan["images"]["img-login"]["reasons"]
    assert reasons == [
        f"director file {files}/etc/hosts is missing or unreadable on the director, so the"
        " image cannot be packed; create it there (or drop the sync entry), then apply again"
    ]
    calls = len(env.calls())
    run = run_main(capsys, "--json", "apply", "--yes")
    assert run.code == 3, run.out + run.err
    error = apply_json(run.out)["images"]["img-login"]["error"]
    assert error == f"pack: {reasons[0]}"
    built = build_calls(env.calls()[calls:])
    assert ["genimage", "img-compute"] in built, "the other images go on"
    assert not any(c[-1] == "img-login" for c in built), "login is refused before any stage"
    entry = env.state()["images"]["img-login"]
    assert entry["status"] == "failed" and entry["failed_stage"] == "pack"
    assert "director file" in entry["error"] and "hosts is missing" in entry["error"]
    assert (root_of(env, "login") / "etc/hosts").read_bytes() == HOSTS, "the old image stays"
    (files / "etc/hosts").write_bytes(HOSTS)
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 0, run.err
    assert env.state()["images"]["img-login"]["status"] == "ok"


def test_render_diff_and_logs_never_hold_the_secret(
    env: Env, files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = env.sha("HEAD")
    with_login_director_files(env, files)
    diff = run_main(capsys, "diff", base, "HEAD", "--format", "json")
    assert diff.code == 0, diff.err
    sync = diff.json()["images"]["img-login"]["changes"]["synclist"]
    assert sync["director"] == {
        "/etc/hosts": f"{files}/etc/hosts",
        "/etc/munge/munge.key": f"{files}/root/secrets/munge.key",
    }
    text = run_main(capsys, "diff", base, "HEAD")
    assert f"/etc/hosts (from director file {files}/etc/hosts)" in text.out
    markdown = run_main(capsys, "diff", base, "HEAD", "--format", "markdown")
    assert f"(from director file `{files}/root/secrets/munge.key`)" in markdown.out
    out = tmp_path / "rendered"
    rendered = run_main(capsys, "render", "--out", str(out))
    assert rendered.code == 0, rendered.err
    show = run_main(capsys, "--json", "show", "img-login")
    assert show.json()["synclist"][-1] == {
        "src": [f"{files}/root/secrets/munge.key"],
        "dest": "/etc/munge/munge.key",
        "mode": "copy",
        "nodes": None,
        "from": "director",
    }
    explain = run_main(capsys, "explain", "img-login", "/etc/hosts")
    assert f"from director file {files}/etc/hosts" in explain.out
    applied = run_main(capsys, "-v", "apply", "--yes")
    assert applied.code == 0, applied.err
    plan = run_main(capsys, "plan", "--json")
    assert_secret_nowhere(
        tmp_path,
        diff.out,
        text.out,
        markdown.out,
        show.out,
        applied.out + applied.err,
        plan.out,
        images=(env.install / "netboot", files),
    )


# ---------------------------------------------------------------- native builder (real dnf)


def test_native_packs_director_files_and_repacks_without_genimage_when_one_changes(
    native: NativeSite, files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    native.profile("base", {**NATIVE_PROFILES["base"], "sync": director_sync(files)})
    native.commit("base: director files")
    run = run_main(capsys, "apply", "--yes", "--only", "img-base")
    assert run.code == 0, run.err
    archive = native.rootimgdir("img-base") / "rootimg.cpio.gz"
    members = cpio_members(archive)
    assert members["./etc/hosts"] == HOSTS
    assert members["./etc/munge/munge.key"] == SECRET
    key = native.rootimgdir("img-base") / "rootimg/etc/munge/munge.key"
    assert key.stat().st_mode & 0o777 == 0o400, "cp -p keeps the secret's mode"
    assert native.current("img-base") == ".base.imagespec/1"

    assert run_main(capsys, "plan", "--only", "img-base", "--exit-code").code == 0

    (files / "etc/hosts").write_bytes(b"10.9.9.9 moved\n")
    plan = run_main(capsys, "plan", "--json", "--only", "img-base").json()
    assert plan["images"]["img-base"]["actions"] == ["pack"]
    assert plan["images"]["img-base"]["reasons"] == [f"director file {files}/etc/hosts changed"]
    run = run_main(capsys, "apply", "--yes", "--only", "img-base")
    assert run.code == 0, run.err
    log = native.log("img-base")
    assert "running genimage" not in log and "re-packing the root of generation 1" in log
    assert native.current("img-base") == ".base.imagespec/2", "a new generation, not the kept one"
    assert cpio_members(archive)["./etc/hosts"] == b"10.9.9.9 moved\n"

    (files / "etc/hosts").unlink()
    run = run_main(capsys, "--json", "apply", "--yes", "--only", "img-base")
    assert run.code == 3
    error = apply_json(run.out)["images"]["img-base"]["error"]
    assert error.startswith(f"pack: director file {files}/etc/hosts is missing")
    assert native.current("img-base") == ".base.imagespec/2", "the image nodes boot stays"
    assert_secret_nowhere(native.install / "p", run.out + run.err, json.dumps(plan), images=())


# ---------------------------------------------------------------- over ssh


def test_plan_over_ssh_reads_the_director_file_hash_remotely(
    tmp_path: Path,
    sshd: SshServer,
    xcat_state: Path,
    files: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in sshd.env().items():
        monkeypatch.setenv(key, value)
    install = tmp_path / "remote-install"
    director = {"host": sshd.alias, "install_root": str(install), "prefix": "p", "builder": "xcat"}
    site_files = apply_site_files(director)
    login = {**APPLY_PROFILES["login"], "sync": director_sync(files)}
    site_files["profiles/login.yaml"] = dump_yaml(login)
    site = write_tree(tmp_path / "site", site_files)
    work_in(SiteRepo(new_repo(site), site, site, Clock()), monkeypatch)
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 0, run.err
    state = json.loads((install / "p/.imagespec/state.json").read_text())
    hosts = f"{files}/etc/hosts"
    recorded = state["images"]["img-login"]["director_files"][hosts]
    assert recorded == recorded_hash(install / "p", HOSTS)
    assert run_main(capsys, "plan", "--exit-code").code == 0
    (files / "etc/hosts").write_bytes(b"changed\n")
    verbose = run_main(capsys, "-v", "plan", "--json")
    assert "sha256sum" in verbose.err, "the hash is read over ssh"
    plan = json.loads(verbose.out)
    assert plan["images"]["img-login"]["reasons"] == [f"director file {hosts} changed"]
    (files / "etc/hosts").unlink()
    plan = run_main(capsys, "plan", "--json").json()
    assert "is missing or unreadable on the director" in plan["images"]["img-login"]["reasons"][0]
