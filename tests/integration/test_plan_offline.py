"""`plan --offline --state FILE`: a plan from a saved copy of the director's state, and a
remote director whose host cannot be reached, said in one line with what to do.

The apply site (`env`, a local director with the xCAT stand-in) is applied once; its
state is saved as CI would (`status --json`, or state.json copied), then the site
changes and the offline plan is compared with the plan made against the director.
The director is then made remote on a host that does not resolve (`.invalid`), so any
attempt to reach it fails.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from imagespec.state import STATE_VERSION
from tests.helpers import dump_yaml
from tests.integration.sites import (
    APPLY_PROFILES,
    Env,
    apply_site_files,
    assert_clean_failure,
    run_main,
)

UNREACHABLE = "director.invalid"  # RFC 2606: never resolves


def remote(env: Env, host: str = UNREACHABLE) -> None:
    """The director `here`, now on a host over ssh (the same tree and state)."""
    director = {"install_root": str(env.install), "prefix": "p", "builder": "xcat", "host": host}
    env.write("imagespec.yaml", apply_site_files(director)["imagespec.yaml"])


@pytest.fixture
def saved(env: Env, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> dict[str, Path]:
    """The site applied, and its state saved both ways a CI job can keep it."""
    assert run_main(capsys, "apply", "--yes").code == 0
    status = run_main(capsys, "--json", "status")
    assert status.code == 0, status.err
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "status.json").write_text(status.out)
    shutil.copy(env.install / "p/.imagespec/state.json", artifacts / "state.json")
    return {"status": artifacts / "status.json", "state": artifacts / "state.json"}


def change_compute(env: Env) -> None:
    """compute (and lite, which inherits it) gain a package: genimage; login is unchanged."""
    compute = dict(APPLY_PROFILES["compute"], packages=["slurm", "munge"])
    env.write("profiles/compute.yaml", dump_yaml(compute))


def actions(doc: dict[str, Any]) -> dict[str, Any]:
    """What a plan decides, per image and in the summary (not how it knows)."""
    return {
        "images": {n: (i["status"], i["actions"]) for n, i in doc["images"].items()},
        "summary": doc["summary"],
        "files": doc["files"],
    }


def test_offline_plan_owes_what_the_online_plan_owes(
    env: Env, saved: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    change_compute(env)
    env.commit("compute: munge")
    online = run_main(capsys, "--json", "plan", "--exit-code")
    assert online.code == 2 and "offline" not in online.json()
    expected = actions(online.json())
    assert expected["images"]["img-compute"] == ("changed", ["sync", "genimage", "pack"])
    assert expected["images"]["img-login"] == ("unchanged", [])
    for kind in ("status", "state"):
        offline = run_main(capsys, "--json", "plan", "--exit-code", "--state", str(saved[kind]))
        assert offline.code == 2, offline.err
        doc = offline.json()
        assert actions(doc) == expected, kind
        assert doc["images"]["img-compute"]["reasons"] == ["pkglist changed via compute"]
        assert doc["offline"]["state"] == str(saved[kind])
        topics = [line.split(":")[0] for line in doc["offline"]["unknown"]]
        assert topics == ["files", "definitions", "nodes"]


def test_offline_plan_of_an_unchanged_site_is_empty_and_says_what_it_cannot_tell(
    env: Env, saved: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_main(capsys, "plan", "--exit-code", "--offline", "--state", str(saved["status"]))
    assert run.code == 0, run.err
    assert "nothing to do" in run.out
    assert f"offline: planned from the state in {saved['status']}" in run.out
    assert "- definitions: osimage definitions changed in xCAT" in run.out
    markdown = run_main(capsys, "plan", "--state", str(saved["state"]), "-f", "markdown")
    assert markdown.code == 0
    assert f"> Planned offline from the recorded state `{saved['state']}`" in markdown.out


def test_offline_plan_never_contacts_the_director(
    env: Env, saved: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The director's host does not resolve: a plan that tried to reach it would fail."""
    remote(env)
    change_compute(env)
    env.commit("remote director; compute: munge")
    online = run_main(capsys, "plan")
    assert_clean_failure(online)
    offline = run_main(capsys, "-v", "--json", "plan", "--state", str(saved["status"]))
    assert offline.code == 0, offline.err
    assert offline.json()["images"]["img-compute"]["actions"] == ["sync", "genimage", "pack"]
    assert "ssh" not in offline.err and "rsync" not in offline.err  # -v traces every command


def test_an_unreachable_host_is_one_line_that_says_what_to_do(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    remote(env)
    env.commit("remote director")
    for argv in (["apply", "--dry-run"], ["plan"], ["status"]):
        run = run_main(capsys, *argv)
        assert run.code == 1, (argv, run.err)
        assert run.err_lines == [
            f"error: cannot reach the director's host {UNREACHABLE} (ssh: Could not resolve"
            f" hostname {UNREACHABLE}: Name or service not known); plan, status and apply"
            " (--dry-run too) read the director over ssh: run them where"
            f" `ssh {UNREACHABLE}` works, or plan from a saved copy of its state with"
            " `imagespec plan --offline --state FILE`"
        ], argv


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", "is not valid JSON"),
        (b'{"version": 1, "images": {"img-compute": {"status": "great"}}}', "is damaged:"),
        (
            json.dumps({"version": STATE_VERSION + 1}).encode(),
            f"state version {STATE_VERSION + 1} is newer than {STATE_VERSION}; upgrade imagespec",
        ),
        (b'{"director": "here", "in_sync": true}', "status output without the recorded state"),
        (b'{"version": 1, "director": "prod"}', "is the state of director prod, not here"),
        (b'{"directors": [{"director": "prod"}]}', "has no status of director here"),
    ],
)
def test_a_damaged_newer_or_foreign_state_file_is_refused_in_one_line(
    env: Env,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    content: bytes,
    expected: str,
) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(content)
    run = run_main(capsys, "plan", "--offline", "--state", str(state))
    assert_clean_failure(run)
    assert len(run.err_lines) == 1
    assert run.err.startswith(f"error: {state}")
    assert expected in run.err


def test_offline_needs_a_state_file_and_a_missing_one_is_one_line(
    env: Env, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run = run_main(capsys, "plan", "--offline")
    assert_clean_failure(run)
    assert "plan --offline needs --state FILE" in run.err
    missing = tmp_path / "nowhere.json"
    run = run_main(capsys, "plan", "--state", str(missing))
    assert_clean_failure(run)
    assert run.err_lines == [
        f"error: cannot read --state {missing}: No such file or directory; copy the director's"
        " state again (its .imagespec/state.json, or `imagespec status --json` run where the"
        " director is reachable)"
    ]
