"""plan / apply / status against a local director with the xCAT stand-in on PATH.

Real git repositories, a real director tree in tmp_path, and the stub's call
log to assert the exact xCAT command sequence.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.helpers import dump_yaml
from tests.integration.sites import (
    APPLY_PROFILES,
    STAGING,
    Env,
    apply_site_doc,
    build_calls,
    changing_calls,
    run_main,
)
from tests.xcatstub import clear_failures, inject_failure, read_osimages


def test_first_apply_defines_and_builds_every_image_then_a_second_apply_does_nothing(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(capsys, "apply", "--yes")
    assert code == 0, err
    calls = build_calls(env.calls())
    for image in ("img-login", "img-compute"):
        assert ["genimage", image] in calls
        assert ["packimage", "-m", "cpio", "-c", "gzip", image] in calls
    assert ["liteimg", "img-lite"] in calls
    assert not any("img-old" in c for c in calls), "frozen images are never touched"
    code, out, _ = run_main(capsys, "plan", "--json")
    assert json.loads(out)["images"]["img-old"]["reasons"] == ["frozen: never touched by imagespec"]
    code, out, _ = run_main(capsys, "status")
    assert any(line.split()[:2] == ["img-old", "frozen"] for line in out.splitlines())
    assert env.calls().count(["mkdef", "-z"]) == 3, "each image defined once, never with -f"
    assert set(read_osimages(env.stub_state)) == {"img-login", "img-compute", "img-lite"}
    assert (env.install / "p/custom/netboot/rocky/img-login.pkglist").read_text().count("gcc") == 1
    assert (env.install / "postscripts/p/50-site").stat().st_mode & 0o777 == 0o755
    state = env.state()
    assert state["images"]["img-login"]["status"] == "ok"
    assert state["images"]["img-login"]["generation"] == 1
    assert state["commit"] == env.repo.head.commit.hexsha
    before = len(changing_calls(env.calls()))
    code, out, _ = run_main(capsys, "apply", "--yes")
    assert code == 0
    assert len(changing_calls(env.calls())) == before, "a second apply changes nothing in xCAT"
    assert "0 done, 0 failed" in out
    code, _, _ = run_main(capsys, "status")
    assert code == 0


def test_a_profile_change_rebuilds_only_the_images_it_reaches(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    env.write(
        "profiles/aux.yaml", dump_yaml({"inherits": ["base"], "packages": ["vim-enhanced", "htop"]})
    )
    env.commit("htop for admins")
    code, out, _ = run_main(capsys, "plan", "--json", "--exit-code")
    assert code == 2
    plan = json.loads(out)
    assert plan["director"] == "here"
    assert plan["images"]["img-login"]["actions"] == ["sync", "genimage", "pack"]
    assert "pkglist changed via aux" in plan["images"]["img-login"]["reasons"]
    assert plan["images"]["img-compute"]["actions"] == []
    start = len(env.calls())
    assert run_main(capsys, "apply", "--yes")[0] == 0
    new = build_calls(env.calls()[start:])
    assert new == [
        ["genimage", "img-login"],
        ["packimage", "-m", "cpio", "-c", "gzip", "img-login"],
    ]
    assert env.state()["images"]["img-login"]["generation"] == 2


def test_a_postscript_change_only_syncs_the_file(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    env.write("postscripts/50-site", "#!/bin/sh\necho new\n")
    env.commit()
    start = len(env.calls())
    assert run_main(capsys, "apply", "--yes")[0] == 0
    assert build_calls(env.calls()[start:]) == []
    assert (env.install / "postscripts/p/50-site").read_text() == "#!/bin/sh\necho new\n"


def test_apply_never_uses_uncommitted_changes(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.write(
        "profiles/compute.yaml", dump_yaml({"inherits": ["base"], "packages": ["uncommitted"]})
    )
    assert run_main(capsys, "apply", "--yes")[0] == 0
    assert (
        "uncommitted"
        not in (env.install / "p/custom/netboot/rocky/img-compute.pkglist").read_text()
    )


def test_a_failed_build_is_recorded_others_go_on_and_the_next_apply_retries_it(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    inject_failure(env.stub_state, "genimage", f"img-compute{STAGING}")
    code, out, _ = run_main(capsys, "apply", "--yes")
    assert code == 3
    state = env.state()
    assert state["images"]["img-compute"]["status"] == "failed"
    assert state["images"]["img-compute"]["failed_stage"] == "genimage"
    assert state["images"]["img-login"]["status"] == "ok"
    # the cause is xCAT's own message, not the command line
    assert state["images"]["img-compute"]["error"] == "Error: injected failure"
    assert "img-compute: failed in genimage: Error: injected failure\n" in out
    logs = list((env.install / "p/.imagespec/logs/img-compute").glob("*.log"))
    assert logs and "injected failure" in logs[0].read_text()
    assert f"  log: local directory {logs[0]}\n" in out
    clear_failures(env.stub_state)
    code, out, _ = run_main(capsys, "plan", "--json")
    reasons = json.loads(out)["images"]["img-compute"]["reasons"]
    assert any(r.startswith("failed last time (genimage)") for r in reasons)
    start = len(env.calls())
    assert run_main(capsys, "apply", "--yes")[0] == 0
    assert build_calls(env.calls()[start:]) == [
        ["genimage", "img-compute"],
        ["packimage", "-m", "cpio", "-c", "gzip", "img-compute"],
    ]


def test_a_failed_pack_does_not_repeat_genimage(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    inject_failure(env.stub_state, "packimage", f"img-login{STAGING}", once=True)
    assert run_main(capsys, "apply", "--yes")[0] == 3
    start = len(env.calls())
    assert run_main(capsys, "apply", "--yes")[0] == 0
    assert build_calls(env.calls()[start:]) == [
        ["packimage", "-m", "cpio", "-c", "gzip", "img-login"]
    ]


def test_drift_is_reported_saved_and_overwritten(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    pkglist = env.install / "p/custom/netboot/rocky/img-login.pkglist"
    pkglist.write_text("hand edited\n")
    code, out, _ = run_main(capsys, "status", "--json")
    assert code == 2
    assert json.loads(out)["drift"] == ["p/custom/netboot/rocky/img-login.pkglist"]
    code, out, _ = run_main(capsys, "plan", "--json")
    assert "drift in img-login.pkglist" in json.loads(out)["images"]["img-login"]["reasons"]
    assert run_main(capsys, "apply", "--yes")[0] == 0
    saved = list(
        (env.install / "p/.imagespec/drift").glob("*/p/custom/netboot/rocky/img-login.pkglist")
    )
    assert len(saved) == 1 and saved[0].read_text() == "hand edited\n"
    assert "gcc" in pkglist.read_text()
    assert run_main(capsys, "status")[0] == 0


def test_files_imagespec_did_not_write_are_never_deleted(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    foreign = env.install / "p/custom/netboot/rocky/handmade.pkglist"
    foreign.write_text("mine\n")
    exlist = env.install / "p/custom/netboot/rocky/img-login.exlist"
    assert exlist.exists()
    env.write("profiles/base.yaml", dump_yaml({**APPLY_PROFILES["base"], "exclude": []}))
    env.commit("no excludes")
    assert run_main(capsys, "apply", "--yes")[0] == 0
    assert not exlist.exists(), "a managed file no longer rendered is removed"
    assert foreign.read_text() == "mine\n"


def test_a_changed_managed_file_that_is_no_longer_rendered_is_kept(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    exlist = env.install / "p/custom/netboot/rocky/img-login.exlist"
    exlist.write_text("./changed-by-hand*\n")
    env.write("profiles/base.yaml", dump_yaml({**APPLY_PROFILES["base"], "exclude": []}))
    env.commit("no excludes")
    _, out, _ = run_main(capsys, "plan", "--json")
    assert "p/custom/netboot/rocky/img-login.exlist" in json.loads(out)["files"]["kept"]
    assert run_main(capsys, "apply", "--yes")[0] == 0
    assert exlist.read_text() == "./changed-by-hand*\n"


def test_dry_run_prints_commands_and_changes_nothing(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_main(capsys, "apply", "--dry-run")
    assert code == 0
    assert f"genimage img-login{STAGING}" in out
    assert "img-login.stanza | mkdef -z" in out
    assert f"packimage -m cpio -c gzip img-login{STAGING}" in out
    assert not env.install.exists()
    assert changing_calls(env.calls()) == [], "a dry run only reads xCAT's database"
    # it says what it would do, never "done" or "written"
    assert " done" not in out and "file(s) written" not in out
    assert "dry run, nothing was changed: would apply 3 image(s) (3 with a build)" in out
    assert re.search(r"would write \d+ file\(s\), delete 0\n", out)
    # each image's commands form one block under its name, even with parallel jobs
    lines = out.splitlines()
    for image in ("img-login", "img-compute", "img-lite"):
        start = lines.index(f"# {image}: would run")
        block = []
        for line in lines[start + 1 :]:
            if not line.startswith("  "):
                break
            block.append(line)
        assert any(f"genimage {image}{STAGING}" in line for line in block), (image, out)
        others = {"img-login", "img-compute", "img-lite"} - {image}
        assert not any(f"{o}{STAGING}" in line for o in others for line in block), out


def test_verbose_logs_each_command_and_its_duration_on_stderr(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(capsys, "-v", "apply", "--yes")
    assert code == 0
    traced = [line for line in err.splitlines() if line.startswith("imagespec:")]
    assert any(re.search(rf" s  genimage img-login{STAGING}$", line) for line in traced), err
    assert all(re.match(r"imagespec: +\d+\.\d\d s  \S", line) for line in traced), err
    assert "genimage img-login" not in out
    _, _, quiet = run_main(capsys, "apply", "--yes", "--rebuild", "img-login")
    assert "imagespec:" not in quiet


def test_a_held_lock_fails_at_once_and_a_dead_holder_is_broken(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    lock = env.install / "p/.imagespec/lock"
    lock.mkdir(parents=True)
    info = {
        "holder": "someone@here",
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "commit": "abc",
        "started": "2026-01-01T00:00:00Z",
    }
    (lock / "info.json").write_text(json.dumps(info))
    code, _, err = run_main(capsys, "apply", "--yes")
    assert code == 1
    assert "director is locked" in err and "someone@here" in err and f"pid {os.getpid()}" in err
    assert env.calls() == []
    info["pid"] = 2**22 + 12345  # no such process
    (lock / "info.json").write_text(json.dumps(info))
    code, out, err = run_main(capsys, "apply", "--yes")
    assert code == 0, err
    assert "breaking a stale lock" in out
    assert not lock.exists()


def test_orphans_are_reported_and_pruned_only_on_request(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    doc = apply_site_doc({"install_root": str(env.install), "prefix": "p", "builder": "xcat"})
    del doc["images"]["img-compute"]
    env.write("imagespec.yaml", dump_yaml(doc))
    env.commit("drop compute")
    code, out, _ = run_main(capsys, "status", "--json")
    assert code == 2 and json.loads(out)["orphans"] == ["img-compute"]
    assert run_main(capsys, "apply", "--yes")[0] == 0
    assert "img-compute" in read_osimages(env.stub_state)
    assert run_main(capsys, "apply", "--yes", "--prune-images")[0] == 0
    assert "img-compute" not in read_osimages(env.stub_state)
    assert ["rmdef", "-t", "osimage", "-o", "img-compute"] in env.calls()


def test_a_branch_no_director_follows_is_a_clean_no_op(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_main(capsys, "apply", "--branch", "feature", "--yes")
    assert code == 0
    assert "no director follows branch 'feature'" in out
    assert env.calls() == []


def test_apply_needs_yes_when_not_on_a_terminal(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = run_main(capsys, "apply")
    assert code == 1
    assert "--yes" in err


def test_only_and_rebuild(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    start = len(env.calls())
    code, _, err = run_main(capsys, "apply", "--yes", "--rebuild", "img-compute")
    assert code == 0, err
    assert build_calls(env.calls()[start:]) == [
        ["genimage", "img-compute"],
        ["packimage", "-m", "cpio", "-c", "gzip", "img-compute"],
    ]
    code, _, err = run_main(capsys, "apply", "--yes", "--only", "img-nope")
    assert code == 1 and "unknown image 'img-nope'" in err


def test_rollback_needs_an_older_generation(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    code, _, err = run_main(capsys, "rollback", "img-login")
    assert code == 1
    assert "image img-login has no generation before 1 to go back to" in err


def test_an_image_limited_to_another_director_is_orphaned_here(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    doc = apply_site_doc({"install_root": str(env.install), "prefix": "p", "builder": "xcat"})
    doc["directors"]["other"] = {"install_root": str(env.install), "prefix": "o", "builder": "none"}
    doc["images"]["img-compute"]["directors"] = ["other"]
    doc["images"]["img-compute"]["attributes"] = {"rootimgdir": f"{env.install}/netboot/other"}
    env.write("imagespec.yaml", dump_yaml(doc))
    env.commit("compute only on the other director")
    plan = run_main(capsys, "plan", "-d", "here", "--json").json()
    assert plan["orphans"] == ["img-compute"]
    assert plan["images"]["img-compute"]["status"] == "removed"
    run = run_main(capsys, "show", "img-compute", "-d", "here")
    assert run.code == 1
    assert "image 'img-compute' is not built on director 'here' (its directors: other)" in run.err
    assert run_main(capsys, "show", "img-compute", "-d", "other").code == 0
