"""logs, generations and diff --built against a real director tree (xCAT stand-in, real dnf)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from imagespec.ops import inspect
from tests.helpers import dump_yaml
from tests.integration.sites import (
    HPC,
    Env,
    NativeSite,
    assert_clean_failure,
    native_site_doc,
    run_main,
)
from tests.rpmrepo import Pkg, build_repo

LOGS = "p/.imagespec/logs"


def test_logs_prints_the_latest_build_log_and_lists_the_others(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes", "--only", "img-compute")[0] == 0
    env.write("profiles/compute.yaml", dump_yaml({"inherits": ["base"], "packages": ["munge"]}))
    env.commit("munge on compute")
    assert run_main(capsys, "apply", "--yes", "--only", "img-compute")[0] == 0
    files = sorted((env.install / LOGS / "img-compute").iterdir())
    # two applies in the same second share a name: there is one log or two
    code, out, err = run_main(capsys, "logs", "img-compute")
    assert code == 0, err
    assert out == files[-1].read_text(), "stdout is the log alone"
    assert "== genimage img-compute" in out
    assert f"build {len(files)} of {len(files)}" in err
    doc = run_main(capsys, "logs", "img-compute", "--list", "--json").json()
    assert [b["build"] for b in doc["builds"]] == list(range(1, len(files) + 1))
    assert doc["builds"][0]["path"].endswith(f"{LOGS}/img-compute/{files[0].name}")
    code, out, _ = run_main(capsys, "logs", "img-compute", "--build", "1", "--json")
    assert json.loads(out)["text"] == files[0].read_text()


def test_logs_errors_are_one_line(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_main(capsys, "logs", "img-compute")
    assert_clean_failure(run)
    assert "img-compute has no build log on director here" in run.err
    assert run_main(capsys, "apply", "--yes", "--only", "img-compute")[0] == 0
    run = run_main(capsys, "logs", "img-compute", "--build", "7")
    assert_clean_failure(run)
    assert "there is no build 7" in run.err
    assert_clean_failure(run_main(capsys, "logs", "img-nope"))


def test_the_log_is_on_the_director_while_the_build_runs(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    """A postinstall copies the image's log as it is mid-genimage: --follow has it to show."""
    seen = env.install.parent / "seen.log"
    script = f'#!/bin/sh\ncat "{env.install}/{LOGS}/img-compute/"*.log > "{seen}"\n'
    env.write("postinstall/10-a", script)
    env.commit("a postinstall that looks at the log")
    assert run_main(capsys, "apply", "--yes", "--only", "img-compute")[0] == 0
    during = seen.read_text()
    assert "== genimage img-compute" in during
    assert "== pack" not in during, "written stage by stage, not at the end"


def test_follow_prints_the_running_applys_log_until_the_lock_is_released(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = env.install / LOGS / "img-compute"
    logs.mkdir(parents=True)
    (logs / "2023-12-31T000000Z.log").write_text("an earlier apply's log\n")
    lock = env.install / "p/.imagespec/lock"
    lock.mkdir()
    (lock / "info.json").write_text(json.dumps({"started": "2024-01-01T00:00:00Z"}))
    running = logs / "2024-01-01T000005Z.log"
    steps = [
        lambda: running.write_text("== genimage img-compute\n"),
        lambda: running.write_text("== genimage img-compute\n\x1b[2Jdone\n== pack\n"),
        lambda: shutil.rmtree(lock),
    ]
    monkeypatch.setattr(inspect, "_sleep", lambda _seconds: steps.pop(0)())
    code, out, err = run_main(capsys, "logs", "img-compute", "--follow")
    assert code == 0, err
    assert out == "== genimage img-compute\n\\u001b[2Jdone\n== pack\n"
    assert "earlier" not in out and not steps
    assert "following img-compute's log" in err


def test_follow_without_a_running_apply_prints_the_latest_log(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes", "--only", "img-compute")[0] == 0
    code, out, err = run_main(capsys, "logs", "img-compute", "--follow")
    assert code == 0 and "no apply is running on director here" in err
    assert out == sorted((env.install / LOGS / "img-compute").iterdir())[-1].read_text()


def test_generations_on_an_xcat_director(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(capsys, "apply", "--yes", "--only", "img-compute")[0] == 0
    first = env.sha("HEAD")
    env.write("profiles/compute.yaml", dump_yaml({"inherits": ["base"], "packages": ["munge"]}))
    second = env.commit("munge on compute")
    assert run_main(capsys, "apply", "--yes", "--only", "img-compute")[0] == 0
    doc = run_main(capsys, "generations", "img-compute", "--json").json()
    assert doc["current"] == 2
    rows = doc["generations"]
    assert [(r["generation"], r["current"], r["commit"]) for r in rows] == [
        (2, True, second),
        (1, False, first),
    ]
    state = env.state()["images"]["img-compute"]
    assert rows[0]["digests"] == {k: state["digests"][k] for k in ("build", "pack")}
    assert rows[0]["manifest"] is False, "the stand-in's roots have no rpm database"
    code, out, _ = run_main(capsys, "generations", "img-compute")
    assert code == 0 and first[:10] in out and second[:10] in out
    run = run_main(capsys, "diff", "--built", "img-compute")
    assert_clean_failure(run)
    assert "generation 1" in run.err and "no packages.json" in run.err


@pytest.mark.slow
def test_diff_built_shows_what_a_rebuild_changed_without_a_git_change(
    native: NativeSite, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    other = tmp_path / "other"
    build_repo(other / "hpc", HPC)
    doc = native_site_doc(native.repos, native.install, {})
    doc["distros"]["rocky8"]["otherpkgdir"] = str(other)
    native.write("imagespec.yaml", dump_yaml(doc))
    native.commit("otherpkgs from a repository the test updates")
    assert run_main(capsys, "apply", "--yes", "--only", "img-compute")[0] == 0
    manifest = json.loads((native.generation_dir("img-compute", 1) / "packages.json").read_text())
    names = [p["name"] for p in manifest["packages"]]
    assert names == sorted(names) and "hpc-app" in names
    lib = next(p for p in manifest["packages"] if p["name"] == "hpc-lib")
    assert (lib["epoch"], lib["version"], lib["release"], lib["arch"]) == (0, "1.0", "1", "noarch")

    shutil.rmtree(other / "hpc")
    newer = [Pkg(p.name, p.files, p.requires, p.recommends, version="1.10") for p in HPC]
    build_repo(other / "hpc", [*newer, Pkg("hpc-extra", {"/opt/hpc/extra": "x\n"})])
    assert run_main(capsys, "apply", "--yes", "--rebuild", "img-compute")[0] == 0
    doc = run_main(capsys, "diff", "--built", "img-compute", "--json").json()
    assert (doc["from"]["generation"], doc["to"]["generation"]) == (1, 2)
    assert doc["from"]["read"] == doc["to"]["read"] == "manifest"
    assert [
        (c["name"], c["from"].split("-")[0], c["to"].split("-")[0]) for c in doc["upgraded"]
    ] == [
        ("hpc-app", "1.0", "1.10"),
        ("hpc-lib", "1.0", "1.10"),
    ], "1.10 is newer than 1.0 in rpm's order"
    assert doc["added"] == [] and doc["removed"] == [] and doc["downgraded"] == []
    assert run_main(capsys, "diff", "--built", "img-compute", "--exit-code")[0] == 2

    # generation 1 without its manifest: read from its root's rpm database instead
    (native.generation_dir("img-compute", 1) / "packages.json").unlink()
    doc = run_main(capsys, "diff", "--built", "img-compute", "2", "1", "--json").json()
    assert doc["to"]["read"] == "rpm database"
    assert [c["name"] for c in doc["downgraded"]] == ["hpc-app", "hpc-lib"]
    code, out, _ = run_main(capsys, "diff", "--built", "img-compute", "1", "1")
    assert code == 0 and "same packages" in out
    run = run_main(capsys, "diff", "--built", "img-compute", "9")
    assert_clean_failure(run)
    assert "no generation 9; kept generations: 1, 2" in run.err
    doc = run_main(capsys, "generations", "img-compute", "--json").json()
    assert [(r["generation"], r["manifest"]) for r in doc["generations"]] == [(2, True), (1, False)]
