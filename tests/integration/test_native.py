"""The native builder with real RPMs, real repositories and real `dnf --installroot` builds.

Every assertion opens what was really built: the rpm database of the root,
the packed cpio archive, the kernel copied out, the generation symlinks.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import dump_yaml
from tests.integration.sites import (
    NATIVE_PROFILES,
    RECORD,
    VMLINUZ,
    NativeSite,
    native_site_doc,
    run_main,
)
from tests.sshd import SshServer

pytestmark = pytest.mark.slow


def cpio_members(archive: Path) -> dict[str, bytes]:
    """{./path: content} of a gzip'd newc cpio archive (directories map to b"")."""
    data = gzip.decompress(archive.read_bytes())
    return parse_newc(data)


def parse_newc(data: bytes) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    pos = 0
    while True:
        header = data[pos : pos + 110]
        assert header[:6] == b"070701", f"not a newc archive at {pos}"
        fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name_end = pos + 110 + namesize
        name = data[pos + 110 : name_end - 1].decode()
        body = (name_end + 3) & ~3
        content = data[body : body + size]
        pos = (body + size + 3) & ~3
        if name == "TRAILER!!!":
            return members
        key = name if name.startswith("./") or name == "." else "./" + name
        members[key] = content if mode & 0o170000 != 0o040000 else b""


def test_apply_builds_every_image_for_real(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(capsys, "apply", "--yes")
    assert code == 0, out + err
    assert native.installed("img-compute") == {
        "core",
        "libcore",
        "kernel",
        "tool-a",
        "tool-b",
        "hpc-app",
        "hpc-lib",
    }, "extra-rec (a weak dependency) is erased after install"
    assert native.installed("img-base") == {"core", "libcore", "kernel"}
    log = native.log("img-compute")
    assert "install core kernel tool-a\n" in log and "install tool-b\n" in log, (
        "each #NEW_INSTALL_LIST# section is its own transaction"
    )
    assert "remove extra-rec" in log
    r = native.rootimgdir("img-compute")
    assert native.current("img-compute") == ".compute.imagespec/1"
    assert (r / "kernel").read_text() == VMLINUZ
    assert (r / "initrd-stateless.gz").read_text() == "initrd\n"
    assert native.state()["images"]["img-compute"]["generation"] == 1


def test_postinstall_gets_xcat_arguments_and_environment(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes", "--only", "img-compute")[0] == 0
    etc = native.rootimgdir("img-compute") / "rootimg/etc"
    assert (etc / "postinstall.args").read_text().split() == [
        "rocky8",
        "x86_64",
        "compute",
        "first",
    ]
    assert (etc / "postinstall.rootimgdir").read_text() == "same\n"
    env = dict(line.split("=", 1) for line in (etc / "postinstall.env").read_text().splitlines())
    assert env["IMG_NAME"] == "img-compute"
    assert env["IMG_PROFILE"] == "compute"
    assert env["IMG_OSVER"] == "rocky8" and env["IMG_ARCH"] == "x86_64"
    assert env["IMG_PKGLIST"].endswith("/p/custom/netboot/rocky/img-compute.pkglist")
    assert env["IMG_OTHERPKGDIR"] == str(native.repos / "other")


def test_packed_archive_applies_exlist_and_build_time_synclist(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes", "--only", "img-compute")[0] == 0
    members = cpio_members(native.rootimgdir("img-compute") / "rootimg.cpio.gz")
    assert members["./etc/motd"] == b"welcome to the test cluster\n"
    assert members["./etc/core.conf"] == b"core=1\n"
    assert "./opt/hpc/bin/app" in members
    assert not any(m.startswith("./usr/share/doc") for m in members)
    assert not any(m.startswith("./boot") for m in members)
    assert "./usr/share/locale/en/LC_MESSAGES/core.mo" in members, "+ re-includes"
    assert "./usr/share/locale/de/LC_MESSAGES/core.mo" not in members
    assert "./etc/issue" not in members, "noderange entries only apply at boot"
    assert "./etc/hosts" not in members, "clause sections (APPEND:) only apply at boot"
    assert "./etc/extra-rec.conf" not in members


def test_second_apply_is_a_no_op_that_touches_nothing(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    archive = native.rootimgdir("img-compute") / "rootimg.cpio.gz"
    before = (archive.stat().st_mtime_ns, native.state())
    code, out, _ = run_main(capsys, "apply", "--yes")
    assert code == 0
    assert "0 done, 0 failed" in out
    assert (archive.stat().st_mtime_ns, native.state()) == before


def test_exclude_change_repacks_the_existing_root_without_genimage(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    native.profile("compute", {**NATIVE_PROFILES["compute"], "exclude": ["./usr/bin/tool-b"]})
    native.commit("drop tool-b's binary from the compute image")
    code, out, _ = run_main(capsys, "apply", "--yes")
    assert code == 0, out
    log = native.log("img-compute")
    assert "dnf" not in log and "re-packing the root of generation 1" in log
    assert native.current("img-compute") == ".compute.imagespec/2"
    members = cpio_members(native.rootimgdir("img-compute") / "rootimg.cpio.gz")
    assert "./usr/bin/tool-b" not in members and "./usr/bin/tool-a" in members
    old = cpio_members(native.generation_dir("img-compute", 1) / "rootimg.cpio.gz")
    assert "./usr/bin/tool-b" in old, "the previous generation is kept as it was"
    assert native.current("img-base") == ".base.imagespec/1", "other images untouched"


def test_failed_postinstall_keeps_the_image_in_use_and_is_retried(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes", "--only", "img-base")[0] == 0
    native.write("postinstall/10-record", "#!/bin/sh\necho 'cannot tune' >&2\nexit 7\n")
    native.commit("broken postinstall")
    code, out, _ = run_main(capsys, "apply", "--yes", "--only", "img-base")
    assert code == 3
    assert "failed" in out
    assert "cannot tune" in native.log("img-base")
    assert native.current("img-base") == ".base.imagespec/1"
    assert cpio_members(native.rootimgdir("img-base") / "rootimg.cpio.gz")
    assert native.state()["images"]["img-base"]["status"] == "failed"
    native.write("postinstall/10-record", RECORD + "# fixed\n")
    native.commit("fixed")
    assert run_main(capsys, "apply", "--yes", "--only", "img-base")[0] == 0
    assert native.current("img-base") == ".base.imagespec/2"
    assert native.state()["images"]["img-base"]["status"] == "ok"
    # reverting to the inputs of generation 1 builds nothing: it is kept, so apply switches
    native.write("postinstall/10-record", RECORD)
    native.commit("back to the first script")
    assert run_main(capsys, "apply", "--yes", "--only", "img-base")[0] == 0
    assert native.current("img-base") == ".base.imagespec/1"
    assert "no genimage" in native.log("img-base")


def test_failed_pack_is_retried_without_repeating_genimage(
    native: NativeSite,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = tmp_path / "broken-bin"
    broken.mkdir()
    (broken / "cpio").write_text("#!/bin/sh\necho 'cpio: disk full' >&2\nexit 1\n")
    (broken / "cpio").chmod(0o755)
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", f"{broken}{os.pathsep}{path}")
    assert run_main(capsys, "apply", "--yes", "--only", "img-base")[0] == 3
    entry = native.state()["images"]["img-base"]
    assert entry["failed_stage"] == "pack" and entry["digests"]["build"]
    assert not native.rootimgdir("img-base").exists(), "nothing half-built is switched in"
    monkeypatch.setenv("PATH", path)
    code, out, _ = run_main(capsys, "apply", "--yes", "--only", "img-base")
    assert code == 0, out
    log = native.log("img-base")
    assert "== genimage" not in log and "dnf" not in log
    assert cpio_members(native.rootimgdir("img-base") / "rootimg.cpio.gz")["./etc/motd"]


def test_old_generations_are_pruned_and_a_pre_existing_root_is_adopted(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    r = native.rootimgdir("img-base")
    (r / "rootimg").mkdir(parents=True)
    (r / "rootimg/hand-made").write_text("built before imagespec\n")
    assert run_main(capsys, "apply", "--yes", "--only", "img-base")[0] == 0
    assert native.current("img-base") == ".base.imagespec/1"
    assert (native.generation_dir("img-base", 0) / "rootimg/hand-made").exists()
    for n in range(3):
        native.profile("base", {**NATIVE_PROFILES["base"], "exclude": [f"./tmp{n}*"]})
        native.commit(f"exclude {n}")
        assert run_main(capsys, "apply", "--yes", "--only", "img-base")[0] == 0
    home = native.generation_dir("img-base", 0).parent
    assert sorted(p.name for p in home.iterdir()) == ["0", "2", "3", "4"], (
        "the two generations before the current one are kept; the adopted one is never removed"
    )


def test_statelite_image_gets_the_litefile_structure(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes", "--only", "img-lite")[0] == 0
    root = native.rootimgdir("img-lite") / "rootimg"
    conf = root / "etc/core.conf"
    assert os.readlink(conf) == "../.statelite/tmpfs/etc/core.conf"
    assert os.readlink(root / ".statelite/tmpfs/etc/core.conf") == "../../../.default/etc/core.conf"
    assert conf.read_text() == "core=1\n", "the link resolves to the default copy"
    assert (root / ".default/etc/lite/child").is_file()
    assert os.readlink(root / "etc/lite") == "../.statelite/tmpfs/etc/lite"
    assert (root / "var/log").is_dir() and not (root / "var/log").is_symlink()
    assert (root / ".default/var/log").is_dir(), "persistent entries keep a default copy"
    assert "/etc/core.conf" in (root / ".statelite/litefile.save").read_text()
    ramdisk = parse_newc(
        subprocess.run(
            ["gzip", "-dc", str(native.rootimgdir("img-lite") / "rootimg-statelite.gz")],
            check=True,
            capture_output=True,
        ).stdout
    )
    assert "./etc/core.conf" in ramdisk and "./usr/share/doc/core/README" not in ramdisk
    assert ramdisk["./.default/etc/core.conf"] == b"core=1\n", "the ramdisk carries .default"
    assert not (native.rootimgdir("img-lite") / "rootimg.cpio.gz").exists()

    lite = {**NATIVE_PROFILES["lite"], "litefile": {"/var/log/": "persistent"}}
    native.profile("lite", lite)
    native.commit("core.conf no longer statelite")
    assert run_main(capsys, "apply", "--yes", "--only", "img-lite")[0] == 0
    root = native.rootimgdir("img-lite") / "rootimg"
    assert not (root / "etc/core.conf").is_symlink(), "a dropped row is restored"
    assert (root / "etc/core.conf").read_text() == "core=1\n"
    assert not (root / ".default/etc/core.conf").exists()
    assert not (root / "etc/lite").exists(), "what liteimg created for a dropped row is gone"
    assert (root / "var/log").is_dir(), "a row kept keeps its path"
    old = native.generation_dir("img-lite", 1) / "rootimg/etc/core.conf"
    assert old.is_symlink(), "the previous generation keeps its own structure"


def table_cell(out: str, row: str, column: str, next_column: str) -> str:
    """One cell of apply's result table, its folded lines joined, whitespace normalised."""
    lines = out.splitlines()
    header = next(line for line in lines if line.split()[:2] == ["image", column])
    start, end = header.index(column), header.index(next_column)
    parts: list[str] = []
    for line in lines[lines.index(header) + 1 :]:
        name = line[:start].strip()
        if parts and name:
            break
        if parts or name == row:
            parts.append(line[start:end])
    return " ".join(" ".join(parts).split())


def test_kernelver_without_its_kernel_fails_clearly(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pinned kernel* entry that no repository holds fails the transaction with the reason
    (rh/genimage lines 471-486 refuse it too); a kernelver that nothing installed fails
    before postinstall (lines 734-744)."""
    base = {**NATIVE_PROFILES["base"], "attributes": {"kernelver": "9.9.9"}}
    native.profile("base", base)
    native.commit("pin a kernel")
    code, out, _ = run_main(capsys, "apply", "--yes", "--only", "img-base")
    assert code == 3
    error = native.state()["images"]["img-base"]["error"]
    kernels = native.install / "kernels"
    assert error == (
        f"kernelver 9.9.9: no kernel-9.9.9 in pkgdir or kerneldir {kernels}; put that"
        " kernel's RPMs in a repository there (createrepo_c) or correct kernelver"
    )
    assert table_cell(out, "img-base", "result", "actions") == "failed"
    assert f"img-base: failed in genimage: {error}\n" in out, "the cause has a line of its own"
    assert "install core kernel-9.9.9\n" in native.log("img-base")

    native.profile("base", {**base, "packages": ["core"]})
    native.commit("the kernel is not in the pkglist")
    assert run_main(capsys, "apply", "--yes", "--only", "img-base")[0] == 3
    error = native.state()["images"]["img-base"]["error"]
    assert error == "kernelver 9.9.9 is not installed in the image (found: none)"
    assert "postinstall ran" not in native.log("img-base")


def test_missing_repository_and_package_fail_with_the_reason(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    native.profile("compute", {**NATIVE_PROFILES["compute"], "otherpkgs": ["gpu/cuda"]})
    native.profile(
        "base", {**NATIVE_PROFILES["base"], "packages": ["core", "kernel", "no-such-pkg"]}
    )
    native.commit("typos")
    code, _, _ = run_main(capsys, "apply", "--yes", "--only", "img-compute", "--only", "img-base")
    assert code == 3
    error = native.state()["images"]["img-compute"]["error"]
    assert f"{native.repos / 'other' / 'gpu'} has no repodata; run `createrepo_c" in error
    assert "no-such-pkg" in native.log("img-base")


def test_a_missing_package_reports_dnf_s_cause_and_the_log_not_the_command(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    """dnf's own last words, on a line of their own under the table, in state.json and in
    status and plan; the command line only with -v."""
    native.profile("base", {**NATIVE_PROFILES["base"], "packages": ["core", "kernel", "htop"]})
    native.commit("a package the repositories do not have")
    code, out, _ = run_main(capsys, "apply", "--yes", "--only", "img-base")
    assert code == 3
    entry = native.state()["images"]["img-base"]
    cause = "No match for argument: htop; Error: Unable to find a match: htop"
    assert entry["error"] == cause and entry["failed_stage"] == "genimage"
    assert "interrupted" not in entry
    assert f"img-base: failed in genimage: {cause}\n" in out
    log = sorted((native.install / "p/.imagespec/logs/img-base").iterdir())[-1]
    assert f"  log: local directory {log}\n" in out
    assert "--installroot" not in out and "-v shows the command" in out
    assert "--installroot" in log.read_text(), "the log keeps the command"

    code, out, _ = run_main(capsys, "-v", "apply", "--yes", "--only", "img-base")
    assert code == 3
    command = next(line for line in out.splitlines() if line.startswith("  command: "))
    assert "--installroot=" in command and command.endswith(" htop")

    code, out, _ = run_main(capsys, "status")
    assert code == 2
    assert f"failed: img-base in genimage: {cause}\n" in out
    assert "--installroot" not in out and "env HOME" not in out
    assert f"logs: local directory {native.install}/p/.imagespec/logs/img-base/" in out
    code, out, _ = run_main(capsys, "plan", "--json")
    reasons = json.loads(out)["images"]["img-base"]["reasons"]
    assert f"failed last time (genimage): {cause}" in reasons


def test_cross_architecture_needs_qemu_user_static(
    native: NativeSite,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = (native.site / "imagespec.yaml").read_text()
    native.write(
        "imagespec.yaml",
        doc.replace("    osarch: x86_64\n", "    osarch: ppc64le\n"),
    )
    native.commit("power images")
    binfmt = tmp_path / "binfmt"
    binfmt.mkdir()
    monkeypatch.setenv("IMAGESPEC_BINFMT_DIR", str(binfmt))
    code, out, _ = run_main(capsys, "apply", "--yes", "--only", "img-base")
    assert code == 3
    error = native.state()["images"]["img-base"]["error"]
    assert "install qemu-user-static" in error and "ppc64le" in error
    (binfmt / "qemu-ppc64le").write_text("enabled\n")
    code, out, _ = run_main(capsys, "apply", "--yes", "--only", "img-base")
    assert code == 0, out
    assert "--forcearch=ppc64le" in native.log("img-base")


def test_dry_run_prints_the_build_commands_and_changes_nothing(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_main(capsys, "apply", "--yes", "--dry-run", "--only", "img-compute")
    assert code == 0
    assert "--installroot=" in out and "install core kernel tool-a" in out
    assert "cpio -o -H newc" in out
    assert not native.install.exists() or not any(native.install.rglob("rootimg"))


def test_squashfs_and_xz(native: NativeSite, capsys: pytest.CaptureFixture[str]) -> None:
    native.build_options(method="squashfs")
    native.commit("squashfs")
    assert run_main(capsys, "apply", "--yes", "--only", "img-base")[0] == 0
    sfs = native.rootimgdir("img-base") / "rootimg.sfs"
    listing = subprocess.run(
        ["unsquashfs", "-l", str(sfs)], check=True, capture_output=True, text=True
    ).stdout
    assert "squashfs-root/etc/motd" in listing
    assert "usr/share/doc" not in listing
    native.build_options(compress="xz")
    native.commit("xz")
    assert run_main(capsys, "apply", "--yes", "--only", "img-base")[0] == 0
    xz = native.rootimgdir("img-base") / "rootimg.cpio.xz"
    data = subprocess.run(["xz", "-dc", str(xz)], check=True, capture_output=True).stdout
    assert parse_newc(data)["./etc/motd"] == b"welcome to the test cluster\n"


def test_rollback_switches_back_and_the_next_plan_says_why(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes", "--only", "img-compute")[0] == 0
    first = native.repo.head.commit.hexsha
    native.profile("compute", {**NATIVE_PROFILES["compute"], "exclude": ["./usr/bin/tool-b"]})
    native.commit("drop tool-b")
    assert run_main(capsys, "apply", "--yes", "--only", "img-compute")[0] == 0
    assert native.current("img-compute") == ".compute.imagespec/2"

    code, out, err = run_main(capsys, "rollback", "img-compute", "--json")
    assert code == 0, err
    assert json.loads(out) == {
        "director": "here",
        "image": "img-compute",
        "from": 2,
        "to": 1,
        "commit": first,
        "built": json.loads(out)["built"],
        "nodeset": None,
    }
    assert native.current("img-compute") == ".compute.imagespec/1"
    members = cpio_members(native.rootimgdir("img-compute") / "rootimg.cpio.gz")
    assert "./usr/bin/tool-b" in members
    entry = native.state()["images"]["img-compute"]
    assert entry["generation"] == 1 and entry["rolled_back_from"] == 2
    code, out, _ = run_main(capsys, "plan", "--json")
    reasons = json.loads(out)["images"]["img-compute"]["reasons"]
    assert any(r.startswith("rolled back to generation 1 (from 2)") for r in reasons)
    assert json.loads(out)["images"]["img-compute"]["actions"] == ["pack"]

    code, _, err = run_main(capsys, "rollback", "img-compute", "--to", "7")
    assert code == 1
    assert "no generation 7; kept generations: 1, 2" in err
    assert run_main(capsys, "rollback", "img-compute", "--to", "2")[0] == 0
    assert native.current("img-compute") == ".compute.imagespec/2"
    assert run_main(capsys, "plan", "--exit-code", "--only", "img-compute")[0] == 0

    assert run_main(capsys, "rollback", "img-compute")[0] == 0
    assert run_main(capsys, "apply", "--yes", "--only", "img-compute")[0] == 0
    assert "generation 2 was built and packed from these inputs" in native.log("img-compute")
    assert native.current("img-compute") == ".compute.imagespec/2", "no third generation"
    assert native.state()["images"]["img-compute"]["generation"] == 2


def test_rollback_of_an_image_never_built_is_a_clear_error(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(capsys, "rollback", "img-base")
    assert code == 1
    assert "img-base has not been built by imagespec" in err
    assert "Traceback" not in err


def test_rollback_refuses_frozen_images(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = native_site_doc(native.repos, native.install, {})
    doc["images"]["img-base"]["frozen"] = True
    native.write("imagespec.yaml", dump_yaml(doc))
    native.commit("freeze img-base")
    code, _, err = run_main(capsys, "rollback", "img-base")
    assert code == 1
    assert "img-base is frozen; imagespec never touches it" in err


def test_show_built_lists_installed_packages_and_flags_missing_ones(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(capsys, "show", "img-base", "--built")
    assert code == 1 and "is not built on director here" in err
    remover = RECORD + 'rpm --root "$IMG_ROOTIMGDIR" --dbpath /var/lib/rpm -e --nodeps kernel\n'
    native.write("postinstall/10-record", remover)
    native.commit("a postinstall that removes a package")
    assert run_main(capsys, "apply", "--yes", "--only", "img-base")[0] == 0
    code, out, err = run_main(capsys, "show", "img-base", "--built", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["installed"] == ["core", "libcore"]
    assert doc["requested"] == ["core", "kernel"]
    assert doc["missing"] == ["kernel"]
    assert doc["erased"] == ["extra-rec"] and doc["erased_but_installed"] == []
    assert doc["versions"] == {"core": ["1.0-1.noarch"], "libcore": ["1.0-1.noarch"]}
    code, out, _ = run_main(capsys, "show", "img-base", "--built")
    assert "requested but not installed: kernel" in out
    assert any(line.split()[:1] == ["core"] and "1.0-1.noarch" in line for line in out.splitlines())


def test_native_build_on_a_remote_director_over_ssh(
    native: NativeSite,
    sshd: SshServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in sshd.env().items():
        monkeypatch.setenv(key, value)
    doc = native_site_doc(native.repos, native.install, {})
    doc["directors"]["here"]["host"] = sshd.alias
    native.write("imagespec.yaml", dump_yaml(doc))
    native.commit("the director is remote now")
    code, out, err = run_main(capsys, "apply", "--yes", "--only", "img-compute")
    assert code == 0, out + err
    assert native.current("img-compute") == ".compute.imagespec/1"
    assert "hpc-app" in native.installed("img-compute")
    members = cpio_members(native.rootimgdir("img-compute") / "rootimg.cpio.gz")
    assert members["./etc/motd"] == b"welcome to the test cluster\n"
    code, out, _ = run_main(capsys, "show", "img-compute", "--built", "--json")
    assert code == 0 and json.loads(out)["missing"] == []
