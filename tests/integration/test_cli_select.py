"""Everyday use (issue #16): global options on either side of the command, what plan
and apply say about uncommitted edits, and how the director is chosen."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import git
import pytest

from imagespec.gitrepo import GitRepo
from tests.helpers import dump_yaml, write_tree
from tests.integration.sites import (
    TWO_DIRECTORS,
    Env,
    SiteRepo,
    init_repo,
    run_main,
    small_site,
)

TRACE = re.compile(r"imagespec: +\d+\.\d\d s  \S")


@pytest.mark.parametrize(
    "argv",
    [("-v", "plan"), ("plan", "-v"), ("plan", "--json", "-v"), ("--json", "plan", "--verbose")],
)
def test_verbose_before_or_after_the_command_traces_git_and_xcat_commands(
    env: Env, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    code, out, err = run_main(capsys, *argv)
    assert code == 0, err
    traced = [line for line in err.splitlines() if line.startswith("imagespec:")]
    assert all(TRACE.match(line) for line in traced), err
    assert any(line.endswith("git rev-parse --verify --quiet 'HEAD^{commit}'") for line in traced)
    assert any(" s  git ls-tree " in line for line in traced), err
    assert any(" s  lsdef " in line for line in traced), err
    if "--json" in argv:
        assert json.loads(out)["director"] == "here"
    quiet = run_main(capsys, "plan")
    assert "imagespec:" not in quiet.err


def test_site_and_json_after_the_command(
    env: Env, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(capsys, "status", "--site", str(env.site), "--json")
    assert code == 2, err  # nothing applied yet
    assert json.loads(out)["director"] == "here"
    code, out, err = run_main(capsys, "--site", str(env.site), "--json", "status")
    assert code == 2 and json.loads(out)["director"] == "here"


# ---------------------------------------------------------------- uncommitted edits


def uncommitted_warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if "not committed" in line]


def test_plan_and_apply_say_which_site_edits_they_do_not_see(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env.write("profiles/compute.yaml", dump_yaml({"inherits": ["base"], "packages": ["new"]}))
    env.write("synclists/etc/issue", "untracked\n")
    (env.site / "postscripts/50-site").unlink()
    env.write("notes.txt", "not a site file\n")
    env.write(".gitignore", "*.swp\n")
    env.repo.git.add(".gitignore")
    env.repo.git.commit("-qm", "ignore swap files")
    head = env.repo.head.commit.hexsha[:7]
    env.write("profiles/compute.yaml.swp", "ignored\n")
    code, out, err = run_main(capsys, "plan", "--json")
    assert code == 0, err
    json.loads(out)  # stdout stays the report
    where = (
        f"plan renders HEAD ({head}); commit it, or use `imagespec diff` to see the working tree"
    )
    assert uncommitted_warnings(err) == [
        f"warning: postscripts/50-site is deleted and not committed: {where}",
        f"warning: profiles/compute.yaml is modified and not committed: {where}",
        f"warning: synclists/etc/issue is new and not committed: {where}",
    ]
    code, _, err = run_main(capsys, "apply", "--yes", "--only", "img-login")
    assert code == 0, err
    assert len(uncommitted_warnings(err)) == 3
    assert "apply renders HEAD" in err
    # the edit is committed: nothing to say
    env.commit("all of it")
    assert uncommitted_warnings(run_main(capsys, "plan").err) == []


def test_no_word_about_edits_when_another_commit_is_rendered(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    first = env.commit("second commit", {"postscripts/50-site": "#!/bin/sh\nexit 1\n"})
    env.write("profiles/compute.yaml", dump_yaml({"inherits": ["base"], "packages": ["new"]}))
    code, _, err = run_main(capsys, "plan", "--rev", "HEAD~1")
    assert code == 0, err
    assert uncommitted_warnings(err) == []
    code, _, err = run_main(capsys, "plan", "--rev", first)
    assert uncommitted_warnings(err) == [
        f"warning: profiles/compute.yaml is modified and not committed: plan renders {first}"
        f" ({first[:7]}); commit it, or use `imagespec diff` to see the working tree"
    ]


def test_many_edits_are_summed_up(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    for n in range(8):
        env.write(f"synclists/new-{n}", "x\n")
    err = run_main(capsys, "plan").err
    assert len(uncommitted_warnings(err)) == 6
    assert "warning: ... and 3 more site files not committed" in err


def test_uncommitted_files_of_a_site_in_a_subdirectory(tmp_path: Path) -> None:
    handle = init_repo(tmp_path / "repo", small_site(), subdir="sites/msc")
    handle.write("profiles/base.yaml", "packages: [changed]\n")
    write_tree(handle.top, {"profiles/outside.yaml": "not this site\n", "sites/other/x": "y\n"})
    with GitRepo.find(handle.site) as repo:
        assert repo.uncommitted(handle.site) == [("profiles/base.yaml", "modified")]


# ---------------------------------------------------------------- choosing the director


@pytest.fixture
def two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SiteRepo]:
    """prod follows main, test follows dev; dev is a branch of main with no commit of its own."""
    monkeypatch.delenv("IMAGESPEC_DIRECTOR", raising=False)
    site = init_repo(tmp_path / "repo", small_site(directors=TWO_DIRECTORS))
    site.repo.git.branch("dev")
    yield site
    site.repo.close()


def chosen(capsys: pytest.CaptureFixture[str], site: Path, *argv: str) -> tuple[str, list[str]]:
    """The director `show --json` rendered for, and what imagespec said about choosing it."""
    run = run_main(capsys, "--site", str(site), "show", "img-login", "--json", *argv)
    assert run.code == 0, run.err
    prefix = json.loads(run.out)["attributes"]["pkglist"].split("/")[2]
    return prefix, [line for line in run.err_lines if line.startswith("imagespec: director")]


def test_a_feature_branch_uses_the_director_of_its_upstream(
    two: SiteRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clone = git.Repo.clone_from(str(two.top), str(tmp_path / "clone"))
    try:
        clone.git.checkout("-q", "-b", "feature", "origin/dev")  # tracks origin/dev
        assert chosen(capsys, tmp_path / "clone") == (
            "test",
            [
                "imagespec: director test: the current branch 'feature' tracks origin/dev, "
                "which it follows; -d NAME chooses another"
            ],
        )
        assert chosen(capsys, tmp_path / "clone", "-d", "prod") == ("prod", [])
    finally:
        clone.close()


def test_a_feature_branch_uses_the_director_of_the_branch_it_was_created_from(
    two: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    two.branch("dev", "main", {"profiles/aux.yaml": "packages: [on-dev]\n"})
    two.branch("from-dev", "dev", {"profiles/aux.yaml": "packages: [feature]\n"}, "from-dev")
    assert chosen(capsys, two.site) == (
        "test",
        [
            "imagespec: director test: the current branch 'from-dev' was created from 'dev', "
            "which it follows; -d NAME chooses another"
        ],
    )
    two.branch("from-main", "main", {"profiles/aux.yaml": "packages: [other]\n"}, "from-main")
    assert chosen(capsys, two.site)[0] == "prod"
    two.repo.git.checkout("-q", "main")
    # the current branch's own director is the documented rule: nothing to say
    assert chosen(capsys, two.site) == ("prod", [])


def test_default_director_and_the_environment_decide_when_git_cannot(
    two: SiteRepo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    two.repo.git.checkout("-q", "-b", "feature")  # main and dev are the same commit: a tie
    run = run_main(capsys, "--site", str(two.site), "show", "img-login")
    assert run.code == 1 and "IMAGESPEC_DIRECTOR or default_director" in run.err
    doc = two.site / "imagespec.yaml"
    two.commit("default", {"imagespec.yaml": doc.read_text() + "default_director: test\n"})
    assert chosen(capsys, two.site) == (
        "test",
        ["imagespec: director test: default_director in imagespec.yaml; -d NAME chooses another"],
    )
    monkeypatch.setenv("IMAGESPEC_DIRECTOR", "prod")
    assert chosen(capsys, two.site)[0] == "prod"
    assert chosen(capsys, two.site, "-d", "test") == ("test", [])
    monkeypatch.setenv("IMAGESPEC_DIRECTOR", "prd")
    run = run_main(capsys, "--site", str(two.site), "show", "img-login")
    assert run.code == 1
    assert run.err_lines == [
        "error: unknown director 'prd' (IMAGESPEC_DIRECTOR); did you mean 'prod'? "
        "(directors: prod, test)"
    ]


def test_an_unknown_default_director_is_a_validation_error(
    two: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = two.site / "imagespec.yaml"
    lines = doc.read_text().count("\n")
    doc.write_text(doc.read_text() + "default_director: tset\n")
    run = run_main(capsys, "--site", str(two.site), "validate")
    assert run.code == 1
    assert run.err_lines == [
        f"imagespec.yaml:{lines + 1}:1: default_director 'tset' is not a director; "
        "did you mean 'test'? (directors: prod, test)"
    ]
