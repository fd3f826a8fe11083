"""`imagespec rollout` against the xCAT stand-in: canary and batches, failures, resume.

The stand-in's nodes boot what nodeset set up for them (running.json records
the kernel command line and the real directory of the root image they booted),
report `booted` with a statustime after a delay, and fail as told per node:
rpower errors, boots that never finish, nodes that are down.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest

from tests.helpers import dump_yaml
from tests.integration.sites import (
    Clock,
    Env,
    SiteRepo,
    apply_site_doc,
    foreign_lock,
    new_repo,
    run_main,
    work_in,
)
from tests.xcatstub import (
    add_nodes,
    clear_node_boot,
    install_stub,
    read_calls,
    read_running,
    set_node_boot,
)

MAC = "52:54:00:00:01:"
FOUR = [f"cn00{i}" for i in range(1, 5)]


def seed(env: Env, names: list[str], groups: str = "compute") -> None:
    add_nodes(
        env.stub_state,
        {
            n: {"groups": groups, "mac": f"{MAC}{i:02d}", "mgt": "ipmi"}
            for i, n in enumerate(names, 1)
        },
    )


def site(
    env: Env,
    nodes: dict[str, str],
    variants: Optional[dict[str, dict[str, object]]] = None,
    **rollout: object,
) -> None:
    """The apply site with a `nodes:` map, img-compute's variants and rollout settings."""
    doc = apply_site_doc({"install_root": str(env.install), "prefix": "p", "builder": "xcat"})
    doc["directors"]["here"]["nodes"] = nodes
    if variants:
        doc["images"]["img-compute"]["variants"] = variants
    if rollout:
        doc["directors"]["here"]["rollout"] = rollout
    env.write("imagespec.yaml", dump_yaml(doc))


def rpowers(env: Env, since: int = 0) -> list[list[str]]:
    """The noderange of every rpower call after the `since`-th stub call."""
    return [c["args"][:-1] for c in read_calls(env.stub_state)[since:] if c["cmd"] == "rpower"]


def mark(env: Env) -> int:
    return len(read_calls(env.stub_state))


def generation_dir(env: Env, profile: str, number: int) -> str:
    return os.path.realpath(
        env.install / "netboot/rocky8/x86_64" / f".{profile}.imagespec/{number}"
    )


def rollout(capsys: pytest.CaptureFixture[str], *args: str):  # type: ignore[no-untyped-def]
    return run_main(capsys, "rollout", "--wait-boot", "5", *args)


@pytest.fixture
def four(env: Env, capsys: pytest.CaptureFixture[str]) -> Env:
    """cn001-cn004 booted on img-compute generation 1 by a first rollout."""
    seed(env, FOUR)
    site(env, {"cn[001-004]": "img-compute"})
    env.commit("four compute nodes")
    assert run_main(capsys, "apply", "--yes").code == 0
    run = rollout(capsys, "--batch", "100%")
    assert run.code == 0, run.out + run.err
    return env


def test_moved_nodes_reboot_canary_first_stop_at_a_failure_and_resume(
    four: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env = four
    site(env, {"cn[001-004]": "img-login"})
    env.commit("cn001-004 become login nodes")
    start = mark(env)
    assert run_main(capsys, "apply", "--yes").code == 0
    nodesets = [c["args"] for c in read_calls(env.stub_state)[start:] if c["cmd"] == "nodeset"]
    assert nodesets == [["cn[001-004]", "osimage=img-login"]]
    assert rpowers(env, start) == []  # apply never reboots
    boots = env.state()["boots"]
    assert boots["cn001"]["image"] == "img-login"
    assert boots["cn001"]["running_image"] == "img-compute"

    set_node_boot(env.stub_state, "cn003", rpower_error="BMC not responding")
    start = mark(env)
    run = rollout(capsys, "--canary", "1", "--batch", "2", "--max-failed", "0")
    assert run.code == 3, run.out + run.err
    assert rpowers(env, start) == [["cn001"], ["cn002,cn003"]]
    running = read_running(env.stub_state)
    assert running["cn001"]["image"] == "img-login"
    assert running["cn001"]["rootimgdir"] == generation_dir(env, "login", 1)
    assert running["cn004"]["image"] == "img-compute"  # never rebooted
    assert "cn003: FAILED: rpower: Error: BMC not responding" in run.out, run.out
    assert "not rebooted: cn004" in run.out
    assert "imagespec rollback img-login --director here" in run.out
    boots = env.state()["boots"]
    assert boots["cn002"]["running_image"] == "img-login"
    assert boots["cn003"]["running_image"] == "img-compute"
    assert "BMC not responding" in boots["cn003"]["error"]

    clear_node_boot(env.stub_state, "cn003")
    start = mark(env)
    run = rollout(capsys, "--canary", "1", "--batch", "2", "--max-failed", "0")
    assert run.code == 0, run.out + run.err
    assert rpowers(env, start) == [["cn003"], ["cn004"]]
    running = read_running(env.stub_state)
    assert {running[n]["image"] for n in FOUR} == {"img-login"}
    start = mark(env)
    run = rollout(capsys, "--json")
    assert run.code == 0
    assert run.json()["current"] == FOUR
    assert rpowers(env, start) == []


def test_status_counts_nodes_per_generation_and_a_rebuild_makes_them_due(
    four: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env = four
    status = run_main(capsys, "status", "--json").json()
    assert status["nodes"]["img-compute"] == {
        "nodes": 4,
        "generation": 1,
        "running": {"1": 4},
        "unknown": 0,
        "behind": 0,
    }
    env.write(
        "profiles/compute.yaml", dump_yaml({"inherits": ["base"], "packages": ["slurm", "make"]})
    )
    env.commit("compute: make")
    assert run_main(capsys, "apply", "--yes").code == 0
    status = run_main(capsys, "status")
    assert "nodes of img-compute: 4 nodes: 4 on generation 1; 4 not on generation 2" in status.out
    dry = rollout(capsys, "--dry-run", "--batch", "3", "--json").json()
    assert [b["nodes"] for b in dry["batches"]] == [["cn001"], ["cn002", "cn003", "cn004"]]
    start = mark(env)
    assert rollout(capsys, "--dry-run").code == 0
    assert rpowers(env, start) == []
    assert rollout(capsys, "img-compute", "--batch", "50%").code == 0
    running = read_running(env.stub_state)
    assert {running[n]["rootimgdir"] for n in FOUR} == {generation_dir(env, "compute", 2)}
    status = run_main(capsys, "status", "--json").json()
    assert status["nodes"]["img-compute"]["running"] == {"2": 4}


def test_a_node_that_does_not_boot_in_time_fails_and_is_picked_up_when_it_comes_back(
    four: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env = four
    env.write("profiles/compute.yaml", dump_yaml({"inherits": ["base"], "packages": ["make"]}))
    env.commit("compute: make")
    assert run_main(capsys, "apply", "--yes").code == 0
    set_node_boot(env.stub_state, "cn002", never=True)
    start = mark(env)
    run = run_main(
        capsys, "rollout", "--wait-boot", "1", "--canary", "0", "--batch", "2", "--max-failed", "0"
    )
    assert run.code == 3
    assert rpowers(env, start) == [["cn001,cn002"]]
    assert "cn002: FAILED: did not report booted within 1 s (status: powering-on)" in run.out
    assert env.state()["boots"]["cn002"]["rebooting"] is not None
    clear_node_boot(env.stub_state, "cn002")  # it comes up late, on the new generation
    start = mark(env)
    run = rollout(capsys, "--canary", "0", "--batch", "2", "--json")
    assert run.code == 0, run.out
    assert run.json()["resumed"] == ["cn002"]
    assert rpowers(env, start) == [["cn003,cn004"]]


def test_reserved_and_down_nodes_are_skipped_and_reported(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(env, ["cn001", "cn002"])
    seed(env, ["cn003"], groups="compute,noreboot")
    site(env, {"cn[001-003]": "img-compute"}, reserved=["noreboot"])
    env.commit("three compute nodes")
    assert run_main(capsys, "apply", "--yes").code == 0
    set_node_boot(env.stub_state, "cn002", down=True)
    start = mark(env)
    run = rollout(capsys, "--json")
    assert run.code == 0, run.out
    doc = run.json()
    assert doc["skipped"] == {"cn003": "reserved (group noreboot)"}
    assert doc["batches"][1]["skipped"] == {"cn002": "down (nodestat: noping)"}
    assert rpowers(env, start) == [["cn001"]]
    status = run_main(capsys, "status", "--json").json()
    assert status["nodes"]["img-compute"]["behind"] == 2


def test_nodes_assigned_by_hand_get_nodeset_before_their_reboot(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes").code == 0
    seed(env, ["cn001"])
    add_nodes(env.stub_state, {"cn001": {"provmethod": "img-compute"}})  # chdef by hand
    start = mark(env)
    run = rollout(capsys, "img-compute")
    assert run.code == 0, run.out + run.err
    calls = [[c["cmd"], *c["args"]] for c in read_calls(env.stub_state)[start:]]
    changing = [c for c in calls if c[0] in ("nodeset", "rpower")]
    assert changing == [["nodeset", "cn001", "osimage=img-compute"], ["rpower", "cn001", "boot"]]
    assert read_running(env.stub_state)["cn001"]["image"] == "img-compute"


def test_rollout_refuses_what_it_cannot_do(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    seed(env, ["cn001"])
    site(env, {"cn001": "img-compute"})
    env.commit("cn001")
    assert run_main(capsys, "apply", "--yes").code == 0
    run = rollout(capsys, "img-nope")
    assert run.code == 1 and "img-nope" in run.err
    run = rollout(capsys, "--batch", "0")
    assert run.code == 1 and "--batch" in run.err
    run = rollout(capsys, "--nodes", "-o")
    assert run.code == 1 and "noderange" in run.err
    run = rollout(capsys, "--nodes", "nosuchnode")
    assert run.code == 1


def test_a_killed_rollout_is_resumed_by_the_next(
    four: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env = four
    env.write("profiles/compute.yaml", dump_yaml({"inherits": ["base"], "packages": ["make"]}))
    env.commit("compute: make")
    assert run_main(capsys, "apply", "--yes").code == 0
    for node in FOUR:
        set_node_boot(env.stub_state, node, never=True)
    start = mark(env)
    child = subprocess.Popen(
        [sys.executable, "-m", "imagespec", "rollout", "--canary", "0", "--batch", "4"],
        cwd=env.site,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not rpowers(env, start) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rpowers(env, start) == [["cn001,cn002,cn003,cn004"]]
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert {b["rebooting"] is not None for b in env.state()["boots"].values()} == {True}
    clear_node_boot(env.stub_state)  # they all came up meanwhile
    start = mark(env)
    run = rollout(capsys, "--json")
    assert run.code == 0, run.out + run.err
    assert run.json()["resumed"] == FOUR
    assert rpowers(env, start) == []
    assert {b["running_generation"] for b in env.state()["boots"].values()} == {2}


def test_rollout_needs_an_xcat_director(
    repo_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_main(capsys, "--site", str(repo_root), "rollout", "--director", "local")
    assert run.code == 1
    assert "rollout needs the xcat builder; director 'local' uses 'native'" in run.err


# ---------------------------------------------------------------- the bundled example site

SITE_PARTS = ("imagespec.yaml", "profiles", "synclists", "postinstall", "postscripts")
COMPUTE = "rocky8-x86_64-netboot-compute"
COMPUTE_MIN = "rocky8-x86_64-netboot-compute-min"


@pytest.fixture
def example(
    repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[SiteRepo, Path]:
    """The example site in a repository of its own, its director cascade on this machine
    (the stand-in on PATH, /install under tmp_path); returns it and the stand-in's state."""
    site = tmp_path / "site"
    site.mkdir()
    for part in SITE_PARTS:
        source = repo_root / part
        if source.is_dir():
            shutil.copytree(source, site / part)
        else:
            shutil.copy2(source, site / part)
    text = (site / "imagespec.yaml").read_text()
    text = text.replace("    host: cascade-mn\n    install_root: /install\n", "", 1)
    text = text.replace(
        "    prefix: cascade\n", f"    prefix: cascade\n    install_root: {tmp_path}/install\n", 1
    )
    (site / "imagespec.yaml").write_text(text)
    state = tmp_path / "xcat"
    stub_bin = install_stub(tmp_path / "xcat-bin", state)
    monkeypatch.setenv("PATH", f"{stub_bin}{os.pathsep}{os.environ['PATH']}")
    repo = work_in(SiteRepo(new_repo(site), site, site, Clock()), monkeypatch)
    return repo, state


def test_example_site_move_cn001_004_to_compute_min_and_roll_it_out(
    example: tuple[SiteRepo, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue #14's walk-through on the example site, as the README shows it."""
    repo, state = example
    names = [
        *(f"cn{i:03d}" for i in range(1, 129)),
        *(f"login{i:02d}" for i in (1, 2)),
        *(f"lm{i:02d}" for i in range(1, 9)),
    ]
    add_nodes(
        state,
        {
            name: {
                "groups": "all",
                "mac": f"52:54:00:00:{i // 256:02x}:{i % 256:02x}",
                "mgt": "ipmi",
            }
            for i, name in enumerate(names)
        },
    )
    run = run_main(capsys, "apply", "-d", "cascade", "--yes")
    assert run.code == 0, run.out + run.err
    assert rollout_on(capsys, "--batch", "100%").code == 0

    yaml = repo.site / "imagespec.yaml"
    yaml.write_text(
        yaml.read_text().replace(
            f'"cn[001-004]": {COMPUTE}\n', f'"cn[001-004]": {COMPUTE_MIN}\n', 1
        )
    )
    repo.commit("cn001-004 run the minimal compute image")
    diff = run_main(capsys, "diff", "HEAD~1", "HEAD", "-d", "cascade")
    assert f"cn[001-004]: {COMPUTE} -> {COMPUTE_MIN}" in diff.out
    plan = run_main(capsys, "plan", "-d", "cascade", "--json")
    assert plan.json()["nodes"] == [{"nodes": "cn[001-004]", "from": COMPUTE, "to": COMPUTE_MIN}]
    start = len(read_calls(state))
    assert run_main(capsys, "apply", "-d", "cascade", "--yes").code == 0
    nodesets = [c["args"] for c in read_calls(state)[start:] if c["cmd"] == "nodeset"]
    assert nodesets == [["cn[001-004]", f"osimage={COMPUTE_MIN}"]]

    set_node_boot(state, "cn003", rpower_error="BMC not responding")
    start = len(read_calls(state))
    run = rollout_on(capsys, "--canary", "1", "--batch", "2", "--max-failed", "0")
    assert run.code == 3
    calls = [c["args"][0] for c in read_calls(state)[start:] if c["cmd"] == "rpower"]
    assert calls == ["cn001", "cn002,cn003"]
    assert "not rebooted: cn004" in run.out
    clear_node_boot(state, "cn003")
    start = len(read_calls(state))
    run = rollout_on(capsys, "--canary", "1", "--batch", "2", "--max-failed", "0")
    assert run.code == 0, run.out + run.err
    calls = [c["args"][0] for c in read_calls(state)[start:] if c["cmd"] == "rpower"]
    assert calls == ["cn003", "cn004"]
    running = read_running(state)
    assert {running[f"cn00{i}"]["image"] for i in range(1, 5)} == {COMPUTE_MIN}
    assert {running[f"cn{i:03d}"]["image"] for i in range(5, 129)} == {COMPUTE}
    status = run_main(capsys, "status", "-d", "cascade", "--json").json()
    assert status["nodes"][COMPUTE_MIN]["running"] == {"1": 4}
    assert status["nodes"][COMPUTE]["running"] == {"1": 124}


def rollout_on(capsys: pytest.CaptureFixture[str], *args: str):  # type: ignore[no-untyped-def]
    return run_main(capsys, "rollout", "-d", "cascade", "--wait-boot", "10", *args)


def test_nodes_of_a_boot_variant_reboot_into_the_variant(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(env, ["cn001", "cn002"])
    site(
        env,
        {"cn001": "img-compute-serial", "cn002": "img-compute"},
        variants={"serial": {"attributes": {"addkcmdline": "console=ttyS0,115200"}}},
    )
    env.commit("cn001 boots with a serial console")
    assert run_main(capsys, "apply", "--yes").code == 0
    run = rollout(capsys, "img-compute", "--canary", "0", "--batch", "2")
    assert run.code == 0, run.out + run.err
    running = read_running(env.stub_state)
    assert running["cn001"]["image"] == "img-compute-serial"
    assert "console=ttyS0,115200" in running["cn001"]["kcmdline"]
    assert "console=ttyS0" not in running["cn002"]["kcmdline"]
    assert running["cn001"]["rootimgdir"] == running["cn002"]["rootimgdir"]
    status = run_main(capsys, "status", "--json").json()
    assert status["nodes"]["img-compute"]["running"] == {"1": 2}


def test_rollout_waits_for_no_one_while_another_holds_the_director(
    four: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env = four
    lock = env.install / "p/.imagespec/lock"
    foreign_lock(lock)
    start = mark(env)
    run = rollout(capsys)
    assert run.code == 1
    assert "director is locked: held by ci@runner-7" in run.err
    assert rpowers(env, start) == []
