"""A site is hostile input (CI runs forks' pull requests): what imagespec must refuse.

Each case is a one-line error with exit 1, never a traceback; nothing of a file
outside the site reaches stdout, stderr or a render; nothing of the site or its
.git is deleted.  See docs/decisions.md ("Symlinks", "Where imagespec writes").
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git
import pytest

from tests.helpers import write_tree
from tests.integration.sites import (
    Run,
    SiteRepo,
    assert_clean_failure,
    init_repo,
    run_main,
    small_site,
    snapshot,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET = "imagespec-test-secret-5f1c2e9a"


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def own(tmp_path: Path) -> Iterator[SiteRepo]:
    """The small site of sites.py, one commit on main, at the top of its repository."""
    site = init_repo(tmp_path / "repo", small_site())
    yield site
    site.repo.close()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the repository, holding a file the site must never show."""
    folder = tmp_path / "outside"
    # a valid YAML mapping whose unknown key an error message would quote
    write_tree(folder, {"shadow": f"{SECRET}: leaked\n", "leak.yaml": f"{SECRET}: leaked\n"})
    return folder


def one_line_failure(run: Run, pattern: str) -> str:
    """exit 1, exactly one line on stderr matching pattern, and no secret anywhere."""
    assert_clean_failure(run)
    assert SECRET not in run.out + run.err
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


def site_args(site: SiteRepo, *argv: str) -> tuple[str, ...]:
    return ("--site", str(site.site), *argv)


def tree_has_secret(root: Path) -> bool:
    return any(SECRET.encode() in data for data in snapshot(root).values())


# ---------------------------------------------------------------- render --out


def test_render_force_onto_the_site_is_refused(
    own: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(own.top)
    run = run_main(capsys, *site_args(own, "render", "--out", str(own.site), "--force"))
    one_line_failure(run, r"^error: --out .* is the site directory; render into ")
    assert snapshot(own.top) == before
    assert (own.top / ".git" / "HEAD").is_file()


def test_render_out_dot_in_the_site_is_refused(
    own: SiteRepo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(own.top)
    monkeypatch.chdir(own.site)
    run = run_main(capsys, "render", "--out", ".", "--force")
    one_line_failure(run, r"^error: --out \. is the site directory")
    assert snapshot(own.top) == before
    assert (own.top / ".git" / "HEAD").is_file()


def test_render_out_dot_elsewhere_works(
    own: SiteRepo,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "rendered"
    out.mkdir()
    monkeypatch.chdir(out)
    run = run_main(capsys, *site_args(own, "render", "--out", "."))
    assert run.code == 0, run.err
    assert (out / "p/custom/synclists/etc/motd").read_text() == "Welcome\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_render_out_holding_the_site_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nested = init_repo(tmp_path / "top", small_site(), subdir="site")
    before = snapshot(nested.top)
    run = run_main(capsys, *site_args(nested, "render", "--out", str(nested.top), "--force"))
    one_line_failure(run, r"^error: --out .* contains the site ")
    assert snapshot(nested.top) == before
    assert (nested.top / ".git" / "HEAD").is_file()


@pytest.mark.parametrize(
    ("where", "why"),
    [
        ("synclists/rendered", r"is inside the site's synclists"),
        ("profiles", r"is inside the site's profiles"),
        (".git/rendered", r"is inside a \.git directory"),
        ("docs", r"holds docs/notes\.md, which git tracks in "),
    ],
)
def test_render_out_in_the_site_files_is_refused(
    own: SiteRepo, capsys: pytest.CaptureFixture[str], where: str, why: str
) -> None:
    own.commit("notes", {"docs/notes.md": "keep me\n"})
    before = snapshot(own.top)
    run = run_main(capsys, *site_args(own, "render", "--out", str(own.site / where), "--force"))
    one_line_failure(run, rf"^error: --out .*{where} {why}")
    assert snapshot(own.top) == before
    assert not (own.site / ".git/rendered").exists()


def test_render_out_in_an_ignored_directory_of_the_site_works(
    own: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    own.commit("ignore the scratch area", {".gitignore": "/.director/\n"})
    out = own.site / ".director" / "render"
    for _ in range(2):  # the second time replaces it
        run = run_main(capsys, *site_args(own, "render", "--out", str(out), "--force"))
        assert run.code == 0, run.err
    assert (out / "p/custom/synclists/etc/motd").read_text() == "Welcome\n"
    assert own.repo.git.status("--porcelain") == ""


# ---------------------------------------------------------------- symlinks in the working tree

WORKTREE_COMMANDS = [
    pytest.param(("validate",), id="validate"),
    pytest.param(("render", "--out", "{out}"), id="render"),
    pytest.param(("diff",), id="diff"),
]


def run_on_worktree(
    capsys: pytest.CaptureFixture[str], site: SiteRepo, command: tuple[str, ...], out: Path
) -> Run:
    argv = [arg.format(out=out) for arg in command]
    return run_main(capsys, *site_args(site, *argv))


def link(path: Path, target: Any) -> None:
    if path.is_dir() and not path.is_symlink():
        for child in sorted(path.rglob("*"), reverse=True):
            child.rmdir() if child.is_dir() else child.unlink()
        path.rmdir()
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to(target)


@pytest.mark.parametrize("command", WORKTREE_COMMANDS)
def test_profile_linked_to_an_outside_file(
    own: SiteRepo,
    outside: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: tuple[str, ...],
) -> None:
    link(own.site / "profiles/leak.yaml", outside / "shadow")
    run = run_on_worktree(capsys, own, command, tmp_path / "out")
    one_line_failure(
        run, r"^profiles/leak\.yaml: is a symlink that leads out of the site's files; "
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", WORKTREE_COMMANDS)
def test_sync_source_linked_to_an_outside_file(
    own: SiteRepo,
    outside: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: tuple[str, ...],
) -> None:
    link(
        own.site / "synclists/etc/motd",
        os.path.relpath(outside / "shadow", own.site / "synclists/etc"),
    )
    run = run_on_worktree(capsys, own, command, tmp_path / "out")
    one_line_failure(run, r"synclists/etc/motd: is a symlink that leads out of the site's files")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", WORKTREE_COMMANDS)
def test_profiles_folder_linked_to_an_outside_directory(
    own: SiteRepo,
    outside: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: tuple[str, ...],
) -> None:
    for rel in ("base", "aux", "login", "compute", "legacy", "lite"):
        (outside / f"{rel}.yaml").write_bytes((own.site / f"profiles/{rel}.yaml").read_bytes())
    link(own.site / "profiles", outside)
    run = run_on_worktree(capsys, own, command, tmp_path / "out")
    one_line_failure(run, r"^profiles: is a symlink to a directory; imagespec does not follow")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", WORKTREE_COMMANDS)
def test_sync_folder_linked_out_of_the_site(
    own: SiteRepo,
    outside: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: tuple[str, ...],
) -> None:
    (outside / "motd").write_text(SECRET)
    (outside / "hosts").write_text(SECRET)
    link(own.site / "synclists/etc", "../../outside")
    run = run_on_worktree(capsys, own, command, tmp_path / "out")
    one_line_failure(
        run,
        r"synclists/etc/(motd|hosts): is reached through 'synclists/etc', a symlinked directory",
    )
    assert not (tmp_path / "out").exists()


def test_profile_linked_into_dot_git(own: SiteRepo, capsys: pytest.CaptureFixture[str]) -> None:
    with own.repo.config_writer() as config:
        config.set_value("http", "extraheader", f"AUTHORIZATION: basic {SECRET}")
    link(own.site / "profiles/leak.yaml", "../.git/config")
    run = run_main(capsys, *site_args(own, "validate"))
    one_line_failure(run, r"^profiles/leak\.yaml: is a symlink that leads out of the site's files")


def test_dangling_profile_link(own: SiteRepo, capsys: pytest.CaptureFixture[str]) -> None:
    link(own.site / "profiles/gone.yaml", "nothing.yaml")
    run = run_main(capsys, *site_args(own, "validate"))
    one_line_failure(
        run, r"^profiles/gone\.yaml: is a symlink to nothing \('profiles/nothing\.yaml'\)"
    )


def test_links_inside_the_site_are_followed(
    own: SiteRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (own.site / "synclists/etc/motd.real").write_text("Welcome, linked\n")
    link(own.site / "synclists/etc/motd", "motd.real")
    run = run_main(capsys, *site_args(own, "render", "--out", str(tmp_path / "out")))
    assert run.code == 0, run.err
    assert (tmp_path / "out/p/custom/synclists/etc/motd").read_text() == "Welcome, linked\n"


def test_huge_profile_is_refused(own: SiteRepo, capsys: pytest.CaptureFixture[str]) -> None:
    with open(own.site / "profiles/big.yaml", "wb") as big:
        big.truncate(17 << 20)
    for command in (("validate",), ("diff",)):
        run = run_main(capsys, *site_args(own, *command))
        one_line_failure(run, r"^profiles/big\.yaml: is 17825792 bytes, over the 16 MiB limit")


def test_fifo_profile_is_refused_without_hanging(own: SiteRepo) -> None:
    os.mkfifo(own.site / "profiles/pipe.yaml")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "imagespec.cli", "--site", str(own.site), "validate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    run = Run(proc.returncode, proc.stdout, proc.stderr)
    one_line_failure(run, r"^profiles/pipe\.yaml: is a FIFO, not a regular file")


# ---------------------------------------------------------------- symlinks in a commit


def diff_commits(capsys: pytest.CaptureFixture[str], site: SiteRepo) -> Run:
    return run_main(capsys, *site_args(site, "diff", "HEAD~1", "HEAD"))


def test_committed_profile_linked_outside(
    own: SiteRepo, outside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link(own.site / "profiles/leak.yaml", outside / "shadow")
    head = own.commit("a link out")
    run = diff_commits(capsys, own)
    one_line_failure(run, rf"^{head[:10]}:profiles/leak\.yaml: is a symlink that leads out")


def test_committed_profiles_folder_link(
    own: SiteRepo, outside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link(own.site / "profiles", outside)
    head = own.commit("profiles elsewhere")
    run = diff_commits(capsys, own)
    one_line_failure(run, rf"^{head[:10]}:profiles: is a symlink to a directory")


@pytest.mark.parametrize("target", ["../../outside", "../../..", "../profiles"])
def test_committed_sync_folder_link(
    own: SiteRepo, outside: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    (outside / "motd").write_text(SECRET)
    link(own.site / "synclists/etc", target)
    head = own.commit("synclists/etc elsewhere")
    run = diff_commits(capsys, own)
    one_line_failure(run, rf"^{head[:10]}:synclists/etc: is a symlink ")


# ---------------------------------------------------------------- a local director's tree


def director_site(tmp_path: Path, director: dict[str, Any], **extra: str) -> SiteRepo:
    files = small_site(directors={"here": {"builder": "none", **director}})
    files.update(extra)
    return init_repo(tmp_path / "repo", files)


DIRECTOR_COMMANDS = [
    pytest.param(("plan",), id="plan"),
    pytest.param(("status",), id="status"),
    pytest.param(("apply", "--yes"), id="apply"),
]


@pytest.mark.parametrize("command", DIRECTOR_COMMANDS)
def test_install_root_on_the_site_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    site = director_site(tmp_path, {"install_root": ".", "prefix": ""})
    before = snapshot(site.top)
    run = run_main(capsys, *site_args(site, *command))
    one_line_failure(
        run,
        r"^imagespec\.yaml:\d+:\d+: director 'here': install_root '\.' with prefix '' puts files "
        r"at .*, which is the site directory; use a directory outside",
    )
    assert snapshot(site.top) == before
    assert site.repo.git.status("--porcelain", "--ignored") == ""


@pytest.mark.parametrize(
    ("director", "files", "why"),
    [
        ({"install_root": ".", "prefix": "p"}, {}, r"is inside the site's postscripts"),
        ({"install_root": "docs", "prefix": ""}, {"docs/notes.md": "x\n"}, r"holds docs/notes\.md"),
        ({"install_root": ".git", "prefix": "p"}, {}, r"is inside a \.git directory"),
    ],
)
def test_install_root_overlapping_site_files_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    director: dict[str, Any],
    files: dict[str, str],
    why: str,
) -> None:
    site = director_site(tmp_path, director, **files)
    before = snapshot(site.top)
    run = run_main(capsys, *site_args(site, "apply", "--yes"))
    one_line_failure(run, rf"^imagespec\.yaml:\d+:\d+: director 'here': .*{why}")
    assert snapshot(site.top) == before


def test_install_root_holding_the_site_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    top = tmp_path / "top"
    files = small_site(
        directors={"here": {"builder": "none", "install_root": str(top), "prefix": ""}}
    )
    site = init_repo(top, files, subdir="site")
    before = snapshot(site.top)
    run = run_main(capsys, *site_args(site, "apply", "--yes"))
    one_line_failure(run, r"^imagespec\.yaml:\d+:\d+: director 'here': .* contains the site ")
    assert snapshot(site.top) == before


def test_ignored_install_root_in_the_site_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = director_site(
        tmp_path,
        {"install_root": ".director/install", "prefix": ""},
        **{".gitignore": "/.director/\n"},
    )
    run = run_main(capsys, *site_args(site, "apply", "--yes"))
    assert run.code == 0, run.err
    assert (site.site / ".director/install/custom/synclists/etc/motd").read_text() == "Welcome\n"
    assert site.repo.git.status("--porcelain") == ""


# ---------------------------------------------------------------- revisions git cannot give


@pytest.fixture
def shallow(tmp_path: Path, own: SiteRepo) -> Iterator[git.Repo]:
    """A depth-1 clone of main (two commits) and of `feature`, which forks off the first."""
    own.commit("second", {"profiles/aux.yaml": "inherits: [base]\npackages: [tmux]\n"})
    own.branch(
        "feature", "HEAD~1", {"profiles/compute.yaml": "inherits: [base]\npackages: [hwloc]\n"}
    )
    repo = git.Repo.clone_from(
        f"file://{own.top}", str(tmp_path / "shallow"), depth=1, no_single_branch=True
    )
    yield repo
    repo.close()


def test_three_dots_past_a_shallow_history(
    shallow: git.Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_main(capsys, "--site", str(shallow.working_tree_dir), "diff", "HEAD~1...HEAD")
    one_line_failure(
        run,
        r"^error: unknown revision 'HEAD~1'.*this clone is shallow: fetch more history with git fetch --deepen",
    )


def test_no_merge_base_in_a_shallow_clone(
    shallow: git.Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_main(
        capsys, "--site", str(shallow.working_tree_dir), "diff", "origin/feature...origin/main"
    )
    one_line_failure(
        run,
        r"^error: origin/feature and origin/main have no merge base here: this clone is shallow; "
        r"fetch more history with git fetch --deepen=<n> or git fetch --unshallow, "
        r"or compare the tips with origin/feature\.\.origin/main$",
    )


@pytest.mark.parametrize(
    ("rev", "why"),
    [
        (
            "@{-1}",
            r"^error: '@\{-1\}' means a branch checked out earlier, .*name the branch instead$",
        ),
        (
            "HEAD@{99}",
            r"^error: 'HEAD@\{99\}' is not in the reflog .*give a branch, tag or commit$",
        ),
        ("main@{upstream}", r"^error: 'main@\{upstream\}' needs an upstream branch"),
    ],
)
def test_reflog_revisions_that_do_not_exist(
    own: SiteRepo, capsys: pytest.CaptureFixture[str], rev: str, why: str
) -> None:
    run = run_main(capsys, *site_args(own, "diff", rev))
    one_line_failure(run, why)


def test_previous_branch_is_understood(own: SiteRepo, capsys: pytest.CaptureFixture[str]) -> None:
    own.branch(
        "feature", "HEAD", {"profiles/compute.yaml": "inherits: [base]\npackages: [hwloc]\n"}
    )
    run = run_main(capsys, *site_args(own, "--json", "diff", "@{-1}", "HEAD"))
    assert run.code == 0, run.err
    assert run.json()["base"] == own.sha("feature")
