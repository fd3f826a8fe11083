"""Changes that change nothing in an image never cost a build (issue #16, item 11).

The package order within one install transaction, a digest recorded by an
earlier imagespec for the same inputs, and rolling forward to a generation
still kept after a rollback: each is at most a sync or a switch, never a
genimage.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import dump_yaml, memory_site
from tests.integration.sites import (
    APPLY_PROFILES,
    NATIVE_PROFILES,
    Env,
    NativeSite,
    apply_site_files,
    build_calls,
    run_main,
)
from tests.xcatstub import add_nodes, read_calls

ROCKY = Path("netboot/rocky8/x86_64")


def profile_edit(env: Env, name: str, **changes: object) -> None:
    env.write(f"profiles/{name}.yaml", dump_yaml({**APPLY_PROFILES[name], **changes}))


def builds(env: Env) -> list[list[str]]:
    return build_calls(env.calls())


def legacy_build_digest(env: Env, image: str) -> str:
    """The build digest imagespec 0.1.0 recorded for the image as committed (the package
    order as written; tests/unit/test_digest.py pins that this is what it computed)."""
    director = {
        "install_root": str(env.install),
        "prefix": "p",
        "builder": "xcat",
        "build": {"jobs": 2},
    }
    rendered = memory_site(apply_site_files(director)).render("here").images[image]
    return rendered.legacy_digests["build"]


def test_reordering_packages_is_a_sync_and_never_a_build(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes").code == 0
    before = len(builds(env))
    profile_edit(env, "compute", packages=["zsh", "slurm"])
    env.commit("compute: zsh")
    assert run_main(capsys, "apply", "--yes").code == 0
    assert len(builds(env)) > before
    before = len(builds(env))
    profile_edit(env, "compute", packages=["slurm", "zsh"])
    env.commit("compute: same packages, another order")
    plan = run_main(capsys, "plan", "--json").json()
    assert plan["images"]["img-compute"]["actions"] == ["sync"]
    assert plan["images"]["img-compute"]["changes"]["pkglist"]["reordered"] is True
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 0, run.err
    assert builds(env)[before:] == []
    pkglist = env.install / "p/custom/netboot/rocky/img-compute.pkglist"
    assert pkglist.read_text().splitlines()[-2:] == ["slurm", "zsh"], "the new file is synced"
    assert run_main(capsys, "status").code == 0


def test_a_director_built_by_an_earlier_imagespec_is_not_rebuilt_after_the_upgrade(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    """img-login's pkglist (bash, chrony, vim-enhanced, gcc) is not in sorted order, so
    imagespec 0.1.0 recorded another build digest for it, in state.json and in the
    generation it built.  After the upgrade plan owes nothing, apply builds nothing and
    re-records the current digest."""
    assert run_main(capsys, "apply", "--yes").code == 0
    state_path = env.install / "p/.imagespec/state.json"
    state = json.loads(state_path.read_text())
    legacy = legacy_build_digest(env, "img-login")
    current = state["images"]["img-login"]["digests"]["build"]
    assert legacy != current
    state["images"]["img-login"]["digests"]["build"] = legacy
    state_path.write_text(json.dumps(state))
    generation = env.install / ROCKY / ".login.imagespec/1/generation.json"
    record = json.loads(generation.read_text())
    record["digests"]["build"] = legacy
    generation.write_text(json.dumps(record))
    before = len(builds(env))

    assert run_main(capsys, "plan", "--exit-code").code == 0
    assert run_main(capsys, "status").code == 0
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 0, run.err
    assert builds(env)[before:] == []
    assert env.state()["images"]["img-login"]["digests"]["build"] == current

    # the generation recorded with the old digest is still the one these inputs built:
    # a pack-only change re-packs its root instead of building one
    profile_edit(env, "login", exclude=["./tmp*"])
    env.commit("login: exclude /tmp")
    assert run_main(capsys, "apply", "--yes").code == 0
    assert [c[0] for c in builds(env)[before:]] == ["packimage"]


def test_rolling_forward_after_a_rollback_switches_back_without_a_build(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    add_nodes(
        env.stub_state,
        {"cn001": {"groups": "compute", "provmethod": "img-compute", "mac": "52:54:00:00:00:01"}},
    )
    assert run_main(capsys, "apply", "--yes").code == 0
    profile_edit(env, "compute", packages=["slurm", "kernel-5.14.0-2"])
    env.commit("compute: newer kernel")
    assert run_main(capsys, "apply", "--yes").code == 0
    root = env.install / ROCKY / "compute"
    assert os.readlink(root) == ".compute.imagespec/2"
    assert run_main(capsys, "rollback", "img-compute").code == 0
    assert os.readlink(root) == ".compute.imagespec/1"
    kernel = env.stub_state / "tftpboot/xcat/osimage/img-compute/kernel"
    assert kernel.read_bytes() == b"xcatstub kernel default\n"
    plan = run_main(capsys, "plan", "--json").json()
    assert plan["images"]["img-compute"]["actions"] == ["genimage", "pack"]
    before = len(builds(env))

    run = run_main(capsys, "apply", "--yes")
    assert run.code == 0, run.err
    assert builds(env)[before:] == [], "generation 2 is kept: no genimage, no packimage"
    assert os.readlink(root) == ".compute.imagespec/2"
    assert kernel.read_bytes() == b"xcatstub kernel 5.14.0-2\n", "nodeset after the switch"
    entry: dict[str, Any] = env.state()["images"]["img-compute"]
    assert entry["generation"] == 2 and entry["rolled_back_from"] is None
    assert entry["digests"]["build"] == plan_digest(env, capsys)
    assert run_main(capsys, "plan", "--exit-code").code == 0
    nodesets = [c for c in read_calls(env.stub_state) if c["cmd"] == "nodeset"]
    assert nodesets[-1]["args"] == ["cn001", "osimage=img-compute"]

    # --rebuild asks for a fresh root: the kept generation is not reused
    run = run_main(capsys, "apply", "--yes", "--rebuild", "img-compute")
    assert run.code == 0, run.err
    assert [c[0] for c in builds(env)[before:]] == ["genimage", "packimage"]
    assert os.readlink(root) == ".compute.imagespec/3"


def plan_digest(env: Env, capsys: pytest.CaptureFixture[str]) -> str:
    shown = run_main(capsys, "show", "img-compute", "--json").json()
    return str(shown["digests"]["build"])


def test_native_rolling_forward_after_a_rollback_switches_back_without_a_build(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes", "--only", "img-compute").code == 0
    native.profile("compute", {**NATIVE_PROFILES["compute"], "packages": ["tool-a"]})
    native.commit("compute: no tool-b")
    assert run_main(capsys, "apply", "--yes", "--only", "img-compute").code == 0
    assert "tool-b" not in native.installed("img-compute")
    assert run_main(capsys, "rollback", "img-compute").code == 0
    assert "tool-b" in native.installed("img-compute")

    run = run_main(capsys, "apply", "--yes", "--only", "img-compute")
    assert run.code == 0, run.err
    log = native.log("img-compute")
    assert "generation 2 is kept and was built from these inputs: no genimage" in log
    assert "--installroot=" not in log, "no dnf transaction ran"
    assert native.current("img-compute") == ".compute.imagespec/2"
    assert not native.generation_dir("img-compute", 3).exists()
    assert "tool-b" not in native.installed("img-compute")
    assert run_main(capsys, "plan", "--exit-code", "--only", "img-compute").code == 0
