"""plan --check-packages and validate --repos against real repositories (createrepo_c, dnf)."""

from __future__ import annotations

import copy
import json
import shutil
import socket

import pytest

from tests.helpers import dump_yaml
from tests.integration.sites import NATIVE_PROFILES, NativeSite, native_site_doc, run_main


def _line_of(text: str, needle: str) -> tuple[int, int]:
    """1-based line and column of `needle` in a profile's YAML (the list item's value)."""
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number, line.index(needle) + 1
    raise AssertionError(needle)


def _add_htop(native: NativeSite) -> str:
    """compute lists htop, which no repository has; the place its entry has in the profile."""
    doc = copy.deepcopy(NATIVE_PROFILES["compute"])
    doc["packages"] = ["tool-a", "htop", "#NEW_INSTALL_LIST#", "tool-b"]
    native.profile("compute", doc)
    native.commit("compute wants htop")
    text = (native.site / "profiles/compute.yaml").read_text()
    line, col = _line_of(text, "htop")
    return f"profiles/compute.yaml:{line}:{col}"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_plan_names_a_missing_package_with_its_profile_line(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    place = _add_htop(native)
    run = run_main(capsys, "plan", "--check-packages")
    assert run.code == 1, run
    media = native.repos / "media"
    assert (
        f"{place}: package 'htop' is in none of the repositories of img-compute, img-lite"
        f" (pkgdir {media})\n"
    ) in run.err
    assert "Traceback" not in run.err
    assert run.err.count("htop") == 1  # one line for both images, not one per image
    assert "1 missing" in run.out
    assert not native.install.exists() or not any(native.install.rglob("rootimg"))


def test_plan_json_lists_missing_packages_and_nothing_built(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    place = _add_htop(native)
    run = run_main(capsys, "plan", "--check-packages", "--json")
    assert run.code == 1
    packages = json.loads(run.out)["packages"]
    assert sorted(packages["checked"]) == ["img-base", "img-compute", "img-lite"]
    assert packages["not_checked"] == []
    [missing] = packages["missing"]
    assert missing["package"] == "htop"
    assert missing["images"] == ["img-compute", "img-lite"]
    assert f"{missing['file']}:{missing['line']}:{missing['column']}" == place
    # one query per repository set: the pkglist's, and each otherpkglist section's
    assert packages["queries"] == 2


def test_plan_finds_every_package_of_the_native_site(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    """pkglist and otherpkglist (hpc/hpc-app from otherpkgdir/hpc) entries all found."""
    run = run_main(capsys, "plan", "--check-packages")
    assert run.code == 0, run
    assert "packages of 3 images on director here looked up in 2 repository sets: all found" in (
        run.out
    )
    assert run.err.count("package") == 0


def test_otherpkg_missing_from_its_subdirectory_is_named(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = copy.deepcopy(NATIVE_PROFILES["compute"])
    doc["otherpkgs"] = ["hpc/hpc-app", "hpc/tool-c"]
    native.profile("compute", doc)
    native.commit("compute wants tool-c")
    run = run_main(capsys, "plan", "--check-packages", "--only", "img-compute")
    assert run.code == 1
    assert "package 'tool-c' is in none of the repositories of img-compute (pkgdir" in run.err
    assert f"otherpkgdir {native.repos / 'other'} (hpc/)" in run.err


def test_a_provided_capability_is_not_missing(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    """dnf installs by capability, name-version and name.arch too; groups are not checked."""
    doc = copy.deepcopy(NATIVE_PROFILES["compute"])
    doc["packages"] = ["tool-b-compat", "tool-a-1.0", "core.noarch", "@core-group"]
    native.profile("compute", doc)
    native.commit("by capability, by version and arch, a group")
    run = run_main(capsys, "plan", "--check-packages", "--only", "img-compute")
    assert run.code == 0, run
    assert "all found" in run.out


def test_unreachable_repository_is_not_checked_and_plan_goes_on(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = native_site_doc(native.repos, native.install, {})
    doc["distros"]["rocky8"]["pkgdir"] = f"http://127.0.0.1:{_closed_port()}/el8/"
    native.write("imagespec.yaml", dump_yaml(doc))
    _add_htop(native)
    run = run_main(capsys, "plan", "--check-packages")
    assert run.code == 0, run
    assert "warning: packages not checked for img-base, img-compute, img-lite: dnf" in run.err
    assert "htop" not in run.err
    assert "plan for director here" in run.out


def test_missing_dnf_is_not_checked(
    native: NativeSite, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = native.top.parent / "no-dnf-bin"
    empty.mkdir()
    for tool in ("sh", "find", "sort", "test", "true", "dirname"):
        found = shutil.which(tool)
        assert found is not None
        (empty / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(empty))  # the director's tools, but no dnf
    run = run_main(capsys, "validate", "--repos")
    assert run.code == 0, run
    assert "packages not checked for img-base" in run.err
    assert "dnf is not installed" in run.err


def test_validate_repos_reports_missing_packages(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    place = _add_htop(native)
    run = run_main(capsys, "validate", "--repos")
    assert run.code == 1
    assert f"{place}: package 'htop' is in none of the repositories" in run.err
    run = run_main(capsys, "validate", "--repos", "--json")
    assert run.code == 1
    doc = json.loads(run.out)
    assert doc["ok"] is False
    [problem] = [p for p in doc["problems"] if p["severity"] == "error"]
    assert f"{problem['file']}:{problem['line']}:{problem['column']}" == place
    assert problem["message"].startswith("package 'htop' is in none of the repositories")
    assert doc["packages_not_checked"] == []


def test_validate_without_repos_does_not_look(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_htop(native)
    run = run_main(capsys, "validate")
    assert run.code == 0
    assert "htop" not in run.err
