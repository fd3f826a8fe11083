"""`imagespec diff` against real git repositories (SPEC §6 and §8, docs/decisions.md "diff").

One repository per module holds the small site of tests/integration/sites.py:
`main` is the site (tag v1, annotated tag rel-1) plus one commit adding `tmux`
to the shared `aux` profile; `feature` branches off v1 and adds `hwloc` to
`compute`.  Every kind of change is a branch off v1 with one commit, compared
with `diff v1 <branch>`, which reads git only, so the shared work tree stays
on a clean `main`.  Tests that need a dirty work tree make their own repository.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import write_tree
from tests.integration.sites import (
    ALL_IMAGES,
    AUX,
    BASE,
    BASE_IMAGES,
    COMPUTE,
    LEGACY,
    LITE,
    RENAMED_BASE,
    SMALL_IMAGES,
    TWO_DIRECTORS,
    Edits,
    Run,
    SiteRepo,
    assert_clean_failure,
    clone,
    identity_env,
    init_repo,
    run_main,
    site_yaml,
    small_site,
    snapshot,
    unchanged_entry,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

AUX_TMUX = AUX.replace("[vim-enhanced]", "[vim-enhanced, tmux]")
COMPUTE_HWLOC = COMPUTE.replace("[slurm]", "[slurm, hwloc]")
NEW_SCRIPT = '#!/bin/sh\necho "a new version" "$@"\n'
PKG_ACTIONS = ["sync", "genimage", "pack"]
EMPTY_SUMMARY: dict[str, Any] = {
    "genimage": [],
    "pack": [],
    "define": [],
    "sync": [],
    "removed": [],
    "unchanged": 0,
}


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No colours, wide lines, and crash logs (if any) in tmp_path."""
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteRepo]:
    """main: v1 (the site) + tmux in aux; feature: v1 + hwloc in compute.  Work tree: clean main."""
    site = init_repo(tmp_path_factory.mktemp("diff-repo"), small_site())
    site.repo.create_tag("v1")
    site.repo.git.tag("-a", "rel-1", "-m", "release 1", env=identity_env("1704067200 +0000"))
    site.commit("tmux for admins", {"profiles/aux.yaml": AUX_TMUX})
    site.branch("feature", "v1", {"profiles/compute.yaml": COMPUTE_HWLOC})
    yield site
    site.repo.close()


def diff(capsys: pytest.CaptureFixture[str], site: SiteRepo, *argv: str) -> Run:
    return run_main(capsys, "--site", str(site.site), "diff", *argv)


def diff_json(capsys: pytest.CaptureFixture[str], site: SiteRepo, *revs: str) -> dict[str, Any]:
    run = diff(capsys, site, *revs, "--format", "json")
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    data: dict[str, Any] = run.json()
    return data


def variant(
    capsys: pytest.CaptureFixture[str], site: SiteRepo, name: str, edits: Edits
) -> dict[str, Any]:
    """Commit edits on a branch off v1 and diff v1 against it."""
    head = site.branch(name, "v1", edits)
    data = diff_json(capsys, site, "v1", name)
    assert data["base"] == site.sha("v1")
    assert data["head"] == head
    assert sorted(data) == ["base", "head", "images", "summary"]
    return data


def expect_images(data: dict[str, Any], changed: dict[str, dict[str, Any]]) -> None:
    """Exactly these images changed (as given), every other one unchanged."""
    want = {name: changed.get(name, unchanged_entry()) for name in ALL_IMAGES}
    assert data["images"] == want


def summary(**groups: Any) -> dict[str, Any]:
    return {**EMPTY_SUMMARY, **groups}


def changed(actions: list[str], changes: dict[str, Any]) -> dict[str, Any]:
    return {"status": "changed", "actions": actions, "changes": changes}


# ---------------------------------------------------------------- what a change requires


def test_package_added_to_a_shared_profile_rebuilds_every_image_using_it(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    data = variant(capsys, shared, "pkg-aux", {"profiles/aux.yaml": AUX_TMUX})
    entry = changed(PKG_ACTIONS, {"pkglist": {"added": ["tmux"], "removed": []}})
    expect_images(data, {"img-aux": entry, "img-login": entry})
    assert data["summary"] == summary(genimage=["img-aux", "img-login"], unchanged=3)


def test_package_moved_to_an_ancestor_profile_is_reported_as_reordered(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    base = BASE.replace("[bash, chrony]", "[bash, chrony, gcc]")
    data = variant(capsys, shared, "pkg-moved", {"profiles/base.yaml": base})
    login = data["images"]["img-login"]
    # the same packages in one transaction: the file is rewritten, the image is not rebuilt
    assert login["actions"] == ["sync"]
    assert login["changes"] == {"pkglist": {"added": [], "removed": [], "reordered": True}}
    run = diff(capsys, shared, "v1", "pkg-moved")
    assert "      pkglist: same entries in a new order" in run.out.splitlines()


def test_text_report_names_the_changed_profile(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    run = diff(capsys, shared, "v1", "main")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0] == (
        f"{shared.sha('v1')[:10]}..{shared.sha('main')[:10]} on director main: "
        "2 image(s) change, 0 removed, 3 unchanged"
    )
    assert "  img-aux: sync, genimage, pack (via aux)" in lines
    assert "  img-login: sync, genimage, pack (via aux)" in lines
    assert "      pkglist: added tmux" in lines
    for untouched in ("img-compute", "img-legacy", "img-lite"):
        assert untouched not in run.out


def test_postscript_content_change_is_sync_only(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    data = variant(capsys, shared, "postscript", {"postscripts/50-site": NEW_SCRIPT})
    entry = changed(["sync"], {"postscripts": {"content": ["50-site"]}})
    expect_images(data, dict.fromkeys(BASE_IMAGES, entry))
    assert data["summary"] == summary(sync=BASE_IMAGES, unchanged=1)


def test_exclude_change_syncs_and_packs(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    base = BASE.replace('["./usr/share/doc*"]', '["./usr/share/doc*", "./usr/share/man*"]')
    data = variant(capsys, shared, "exclude", {"profiles/base.yaml": base})
    entry = changed(["sync", "pack"], {"exlist": {"added": ["./usr/share/man*"], "removed": []}})
    expect_images(data, dict.fromkeys(BASE_IMAGES, entry))
    assert data["summary"] == summary(pack=BASE_IMAGES, unchanged=1)


def test_image_attribute_is_define_only(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    images = {
        **SMALL_IMAGES,
        "img-compute": {
            **SMALL_IMAGES["img-compute"],
            "attributes": {"addkcmdline": "console=ttyS0"},
        },
    }
    data = variant(capsys, shared, "attribute", {"imagespec.yaml": site_yaml(images)})
    entry = changed(
        ["define"], {"attributes": {"addkcmdline": {"old": None, "new": "console=ttyS0"}}}
    )
    expect_images(data, {"img-compute": entry})
    assert data["summary"] == summary(define=["img-compute"], unchanged=4)


def test_postinstall_script_content_needs_genimage(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    data = variant(capsys, shared, "postinstall-content", {"postinstall/20-b": NEW_SCRIPT})
    entry = changed(PKG_ACTIONS, {"postinstall": {"content": ["20-b"]}})
    expect_images(data, dict.fromkeys(BASE_IMAGES, entry))
    assert data["summary"] == summary(genimage=BASE_IMAGES, unchanged=1)


def test_postinstall_order_change_reports_before_and_after(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    base = BASE.replace("postinstall: [10-a, 20-b]", "postinstall: [20-b, 10-a]")
    data = variant(capsys, shared, "postinstall-order", {"profiles/base.yaml": base})
    for name in BASE_IMAGES:
        image = data["images"][name]
        assert image["status"] == "changed"
        # the scripts' bytes are the same: nothing to sync; the order is in the stanza
        assert image["actions"] == ["define", "genimage", "pack"]
        assert image["changes"]["postinstall"] == {
            "before": ["10-a", "20-b"],
            "after": ["20-b", "10-a"],
        }
        assert set(image["changes"]) <= {"postinstall", "attributes"}
    assert data["images"]["img-lite"] == unchanged_entry()
    assert data["summary"] == summary(genimage=BASE_IMAGES, unchanged=1)


def test_sync_source_content_change_syncs_and_packs(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    data = variant(capsys, shared, "sync-content", {"synclists/etc/motd": "Hello again\n"})
    entry = changed(["sync", "pack"], {"synclist": {"content": ["etc/motd"]}})
    expect_images(data, dict.fromkeys(BASE_IMAGES, entry))
    assert data["summary"] == summary(pack=BASE_IMAGES, unchanged=1)


def test_sync_retarget_to_a_new_source(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    base = BASE.replace("{src: etc/motd, dest", "{src: etc/motd.v2, dest")
    edits = {"profiles/base.yaml": base, "synclists/etc/motd.v2": "Welcome, v2\n"}
    data = variant(capsys, shared, "sync-retarget", edits)
    retarget = {
        "dest": "/etc/motd",
        "old": {"src": ["etc/motd"], "mode": "copy", "nodes": None},
        "new": {"src": ["etc/motd.v2"], "mode": "copy", "nodes": None},
    }
    entry = changed(["sync", "pack"], {"synclist": {"retargeted": [retarget]}})
    expect_images(data, dict.fromkeys(BASE_IMAGES, entry))
    assert data["summary"] == summary(pack=BASE_IMAGES, unchanged=1)


def test_sync_noderange_change_syncs_but_does_not_pack(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    base = BASE.replace("nodes: compute}", "nodes: 'compute,login'}")
    data = variant(capsys, shared, "sync-nodes", {"profiles/base.yaml": base})
    retarget = {
        "dest": "/etc/hosts",
        "old": {"src": ["etc/hosts"], "mode": "copy", "nodes": "compute"},
        "new": {"src": ["etc/hosts"], "mode": "copy", "nodes": "compute,login"},
    }
    entry = changed(["sync"], {"synclist": {"retargeted": [retarget]}})
    expect_images(data, dict.fromkeys(BASE_IMAGES, entry))
    assert data["summary"] == summary(sync=BASE_IMAGES, unchanged=1)


def test_noderange_sync_source_content_change_does_not_pack(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    edits = {"synclists/etc/hosts": "127.0.0.1 localhost\n10.0.0.1 mn\n"}
    data = variant(capsys, shared, "sync-nodes-content", edits)
    entry = changed(["sync"], {"synclist": {"content": ["etc/hosts"]}})
    expect_images(data, dict.fromkeys(BASE_IMAGES, entry))
    assert data["summary"] == summary(sync=BASE_IMAGES, unchanged=1)


def test_litefile_change_on_a_statelite_image_packs(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    lite = LITE.replace(
        "litefile: {/etc/ntp.conf: tmpfs}",
        "litefile: {/etc/ntp.conf: persistent, /var/log/: persistent}",
    )
    data = variant(capsys, shared, "litefile", {"profiles/lite.yaml": lite})
    entry = changed(
        ["sync", "pack"],
        {
            "litefile": {
                "added": [{"file": "/var/log/", "options": "persistent"}],
                "changed": [{"file": "/etc/ntp.conf", "old": "tmpfs", "new": "persistent"}],
            }
        },
    )
    expect_images(data, {"img-lite": entry})
    assert data["summary"] == summary(pack=["img-lite"], unchanged=4)


def test_comments_and_key_order_change_nothing(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    reordered_base = """\
# the root profile, keys in another order
postscripts: [50-site]
postinstall: [10-a, 20-b]
sync:
  - {dest: /etc/motd, src: etc/motd}   # dest first
  - {nodes: compute, dest: /etc/hosts, src: etc/hosts}
exclude: ["./usr/share/doc*"]
packages: [bash, chrony]
description: Root of every interactive and compute image
"""
    edits = {
        "profiles/base.yaml": reordered_base,
        "profiles/aux.yaml": "# admin tools for people\n" + AUX + "# end\n",
        "imagespec.yaml": "# the test site\n" + site_yaml(),
    }
    head = shared.branch("cosmetic", "v1", edits)
    data = diff_json(capsys, shared, "v1", head)
    expect_images(data, {})
    assert data["summary"] == summary(unchanged=5)
    run = diff(capsys, shared, "v1", head, "--exit-code")
    assert run.code == 0, run.err
    assert "0 image(s) change, 0 removed, 5 unchanged" in run.out


def chmod_branch(site: SiteRepo, name: str, rel: str, mode: int) -> str:
    """A branch off v1 whose one commit changes only the mode of a site file."""
    site.repo.git.checkout("-q", "-B", name, "v1")
    try:
        (site.site / rel).chmod(mode)
        return site.commit(f"{name}: chmod")
    finally:
        site.repo.git.checkout("-q", "main")


def test_sync_source_mode_change_syncs_and_packs(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    head = chmod_branch(shared, "sync-mode", "synclists/etc/motd", 0o755)
    data = diff_json(capsys, shared, "v1", head)
    entry = changed(["sync", "pack"], {"synclist": {"content": ["etc/motd"]}})
    expect_images(data, dict.fromkeys(BASE_IMAGES, entry))
    assert data["summary"] == summary(pack=BASE_IMAGES, unchanged=1)


def test_postscript_mode_in_the_repository_does_not_matter(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """Postscripts are always rendered 0755: the images a changed file reaches stay unchanged."""
    head = chmod_branch(shared, "postscript-mode", "postscripts/50-site", 0o644)
    assert shared.repo.git.diff("--name-only", "v1", head) == "postscripts/50-site"
    data = diff_json(capsys, shared, "v1", head)
    expect_images(data, {})
    assert data["summary"] == summary(unchanged=5)


def test_profile_used_by_no_image_changes_nothing(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    edits = {"profiles/spare.yaml": "inherits: [base]\npackages: [emacs]\n"}
    head = shared.branch("spare", "v1", edits)
    data = diff_json(capsys, shared, "v1", head)
    expect_images(data, {})
    assert diff(capsys, shared, "v1", head, "--exit-code").code == 0


def test_renamed_ancestor_profile_changes_nothing(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    head = shared.branch("rename-base", "v1", RENAMED_BASE)
    data = diff_json(capsys, shared, "v1", head)
    expect_images(data, {})
    assert data["summary"] == summary(unchanged=5)
    assert diff(capsys, shared, "v1", head, "--exit-code").code == 0


def test_image_added_and_image_removed(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    images = {k: v for k, v in SMALL_IMAGES.items() if k != "img-compute"}
    images["img-extra"] = {"profile": "extra", "distro": "rocky8"}
    edits = {
        "imagespec.yaml": site_yaml(images),
        "profiles/extra.yaml": "inherits: [base]\npackages: [htop]\n",
    }
    data = variant(capsys, shared, "add-remove", edits)
    assert data["images"]["img-extra"]["status"] == "added"
    assert data["images"]["img-extra"]["actions"] == ["sync", "define", "genimage", "pack"]
    assert data["images"]["img-compute"]["status"] == "removed"
    assert data["images"]["img-compute"]["actions"] == []
    for name in ("img-aux", "img-legacy", "img-lite", "img-login"):
        assert data["images"][name] == unchanged_entry()
    assert data["summary"] == summary(genimage=["img-extra"], removed=["img-compute"], unchanged=4)


def test_frozen_image_change_is_still_reported(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy = LEGACY.replace("[python2]", "[python2, perl]")
    data = variant(capsys, shared, "frozen", {"profiles/legacy.yaml": legacy})
    entry = changed(PKG_ACTIONS, {"pkglist": {"added": ["perl"], "removed": []}})
    expect_images(data, {"img-legacy": entry})
    assert data["summary"] == summary(genimage=["img-legacy"], unchanged=4)
    run = diff(capsys, shared, "v1", "frozen", "--exit-code")
    assert run.code == 2
    assert (
        "  img-legacy: sync, genimage, pack (via legacy; frozen: will not be applied)"
        in run.out.splitlines()
    )
    assert "1 frozen (not applied)" in run.out.splitlines()[0]
    assert "0 image(s) change" in run.out.splitlines()[0]
    assert "frozen: changes not applied (1)" in run.out.splitlines()


def test_freezing_an_image_needs_nothing_on_a_director(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """Freezing changes no file, digest or definition: no action, so not a change (decisions.md)."""
    images = {**SMALL_IMAGES, "img-compute": {**SMALL_IMAGES["img-compute"], "frozen": True}}
    data = variant(capsys, shared, "freeze", {"imagespec.yaml": site_yaml(images)})
    compute = data["images"]["img-compute"]
    assert compute == {"status": "unchanged", "actions": [], "changes": {}}


def test_exit_code_agrees_with_the_text_report_when_an_image_is_frozen(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    images = {**SMALL_IMAGES, "img-compute": {**SMALL_IMAGES["img-compute"], "frozen": True}}
    head = shared.branch("freeze-text", "v1", {"imagespec.yaml": site_yaml(images)})
    run = diff(capsys, shared, "v1", head, "--exit-code")
    says_nothing_changed = "0 image(s) change, 0 removed" in run.out
    assert (run.code == 0) == says_nothing_changed
    if run.code == 2:
        assert "img-compute" in run.out


# ---------------------------------------------------------------- revisions


def test_no_revision_compares_head_with_a_clean_work_tree(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    data = diff_json(capsys, shared)
    assert data["base"] == shared.sha("main")
    assert data["head"] == "worktree"
    expect_images(data, {})
    assert diff(capsys, shared, "--exit-code").code == 0


def test_base_only_compares_with_the_work_tree(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    data = diff_json(capsys, shared, "v1")
    assert (data["base"], data["head"]) == (shared.sha("v1"), "worktree")
    entry = changed(PKG_ACTIONS, {"pkglist": {"added": ["tmux"], "removed": []}})
    expect_images(data, {"img-aux": entry, "img-login": entry})


@pytest.mark.parametrize(
    "revs",
    [
        ("v1", "main"),
        ("v1..main",),
        ("v1", "HEAD"),
        ("v1..",),
        ("main~1", "main"),
        ("rel-1", "main"),
        ("refs/tags/v1", "refs/heads/main"),
        ("SHA:v1", "SHA:main"),
        ("SHA10:v1", "SHA10:main"),
    ],
)
def test_revision_forms_of_two_commits(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str], revs: tuple[str, ...]
) -> None:
    def spell(rev: str) -> str:
        if rev.startswith("SHA:"):
            return shared.sha(rev[4:])
        if rev.startswith("SHA10:"):
            return shared.sha(rev[6:])[:10]
        return rev

    data = diff_json(capsys, shared, *(spell(r) for r in revs))
    assert (data["base"], data["head"]) == (shared.sha("v1"), shared.sha("main"))
    entry = changed(PKG_ACTIONS, {"pkglist": {"added": ["tmux"], "removed": []}})
    expect_images(data, {"img-aux": entry, "img-login": entry})
    assert data["summary"] == summary(genimage=["img-aux", "img-login"], unchanged=3)


def test_three_dots_compare_against_the_merge_base(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    data = diff_json(capsys, shared, "main...feature")
    assert (data["base"], data["head"]) == (shared.sha("v1"), shared.sha("feature"))
    hwloc = changed(PKG_ACTIONS, {"pkglist": {"added": ["hwloc"], "removed": []}})
    expect_images(data, {"img-compute": hwloc})


def test_two_dots_compare_the_two_tips(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    data = diff_json(capsys, shared, "main..feature")
    assert (data["base"], data["head"]) == (shared.sha("main"), shared.sha("feature"))
    no_tmux = changed(PKG_ACTIONS, {"pkglist": {"added": [], "removed": ["tmux"]}})
    hwloc = changed(PKG_ACTIONS, {"pkglist": {"added": ["hwloc"], "removed": []}})
    expect_images(data, {"img-aux": no_tmux, "img-login": no_tmux, "img-compute": hwloc})


def test_remote_tracking_branches(
    shared: SiteRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = clone(shared, tmp_path / "clone")
    try:
        data = diff_json(capsys, copy, "origin/main~1", "origin/main")
        entry = changed(PKG_ACTIONS, {"pkglist": {"added": ["tmux"], "removed": []}})
        expect_images(data, {"img-aux": entry, "img-login": entry})
        # a pull request: a local branch off origin/main with one commit
        copy.repo.git.checkout("-q", "-b", "pr", "origin/main")
        head = copy.commit("pr", {"profiles/compute.yaml": COMPUTE_HWLOC})
        hwloc = changed(PKG_ACTIONS, {"pkglist": {"added": ["hwloc"], "removed": []}})
        for revs in (("origin/main...HEAD",), ("origin/main", head), ("origin/main",)):
            data = diff_json(capsys, copy, *revs)
            assert data["base"] == shared.sha("main")
            expect_images(data, {"img-compute": hwloc})
        # origin/feature is v1 + hwloc; against origin/main, its merge base is v1
        data = diff_json(capsys, copy, "origin/main...origin/feature")
        assert data["base"] == shared.sha("v1")
        expect_images(data, {"img-compute": hwloc})
    finally:
        copy.repo.close()


def test_global_json_option(shared: SiteRepo, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ("--json", "--site", str(shared.site), "diff", "v1", "main"),
        ("--site", str(shared.site), "diff", "v1", "main", "--json"),
    ):
        run = run_main(capsys, *argv)
        data = run.json()
        assert data["summary"] == summary(genimage=["img-aux", "img-login"], unchanged=3)


def test_three_dots_without_a_merge_base_is_an_error(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    shared.repo.git.checkout("-q", "--orphan", "unrelated")
    try:
        shared.commit("unrelated history", {"profiles/compute.yaml": COMPUTE_HWLOC})
    finally:
        shared.repo.git.checkout("-q", "-f", "main")
    run = diff(capsys, shared, "main...unrelated", "--exit-code")
    assert_clean_failure(run)
    assert "merge base" in run.err


def test_repository_without_commits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import git

    root = write_tree(tmp_path / "fresh", small_site())
    git.Repo.init(root).close()
    run = run_main(capsys, "--site", str(root), "diff", "--exit-code")
    assert_clean_failure(run)
    assert "'HEAD'" in run.err


# ---------------------------------------------------------------- the work tree


@pytest.fixture
def own(tmp_path: Path) -> Iterator[SiteRepo]:
    """A fresh repository holding the small site, one commit on main."""
    site = init_repo(tmp_path / "repo", small_site())
    yield site
    site.repo.close()


def test_work_tree_includes_untracked_files_but_not_ignored_ones(
    own: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    images = {**SMALL_IMAGES, "img-extra": {"profile": "extra", "distro": "rocky8"}}
    (own.site / "imagespec.yaml").write_text(site_yaml(images))
    # untracked, not ignored: used by the new image
    (own.site / "profiles/extra.yaml").write_text("inherits: [base]\npackages: [htop]\n")
    # ignored: a scratch profile that is not even valid YAML
    (own.site / ".gitignore").write_text("profiles/scratch.yaml\n")
    (own.site / "profiles/scratch.yaml").write_text("packages: [unclosed\n")
    assert own.repo.git.status("--porcelain", "--untracked-files=all").splitlines() == [
        " M imagespec.yaml",
        "?? .gitignore",
        "?? profiles/extra.yaml",
    ]
    data = diff_json(capsys, own)
    assert data["head"] == "worktree"
    assert data["images"]["img-extra"]["status"] == "added"
    assert data["images"]["img-extra"]["actions"] == ["sync", "define", "genimage", "pack"]
    for name in ALL_IMAGES:
        assert data["images"][name] == unchanged_entry()
    assert data["summary"] == summary(genimage=["img-extra"], unchanged=5)
    # control: once it is no longer ignored, the broken scratch profile is read
    (own.site / ".gitignore").unlink()
    run = diff(capsys, own)
    assert_clean_failure(run)
    assert "profiles/scratch.yaml:" in run.err


def test_work_tree_deletion_of_a_tracked_file(
    own: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    images = {k: v for k, v in SMALL_IMAGES.items() if k != "img-legacy"}
    (own.site / "imagespec.yaml").write_text(site_yaml(images))
    (own.site / "profiles/legacy.yaml").unlink()
    data = diff_json(capsys, own)
    assert data["images"]["img-legacy"] == {"status": "removed", "actions": [], "changes": {}}
    assert data["summary"] == summary(removed=["img-legacy"], unchanged=4)


def symlinked_motd(site: SiteRepo) -> None:
    """synclists/etc/motd becomes a relative symlink to a file with the very same bytes."""
    motd = site.site / "synclists/etc/motd"
    (site.site / "synclists/etc/motd.real").write_bytes(motd.read_bytes())
    motd.unlink()
    motd.symlink_to("motd.real")


def test_unmodified_symlinked_sync_source_is_no_change(
    own: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    symlinked_motd(own)
    own.commit("motd through a symlink")
    assert own.repo.git.status("--porcelain") == ""
    data = diff_json(capsys, own)
    expect_images(data, {})


def test_sync_source_replaced_by_an_identical_symlink_is_no_change(
    own: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    first = own.sha("HEAD")
    symlinked_motd(own)
    second = own.commit("motd through a symlink")
    data = diff_json(capsys, own, first, second)
    expect_images(data, {})


def test_work_tree_modification_of_a_tracked_file(
    own: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    (own.site / "profiles/aux.yaml").write_text(AUX_TMUX)
    data = diff_json(capsys, own)
    assert (data["base"], data["head"]) == (own.sha("HEAD"), "worktree")
    entry = changed(PKG_ACTIONS, {"pkglist": {"added": ["tmux"], "removed": []}})
    expect_images(data, {"img-aux": entry, "img-login": entry})
    assert diff(capsys, own, "--exit-code").code == 2


def test_two_commits_ignore_the_work_tree_and_leave_it_alone(
    own: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    first = own.sha("HEAD")
    second = own.commit("tmux", {"profiles/aux.yaml": AUX_TMUX})
    # unrelated uncommitted edits, a staged one, an untracked file, and a broken profile
    (own.site / "profiles/compute.yaml").write_text(COMPUTE_HWLOC)
    own.repo.git.add("profiles/compute.yaml")
    (own.site / "profiles/legacy.yaml").write_text(LEGACY.replace("[python2]", "[python2, perl]"))
    (own.site / "profiles/aux.yaml").write_text("packages: [broken\n")
    (own.site / "synclists/etc/untracked").write_text("not committed\n")
    (own.site / "imagespec.yaml").write_text(site_yaml() + "bogus_key: 1\n")
    before = snapshot(own.top)
    status = own.repo.git.status("--porcelain", "--untracked-files=all")
    staged = own.repo.git.diff("--cached")
    data = diff_json(capsys, own, first, second)
    assert (data["base"], data["head"]) == (first, second)
    entry = changed(PKG_ACTIONS, {"pkglist": {"added": ["tmux"], "removed": []}})
    expect_images(data, {"img-aux": entry, "img-login": entry})
    assert data["summary"] == summary(genimage=["img-aux", "img-login"], unchanged=3)
    assert snapshot(own.top) == before
    assert own.repo.git.status("--porcelain", "--untracked-files=all") == status
    assert own.repo.git.diff("--cached") == staged
    assert own.repo.head.commit.hexsha == second
    assert own.repo.active_branch.name == "main"
    assert own.repo.git.stash("list") == ""


@pytest.mark.parametrize("subdir", ["cluster/site", "cluster/my sité"])
def test_site_in_a_subdirectory_of_the_repository(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    subdir: str,
) -> None:
    top = tmp_path / "repo"
    site = init_repo(top, small_site(), subdir=subdir)
    try:
        # files outside the site, even ones that look like site files, do not matter
        (top / "README.md").write_text("the cluster\n")
        (top / "profiles").mkdir()
        (top / "profiles/aux.yaml").write_text("packages: [broken\n")
        (top / "imagespec.yaml").write_text("not: [a site\n")
        first = site.sha("HEAD")
        second = site.commit("tmux", {"profiles/aux.yaml": AUX_TMUX})
        entry = changed(PKG_ACTIONS, {"pkglist": {"added": ["tmux"], "removed": []}})
        data = diff_json(capsys, site, first, second)
        assert (data["base"], data["head"]) == (first, second)
        expect_images(data, {"img-aux": entry, "img-login": entry})
        # found by walking up from inside the site, with the work tree as HEAD
        monkeypatch.chdir(site.site / "profiles")
        (site.site / "profiles/compute.yaml").write_text(COMPUTE_HWLOC)
        run = run_main(capsys, "diff", first, "--format", "json")
        assert run.code == 0, run.err
        data = run.json()
        assert (data["base"], data["head"]) == (first, "worktree")
        hwloc = changed(PKG_ACTIONS, {"pkglist": {"added": ["hwloc"], "removed": []}})
        expect_images(data, {"img-aux": entry, "img-login": entry, "img-compute": hwloc})
    finally:
        site.repo.close()


def test_base_without_a_site_adds_every_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = init_repo(tmp_path / "repo", {"README.md": "nothing yet\n"})
    try:
        first = site.sha("HEAD")
        second = site.commit("the site", small_site())
        data = diff_json(capsys, site, first, second)
        for name in ALL_IMAGES:
            assert data["images"][name]["status"] == "added"
            assert data["images"][name]["actions"] == ["sync", "define", "genimage", "pack"]
        assert data["summary"] == summary(genimage=ALL_IMAGES)
    finally:
        site.repo.close()


# ---------------------------------------------------------------- errors


def test_outside_a_git_repository(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_tree(tmp_path / "plain", small_site())
    for extra in ((), ("--exit-code",)):
        run = run_main(capsys, "--site", str(root), "diff", *extra)
        assert_clean_failure(run)
        assert "git" in run.err


@pytest.mark.parametrize(
    "revs",
    [("nosuchrev",), ("v1", "nosuchrev"), ("nosuchrev..main",), ("main...nosuchrev",)],
)
def test_unknown_revision(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str], revs: tuple[str, ...]
) -> None:
    run = diff(capsys, shared, *revs, "--exit-code")
    assert_clean_failure(run)
    assert "'nosuchrev'" in run.err
    assert run.out == ""


def test_two_forms_at_once_is_a_usage_error(
    shared: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    run = diff(capsys, shared, "v1..main", "feature", "--exit-code")
    assert_clean_failure(run)


POSITION = re.compile(r"^profiles/aux\.yaml:\d+:\d+: \S")


def test_invalid_yaml_in_the_work_tree(own: SiteRepo, capsys: pytest.CaptureFixture[str]) -> None:
    (own.site / "profiles/aux.yaml").write_text("inherits: [base]\npackages: [vim\n")
    for extra in ((), ("--exit-code",), ("--format", "markdown")):
        run = diff(capsys, own, *extra)
        assert_clean_failure(run)
        assert any(POSITION.match(line) for line in run.err.splitlines()), run.err


def test_invalid_yaml_in_a_commit_names_the_revision(
    own: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    first = own.sha("HEAD")
    broken = own.commit("broken", {"profiles/aux.yaml": "inherits: [base]\npackages: [vim\n"})
    own.repo.git.checkout("-q", first)  # the work tree is fine again
    run = diff(capsys, own, first, broken, "--exit-code")
    assert_clean_failure(run)
    pattern = re.compile(rf"^{broken[:10]}:profiles/aux\.yaml:\d+:\d+: \S")
    assert any(pattern.match(line) for line in run.err.splitlines()), run.err


# ---------------------------------------------------------------- exit codes


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
@pytest.mark.parametrize(
    ("revs", "flag", "code"),
    [
        (("main", "main"), True, 0),
        (("v1", "main"), True, 2),
        (("v1", "main"), False, 0),
        (("main", "main"), False, 0),
        (("v1", "nosuchrev"), True, 1),
        (("v1", "nosuchrev"), False, 1),
    ],
)
def test_exit_code_contract(
    shared: SiteRepo,
    capsys: pytest.CaptureFixture[str],
    fmt: str,
    revs: tuple[str, ...],
    flag: bool,
    code: int,
) -> None:
    run = diff(capsys, shared, *revs, "--format", fmt, *(("--exit-code",) if flag else ()))
    assert run.code == code, run.err
    if code == 1:
        assert_clean_failure(run)
    else:
        assert run.out


def test_exit_code_through_a_shell(shared: SiteRepo) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    base = [sys.executable, "-m", "imagespec.cli", "diff", "--exit-code", "--format", "json"]
    codes = {}
    for name, revs in {"change": ["v1", "main"], "none": ["main"], "error": ["nosuchrev"]}.items():
        proc = subprocess.run(
            [*base, *revs],
            cwd=shared.site / "profiles",
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert "Traceback" not in proc.stderr
        codes[name] = proc.returncode
    assert codes == {"change": 2, "none": 0, "error": 1}


# ---------------------------------------------------------------- director choice


@pytest.fixture
def directors(tmp_path: Path) -> Iterator[SiteRepo]:
    """prod follows main, test follows dev; HEAD is `feature` (followed by none), one commit on."""
    site = init_repo(tmp_path / "repo", small_site(directors=TWO_DIRECTORS))
    site.repo.git.branch("dev")
    site.repo.git.checkout("-q", "-b", "feature")
    site.commit("tmux", {"profiles/aux.yaml": AUX_TMUX})
    yield site
    site.repo.close()


def director_of(run: Run) -> str:
    assert run.code == 0, run.err
    match = re.search(r" on director (\S+): ", run.out.splitlines()[0])
    assert match, run.out
    return match.group(1)


@pytest.mark.parametrize(
    ("argv", "director"),
    [
        (("main",), "prod"),
        (("dev",), "test"),
        (("main", "--director", "test"), "test"),
        (("dev", "-d", "prod"), "prod"),
        (("main", "--branch", "dev"), "test"),
        (("main...HEAD",), "prod"),
        (("refs/heads/dev",), "test"),
    ],
)
def test_director_follows_the_base_branch(
    directors: SiteRepo,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    director: str,
) -> None:
    assert director_of(diff(capsys, directors, *argv)) == director


def test_current_branch_comes_before_the_base_branch(
    directors: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    directors.repo.git.checkout("-q", "dev")
    assert director_of(diff(capsys, directors, "main")) == "test"


def test_base_that_names_no_branch_needs_a_director(
    directors: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    for revs in (("HEAD~1",), (), ("main~0", "HEAD")):
        run = diff(capsys, directors, *revs)
        assert_clean_failure(run)
        assert "--director" in run.err
        assert "prod, test" in run.err


def test_origin_branch_picks_its_director_in_a_clone(
    directors: SiteRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = clone(directors, tmp_path / "clone")
    try:
        copy.repo.git.checkout("-q", "-b", "pr")
        assert director_of(diff(capsys, copy, "origin/main")) == "prod"
        assert director_of(diff(capsys, copy, "origin/dev...HEAD")) == "test"
        assert director_of(diff(capsys, copy, "origin/main", "--branch", "dev")) == "test"
    finally:
        copy.repo.close()


def test_branch_followed_by_no_director(
    directors: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    run = diff(capsys, directors, "main", "--branch", "nob", "--exit-code")
    assert_clean_failure(run)
    assert "prod, test" in run.err
