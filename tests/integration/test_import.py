"""`imagespec import` end to end: flat xCAT sites (tests/flatsite.py) -> a new site, proved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from imagespec.importer.factor import duplicated_entries
from tests.flatsite import (
    FlatSite,
    load_into_stub,
    write_files,
    write_msc_site,
    write_sample_site,
)
from tests.integration.sites import run_main
from tests.sshd import SshServer


def _import(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    site: FlatSite,
    *extra: str,
    out_name: str = "out",
) -> tuple[int, str, str, Path]:
    stanzas, litefile = write_files(tmp_path / "install", site, tmp_path)
    out = tmp_path / out_name
    code, stdout, stderr = run_main(
        capsys,
        "import",
        "--stanzas",
        str(stanzas),
        "--install",
        str(tmp_path / "install"),
        "--litefile",
        str(litefile),
        "--out",
        str(out),
        *extra,
    )
    return code, stdout, stderr, out


def _entries(out: Path) -> dict[str, list[tuple[str, Any]]]:
    yaml = YAML(typ="safe")
    profiles = {}
    for path in sorted((out / "profiles").glob("*.yaml")):
        data = yaml.load(path.read_text()) or {}
        entries: list[tuple[str, Any]] = []
        for key, value in data.items():
            if isinstance(value, list) and key != "inherits":
                entries += [(key, json.dumps(v, sort_keys=True)) for v in value]
            elif isinstance(value, dict):
                entries += [(key, (k, v)) for k, v in value.items()]
        profiles[path.stem] = entries
    return profiles


def _validate(capsys: pytest.CaptureFixture[str], out: Path) -> None:
    code, stdout, stderr = run_main(capsys, "validate", "--strict", "--site", str(out))
    assert code == 0, stdout + stderr


def test_xcat_sample_lists_import_without_loss(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    site = write_sample_site(tmp_path / "install")
    code, stdout, stderr, out = _import(capsys, tmp_path, site, "--json")
    assert code == 0, stdout + stderr
    report = json.loads(stdout)
    assert all(not i["losses"] for i in report["images"].values()), report["images"]
    assert report["images"]["rocky8-x86_64-statelite-compute"]["profile"] == "statelite-compute"
    assert {r["file"] for r in report["site_rows"]} == {
        "/etc/adjtime",
        "/etc/securetty",
        "/var/log/",
    }
    assert (
        report["profiles"]["common"]["made"] == "common"
    )  # the core packages compute and service share
    _validate(capsys, out)
    assert duplicated_entries(_entries(out)) == []
    lite = YAML(typ="safe").load((out / "profiles/statelite-compute.yaml").read_text())
    assert lite["litefile"]["/etc/ntp.conf"] == "tmpfs,rw"  # blank option written out


def test_msc_site_is_factored_by_its_own_hierarchy(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    site = write_msc_site(tmp_path / "install", director_sources=False, erase_first=False)
    code, stdout, stderr, out = _import(capsys, tmp_path, site, "--json")
    assert code == 0, stdout + stderr
    report = json.loads(stdout)
    assert len(report["images"]) == 9
    assert all(not i["losses"] for i in report["images"].values()), report["images"]
    profiles = report["profiles"]
    assert profiles["base"]["made"] == "file" and len(profiles["base"]["images"]) == 9
    assert profiles["tools"]["made"] == "file"  # included by base.pkglist and aux.pkglist
    assert profiles["aux"]["inherits"] == ["base"] and profiles["base"]["inherits"] == ["tools"]
    assert report["images"]["rocky8-x86_64-netboot-login"]["chain"] == [
        "tools",
        "base",
        "aux",
        "login",
    ]
    assert report["builtins"] == ["site-health"]
    _validate(capsys, out)
    assert duplicated_entries(_entries(out)) == []
    base = YAML(typ="safe").load((out / "profiles/base.yaml").read_text())
    assert base["postinstall"] == ["10-selinux", "90-stamp"]  # the dispatcher expanded
    assert (out / "postscripts/site/setup-lustre").stat().st_mode & 0o777 == 0o755
    assert (out / "synclists/custom/sync/etc/profile.d/site.sh").stat().st_mode & 0o777 == 0o755
    assert not (out / "postscripts/confignetwork").exists()  # an xCAT built-in keeps its bare name
    site_yaml = YAML(typ="safe").load((out / "imagespec.yaml").read_text())
    assert site_yaml["directors"]["director"]["prefix"] == "director"
    assert site_yaml["images"]["rocky8-x86_64-netboot-service"]["attributes"] == {
        "rootimgdir": "/install/netboot/images/service"
    }


def test_msc_site_keeps_director_files_and_erase_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    site = write_msc_site(tmp_path / "install")
    code, stdout, stderr, out = _import(capsys, tmp_path, site, "--json")
    assert code == 0, stdout + stderr
    report = json.loads(stdout)
    assert report["director_files"] == ["/etc/hosts", "/install/custom/secrets/munge.key"]
    _validate(capsys, out)
    assert not any(b"SECRET-MUNGE-KEY" in p.read_bytes() for p in out.rglob("*") if p.is_file())
    base = YAML(typ="safe").load((out / "profiles/base.yaml").read_text())
    assert {"src": "/etc/hosts", "dest": "/etc/hosts", "from": "director"} in base["sync"]
    assert base["erase_first"] == ["NetworkManager-wifi"]


def test_inexpressible_image_is_a_loss_unless_allowed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    site = write_msc_site(
        tmp_path / "install", director_sources=False, erase_first=False, conflict=True
    )
    code, stdout, _, _ = _import(capsys, tmp_path, site)
    assert code == 1
    assert (
        "rocky8-x86_64-netboot-compute-alt: " in stdout and "same xCAT profile 'compute'" in stdout
    )
    assert "rocky8-x86_64-netboot-login: same" in stdout
    code, stdout, _, _ = _import(capsys, tmp_path, site, "--allow-loss", out_name="again")
    assert code == 0 and "--allow-loss" in stdout


def test_erase_before_install_in_a_later_section_is_a_loss(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    site = write_msc_site(tmp_path / "install", director_sources=False, erase_first=False)
    lists = tmp_path / "install/custom/netboot/rh"
    (lists / "compute.otherpkgs.pkglist").write_text(
        "slurm/slurm-slurmd\n#NEW_INSTALL_LIST#\n-old-driver\n"
    )
    code, stdout, _, _ = _import(capsys, tmp_path, site)
    assert code == 1 and "-old-driver" in stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("profile=base", "profile=../../etc"), "profile '../../etc' cannot be a profile name"),
        (
            ("    permission=755\n", "    permission=755\nrm -rf /\n"),
            "expected 'name:' or '    attribute=value'",
        ),
    ],
)
def test_hostile_stanza_values_are_clear_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    site = write_msc_site(tmp_path / "install", director_sources=False, erase_first=False)
    site.stanzas = site.stanzas.replace(*change, 1)
    code, _stdout, stderr, out = _import(capsys, tmp_path, site)
    assert code == 1 and message in stderr and "Traceback" not in stderr
    assert not out.exists()


def test_out_must_be_new_or_empty(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out/x").write_text("x")
    site = write_sample_site(tmp_path / "install")
    code, _, stderr, _ = _import(capsys, tmp_path, site)
    assert code == 1 and "not an empty directory" in stderr


def test_symlink_out_of_the_install_copy_is_not_followed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    site = write_msc_site(tmp_path / "install", director_sources=False, erase_first=False)
    (tmp_path / "outside").write_text("#!/bin/sh\necho outside\n")
    link = tmp_path / "install/custom/netboot/rh/postinstall/base.d/50-escape"
    link.symlink_to(tmp_path / "outside")
    code, stdout, _, out = _import(capsys, tmp_path, site)
    assert code == 1 and "50-escape" in stdout
    assert not any(b"echo outside" in p.read_bytes() for p in out.rglob("*") if p.is_file())


@pytest.mark.slow
def test_import_over_ssh(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sshd: SshServer,
    stub_bin: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in sshd.env().items():
        monkeypatch.setenv(key, value)
    install = tmp_path / "remote-install"
    site = write_sample_site(install, str(install))
    load_into_stub(stub_bin, site, install, tmp_path)
    out = tmp_path / "out"
    code, stdout, stderr = run_main(
        capsys,
        "import",
        "--host",
        sshd.alias,
        "--install-root",
        str(install),
        "--out",
        str(out),
        "--json",
    )
    assert code == 0, stdout + stderr
    report = json.loads(stdout)
    assert set(report["images"]) == set(site.images)
    assert all(not i["losses"] for i in report["images"].values()), report["images"]
    site_yaml = YAML(typ="safe").load((out / "imagespec.yaml").read_text())
    assert site_yaml["directors"]["director"]["host"] == "director"
    _validate(capsys, out)
