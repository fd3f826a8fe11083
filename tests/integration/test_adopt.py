"""`imagespec adopt`: a flat xCAT site imported, adopted, and a first apply that builds nothing.

The director is the xCAT stand-in with the flat site's osimages (mkdef -z of
`lsdef -z` text) and litefile rows (tabrestore), and fake built rootimgdirs
(tests/flatsite.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.flatsite import (
    FlatSite,
    load_into_stub,
    write_files,
    write_msc_site,
    write_sample_site,
)
from tests.helpers import dump_yaml
from tests.integration.sites import Clock, SiteRepo, new_repo, run_main, work_in
from tests.sshd import SshServer
from tests.xcatstub import install_stub, read_calls

BUILDS = {"genimage", "packimage", "liteimg"}
COMPUTE = "rocky8-x86_64-netboot-compute"


class Director:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        self.state = tmp_path / "xcat"
        self.install = tmp_path / "install"
        self.bin = install_stub(tmp_path / "xcat-bin", self.state, installdir=self.install)
        monkeypatch.setenv("PATH", f"{self.bin}{os.pathsep}{os.environ['PATH']}")
        self.tmp = tmp_path

    def load(self, site: FlatSite) -> None:
        load_into_stub(self.bin, site, self.install, self.tmp)

    def builds(self, since: int = 0) -> list[list[str]]:
        calls = read_calls(self.state)[since:]
        return [[c["cmd"], *c["args"]] for c in calls if c["cmd"] in BUILDS]


@pytest.fixture
def director(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Director:
    return Director(tmp_path, monkeypatch)


def imported(
    capsys: pytest.CaptureFixture[str],
    director: Director,
    monkeypatch: pytest.MonkeyPatch,
    site: FlatSite,
) -> SiteRepo:
    """The flat site imported into a new git repository, committed, as the current dir."""
    stanzas, litefile = write_files(director.install, site, director.tmp)
    out = director.tmp / "site"
    run = run_main(
        capsys,
        "import",
        "--stanzas",
        str(stanzas),
        "--install",
        str(director.install),
        "--install-root",
        str(director.install),
        "--litefile",
        str(litefile),
        "--out",
        str(out),
        "--name",
        "cascade",
    )
    assert run.code == 0, run.out + run.err
    return work_in(SiteRepo(new_repo(out), out, out, Clock()), monkeypatch)


def test_an_imported_site_is_adopted_and_its_first_apply_builds_nothing(
    capsys: pytest.CaptureFixture[str], director: Director, monkeypatch: pytest.MonkeyPatch
) -> None:
    flat = write_msc_site(director.install, str(director.install))
    director.load(flat)
    assert len(flat.images) >= 8
    imported(capsys, director, monkeypatch, flat)
    run = run_main(capsys, "validate", "--strict")
    assert run.code == 0, run.out + run.err

    adopt = run_main(capsys, "adopt", "--json")
    assert adopt.code == 0, adopt.out + adopt.err
    report = adopt.json()
    assert report["summary"]["adopted"] == flat.images, report["images"]
    for name, done in report["images"].items():
        assert done["adopted"][:2] == ["build", "pack"], (name, done)
        assert done["generation"] == 0
    # The rendered lists live under the new prefix: the definitions still name the old ones.
    assert any("apply defines it" in r for r in report["images"][COMPUTE]["reasons"])
    root = director.install / "netboot/rocky8/x86_64/compute"
    assert os.readlink(root) == ".compute.imagespec/0"
    assert (root / "rootimg/etc/os-release").exists(), "nodes still boot the same root"

    plan = run_main(capsys, "plan", "--json").json()
    assert plan["summary"]["genimage"] == [] and plan["summary"]["pack"] == [], plan["summary"]
    assert sorted(plan["summary"]["define"]) == flat.images
    assert run_main(capsys, "apply", "--yes").code == 0
    assert director.builds() == []
    assert run_main(capsys, "plan", "--exit-code").code == 0
    # adopt recorded the director files the packed images hold: a change owes a re-pack
    key = director.install / "custom/secrets/munge.key"
    key.write_text("a new key\n")
    plan = run_main(capsys, "plan", "--json").json()
    assert plan["summary"]["genimage"] == []
    assert sorted(plan["summary"]["pack"]) == flat.images
    reasons = plan["images"][COMPUTE]["reasons"]
    assert any(f"director file {key} changed" in r for r in reasons), reasons


def test_an_image_that_means_something_else_is_not_adopted(
    capsys: pytest.CaptureFixture[str], director: Director, monkeypatch: pytest.MonkeyPatch
) -> None:
    flat = write_msc_site(director.install, str(director.install), director_sources=False)
    director.load(flat)
    repo = imported(capsys, director, monkeypatch, flat)
    # git now says compute has one more package, and service's exlist one more pattern
    compute = repo.site / "profiles/compute.yaml"
    doc = YAML(typ="safe").load(compute.read_text())
    doc["packages"] = [*doc.get("packages", []), "likwid"]
    compute.write_text(dump_yaml(doc))
    repo.commit("compute: likwid")
    report = run_main(capsys, "adopt", "--json").json()
    compute_done = report["images"][COMPUTE]
    assert compute_done["adopted"] == []
    assert any("build inputs differ" in r and "likwid" in r for r in compute_done["reasons"])
    plan = run_main(capsys, "plan", "--json").json()
    assert COMPUTE in plan["summary"]["genimage"]
    assert "rocky8-x86_64-netboot-login" not in plan["summary"]["genimage"]


def test_adopt_dry_run_records_and_moves_nothing(
    capsys: pytest.CaptureFixture[str], director: Director, monkeypatch: pytest.MonkeyPatch
) -> None:
    flat = write_msc_site(director.install, str(director.install), director_sources=False)
    director.load(flat)
    imported(capsys, director, monkeypatch, flat)
    run = run_main(capsys, "adopt", "--dry-run")
    assert run.code == 0, run.err
    assert "adopted (build, pack)" in run.out
    assert not (director.install / "netboot/rocky8/x86_64/compute").is_symlink()
    assert not (director.install / "cascade/.imagespec/state.json").exists()


@pytest.mark.slow
def test_adopt_over_ssh_reads_the_definitions_and_files_on_the_director(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sshd: SshServer,
    stub_bin: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in sshd.env().items():
        monkeypatch.setenv(key, value)
    install = tmp_path / "remote-install"
    flat = write_sample_site(install, str(install))
    load_into_stub(stub_bin, flat, install, tmp_path)
    out = tmp_path / "site"
    run = run_main(
        capsys, "import", "--host", sshd.alias, "--install-root", str(install), "--out", str(out)
    )
    assert run.code == 0, run.out + run.err
    work_in(SiteRepo(new_repo(out), out, out, Clock()), monkeypatch)
    report = run_main(capsys, "adopt", "--json").json()
    assert report["summary"]["adopted"] == flat.images, report["images"]
    plan = run_main(capsys, "plan", "--json").json()
    assert plan["summary"]["genimage"] == [] and plan["summary"]["pack"] == []
    assert os.readlink(install / "netboot/rocky8/x86_64/compute") == ".compute.imagespec/0"
