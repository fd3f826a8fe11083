"""status when HEAD's site does not load, and while an apply holds the director."""

from __future__ import annotations

import json
import os

import pytest

from imagespec.transport.base import this_host
from tests.helpers import dump_yaml
from tests.integration.sites import APPLY_PROFILES, Env, foreign_lock, run_main


def test_status_reports_the_director_when_head_does_not_load(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    applied = env.sha("HEAD")
    broken = {**APPLY_PROFILES["compute"], "pakages": ["slurm"]}
    head = env.commit("a typo", {"profiles/compute.yaml": dump_yaml(broken)})
    foreign_lock(env.install / "p/.imagespec/lock")

    code, out, err = run_main(capsys, "status")
    assert code == 1, err
    assert "Traceback" not in out + err
    assert f"director here (local directory {env.install}): applied {applied[:10]}" in out
    why = next(line for line in out.splitlines() if "does not load" in line)
    assert why.startswith(
        f"the site at {head[:10]} does not load: {head[:10]}:profiles/compute.yaml:"
    )
    assert "pakages" in why
    rows = {w[0]: w[1] for w in map(str.split, out.splitlines()) if w and w[0].startswith("img-")}
    assert rows == {"img-compute": "ok", "img-lite": "ok", "img-login": "ok"}
    assert "lock: an apply is running: held by ci@runner-7" in out

    code, out, _ = run_main(capsys, "status", "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["applied"] == applied and doc["target"] == head and not doc["in_sync"]
    assert "pakages" in doc["site_error"]
    assert {n: i["status"] for n, i in doc["images"].items()} == {
        "img-compute": "ok",
        "img-lite": "ok",
        "img-login": "ok",
    }
    assert doc["lock"]["holder"] == "ci@runner-7" and doc["lock"]["state"] == "held"


def test_status_shows_who_holds_the_lock_applying_what_since_when(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    code, out, _ = run_main(capsys, "status", "--json")
    assert code == 0 and json.loads(out)["lock"] is None
    assert "lock" not in run_main(capsys, "status").out

    lock = env.install / "p/.imagespec/lock"
    foreign_lock(lock)
    code, out, _ = run_main(capsys, "status")
    assert code == 0, "a running apply alone does not make the director out of sync"
    assert (
        "lock: an apply is running: held by ci@runner-7 (pid 4242) applying 0123456789"
        " since 2026-11-21T00:00:00Z\n"
    ) in out
    lock_doc = json.loads(run_main(capsys, "status", "--json").out)["lock"]
    assert lock_doc["commit"] == "0123456789abcdef"
    assert lock_doc["started"] == "2026-11-21T00:00:00Z"

    # an apply that died here: its pid is gone, so the next apply breaks the lock
    info = json.loads((lock / "info.json").read_text())
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    info.update(host=this_host(), pid=dead, holder=f"admin@{this_host()}")
    (lock / "info.json").write_text(json.dumps(info))
    out = run_main(capsys, "status").out
    assert f"lock: stale lock: held by admin@{this_host()} (pid {dead})" in out
    assert "no longer running; the next apply breaks it" in out
