"""The README's main job on the bundled example site: the stand-in repository
built from demo-repo/specs, and every image of the `local` director really built.

Guards the demo against the example site and the stand-in packages drifting
apart (a profile naming a package no spec provides breaks `scripts/demo`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import git
import pytest

from tests.integration.sites import IDENTITY

REPO_ROOT = Path(__file__).resolve().parents[2]
SITE_PARTS = ["imagespec.yaml", "profiles", "postinstall", "postscripts", "synclists"]
IMAGESPEC = [sys.executable, "-m", "imagespec.cli"]

pytestmark = pytest.mark.slow


def imagespec(site: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*IMAGESPEC, *argv], cwd=site, capture_output=True, text=True, check=False
    )


@pytest.fixture
def demo_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in IDENTITY.items():
        monkeypatch.setenv(key, value)
    site = tmp_path / "site"
    for part in SITE_PARTS:
        src = REPO_ROOT / part
        if src.is_dir():
            shutil.copytree(src, site / part, symlinks=True)
        else:
            site.mkdir(exist_ok=True)
            shutil.copy2(src, site / part)
    shutil.copytree(REPO_ROOT / "demo-repo/specs", site / "demo-repo/specs")
    (site / "scripts").mkdir()
    shutil.copy2(REPO_ROOT / "scripts/demo-repo", site / "scripts/demo-repo")
    repo = git.Repo.init(site, initial_branch="main")
    repo.git.add("-A")
    repo.index.commit("example site")
    built = subprocess.run(["scripts/demo-repo"], cwd=site, capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr
    return site


def test_the_example_site_builds_every_image_with_the_stand_in_packages(
    demo_site: Path,
) -> None:
    first = imagespec(demo_site, "apply", "-d", "local", "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "9 done, 0 failed" in first.stdout
    status = imagespec(demo_site, "status", "-d", "local", "--json")
    assert status.returncode == 0, status.stdout
    images = json.loads(status.stdout)["images"]
    assert all(entry["status"] == "ok" for entry in images.values())
    for name in images:
        built = imagespec(demo_site, "show", name, "-d", "local", "--built", "--json")
        assert built.returncode == 0, built.stderr
        doc = json.loads(built.stdout)
        assert doc["missing"] == [] and doc["erased_but_installed"] == [], name
    again = imagespec(demo_site, "apply", "-d", "local", "--yes")
    assert again.returncode == 0
    assert "0 done, 0 failed, 10 unchanged; 0 file(s) written" in again.stdout
