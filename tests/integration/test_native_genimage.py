"""The native builder does what xCAT's rh/genimage, packimage and liteimg do besides dnf.

Issue #13, items 12 and 13: kernelver, #ENV: and environvar, module_platform_id,
otherpkgdir URLs, the image's kernel and arch seen from inside the root, and
the root edits.  Every test builds with real RPMs and real dnf and looks in
the built root or the packed archive.  Line numbers name xcat-core 2.19's
xCAT-server/share/xcat/netboot/rh/genimage unless another file is named.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import dump_yaml
from tests.integration.sites import (
    KERNEL,
    NativeSite,
    native_site_doc,
    run_main,
)
from tests.integration.test_native import cpio_members
from tests.rpmrepo import Pkg, build_repo

pytestmark = pytest.mark.slow

PINNED = "0.9-1"  # kernelver of the kernel in kerneldir: <version>-<release> of its RPM
VMLINUZ_09 = "the pinned kernel\n"


def host_binaries() -> dict[str, str]:
    """A shell and uname of this machine with the libraries they load, for a root to chroot to."""
    shell = os.path.realpath(shutil.which("dash") or "/bin/sh")
    uname = os.path.realpath(shutil.which("uname") or "/bin/uname")
    files = {"/bin/sh": shell, "/bin/uname": uname}
    for binary in (shell, uname):
        out = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
        for lib in re.findall(r"(/\S+) \(0x", out):
            files[lib] = os.path.realpath(lib)
    return files


def env_probe(name: str) -> Pkg:
    """A package whose %post (Lua, run by rpm in the root) records PROBE and SITE_ENV
    in /usr/share/<name>/env: what the dnf transaction installing it had in its environment."""
    lua = (
        f'local f = assert(io.open("/usr/share/{name}/env", "w"))\n'
        'f:write("PROBE=" .. tostring(os.getenv("PROBE")) .. " SITE=" ..'
        ' tostring(os.getenv("SITE_ENV")) .. "\\n")\n'
        "f:close()\n"
    )
    return Pkg(name, {f"/usr/share/{name}/README": "probe\n"}, scriptlets={"post -p <lua>": lua})


EXTRA = [
    Pkg("shell", host_files=host_binaries()),
    Pkg(
        "kmod-probe",
        {"/usr/share/kmod-probe/README": "a DKMS-like package\n"},
        requires=["shell"],
        recommends=["kernel-tools"],
        scriptlets={"post": "cd /usr/share/kmod-probe && uname -r > uname && uname -m >> uname"},
    ),
    Pkg("kernel-devel", {"/usr/src/kernels/1.0-1/Makefile": "new\n"}),
    Pkg("kernel-tools", {"/usr/bin/kernel-tools": "tools 1.0\n"}),
    env_probe("envprobe-a"),
    env_probe("envprobe-b"),
    Pkg(
        "sysfiles",
        {
            "/etc/passwd": "root:*:0:0:root:/root:/bin/sh\nbin:x:1:1:bin:/bin:/sbin/nologin\n",
            "/etc/skel/.bashrc": "# from skel\n",
            "/root/.bashrc": "# the package's own\n",
            "/etc/sysconfig/network-scripts/ifcfg-lo": "DEVICE=lo\n",
            "/etc/yum.repos.d/rocky.repo": "[baseos]\nbaseurl=https://example.org\nenabled=1\n",
            "/etc/yum.repos.d/site.repo": "[site]\nbaseurl=https://example.org\nenabled=1\n",
            "/etc/securetty": "tty1\n",
            "/usr/share/zoneinfo/Europe/Berlin": "TZif Berlin\n",
            "/usr/share/zoneinfo/UTC": "TZif UTC\n",
        },
    ),
]
KERNELS = [
    Pkg(
        "kernel",
        {f"/boot/vmlinuz-{PINNED}": VMLINUZ_09, f"/boot/initramfs-{PINNED}.img": "initrd 0.9\n"},
        version="0.9",
    ),
    Pkg("kernel-devel", {f"/usr/src/kernels/{PINNED}/Makefile": "pinned\n"}, version="0.9"),
]
MODULES_YAML = """\
---
document: modulemd
version: 2
data:
  name: hpcmod
  stream: "1"
  version: 1
  context: abcd1234
  arch: noarch
  summary: a module stream, as EL8 AppStream has
  description: a module stream
  license:
    module: [MIT]
  dependencies:
  - requires:
      platform: [el8]
  profiles:
    default:
      rpms: [modpkg]
  artifacts:
    rpms:
    - modpkg-0:1.0-1.noarch
...
---
document: modulemd-defaults
version: 1
data:
  module: hpcmod
  stream: "1"
  profiles:
    "1": [default]
...
"""
PROBE = """#!/bin/sh
# postinstall for the parity tests: what runs inside the root sees, and the environment
set -eu
root=$1
if [ -x "$root/bin/sh" ]; then
  PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$root" uname -r > "$root/etc/probe.uname"
  PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$root" uname -m >> "$root/etc/probe.uname"
fi
printf '%s\\n' "$IMG_KERNELVERSION" > "$root/etc/probe.kernelversion"
printf 'PROBE=%s SITE=%s\\n' "${PROBE-nil}" "${SITE_ENV-nil}" > "$root/etc/probe.env"
if [ -e "$root/usr/share/zoneinfo/Europe/Berlin" ]; then
  ln -sf ../usr/share/zoneinfo/Europe/Berlin "$root/etc/localtime"
fi
"""


@pytest.fixture(scope="session")
def parity_repos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """extra/ and modular/ (more pkgdir entries), kernels/ (a kerneldir), url/ (served by http)."""
    top = tmp_path_factory.mktemp("parity")
    build_repo(top / "extra", EXTRA)
    build_repo(top / "kernels", KERNELS)
    build_repo(top / "url", [env_probe("envprobe-c")])
    modular = build_repo(top / "modular", [Pkg("modpkg", {"/opt/modpkg/README": "modular\n"})])
    (top / "modules.yaml").write_text(MODULES_YAML)
    subprocess.run(
        ["modifyrepo_c", "--mdtype=modules", str(top / "modules.yaml"), str(modular / "repodata")],
        check=True,
        capture_output=True,
    )
    return top


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def http_repo(parity_repos: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """parity_repos/url over http on 127.0.0.1, for an otherpkgdir URL."""
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    handler = partial(QuietHandler, directory=str(parity_repos / "url"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def use_images(native: NativeSite, parity: Path, profiles: dict[str, Any], **distro: Any) -> None:
    """One image img-<name> per profile, built from the native media plus parity's repos."""
    doc = native_site_doc(native.repos, native.install, {})
    doc["images"] = {}
    for name, profile in profiles.items():
        doc["images"][f"img-{name}"] = {"profile": name, "distro": "rocky8"}
        native.profile(name, profile)
    doc["distros"]["rocky8"]["pkgdir"] = [
        str(native.repos / "media"),
        str(parity / "extra"),
        str(parity / "modular"),
    ]
    doc["distros"]["rocky8"].update(distro)
    native.write("imagespec.yaml", dump_yaml(doc))
    native.write("postinstall/10-probe", PROBE)
    native.commit("parity images")


def rpm_versions(root: Path, *names: str) -> set[str]:
    out = subprocess.run(
        [
            "rpm",
            "--root",
            str(root),
            "--dbpath",
            "/var/lib/rpm",
            "-q",
            "--qf",
            "%{NAME}-%{VERSION}\\n",
            *names,
        ],
        capture_output=True,
        text=True,
    ).stdout
    return {line for line in out.split("\n") if line and "not installed" not in line}


def test_kernelver_pins_the_kernel_and_uname_inside_reports_it(
    native: NativeSite, parity_repos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kernelver pins kernel and kernel-devel (line 464) from kerneldir, by default
    <install_root>/kernels (line 259); kernel* is hidden from the other transactions (as the
    update pass, line 667), so a recommended kernel-tools is not pulled in; package scriptlets
    and postinstall scripts that run uname in the root get the image's kernel and arch
    (use_hackuname, lines 2547-2592, used at 587 and 842), and the real uname is back after."""
    shutil.copytree(parity_repos / "kernels", native.install / "kernels")
    profile = {
        "packages": ["core", "shell", "kernel", "kernel-devel"],
        "otherpkgs": ["hpc/kmod-probe"],
        "postinstall": ["10-probe"],
        "attributes": {"kernelver": PINNED},
    }
    use_images(native, parity_repos, {"pin": profile})
    code, out, err = run_main(capsys, "apply", "--yes")
    assert code == 0, out + err + native.log("img-pin")
    r = native.rootimgdir("img-pin")
    root = r / "rootimg"
    assert rpm_versions(root, "kernel", "kernel-devel", "kernel-tools") == {
        "kernel-0.9",
        "kernel-devel-0.9",
    }, "pinned, although pkgdir has 1.0 of both; kernel-tools (recommended) stays out"
    assert (root / "usr/src/kernels" / PINNED / "Makefile").read_text() == "pinned\n"
    assert (r / "kernel").read_text() == VMLINUZ_09
    assert (r / "initrd-stateless.gz").read_text() == "initrd 0.9\n"
    assert (root / "usr/share/kmod-probe/uname").read_text() == f"{PINNED}\nx86_64\n"
    assert (root / "etc/probe.uname").read_text() == f"{PINNED}\nx86_64\n"
    assert (root / "etc/probe.kernelversion").read_text() == f"{PINNED}\n"
    real_uname = Path(shutil.which("uname") or "/bin/uname").resolve().read_bytes()
    assert (root / "bin/uname").read_bytes() == real_uname, "the real uname is back"
    assert not (root / "bin/uname-binary").exists()
    members = cpio_members(r / "rootimg.cpio.gz")
    assert members["./bin/uname"] == real_uname and "./bin/uname-binary" not in members
    log = native.log("img-pin")
    assert f"install core shell kernel-{PINNED} kernel-devel-{PINNED}\n" in log
    assert "'--exclude=kernel*' install kmod-probe\n" in log


def test_a_kernel_package_outside_the_pkglist_is_refused_with_kernelver(
    native: NativeSite, parity_repos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With kernelver, kernel* is hidden from the otherpkglist (pinning is the pkglist's,
    line 464): the image fails with the reason instead of getting kernel-tools 1.0."""
    shutil.copytree(parity_repos / "kernels", native.install / "kernels")
    profile = {
        "packages": ["core", "kernel"],
        "otherpkgs": ["hpc/kernel-tools"],
        "attributes": {"kernelver": PINNED},
    }
    use_images(native, parity_repos, {"tools": profile})
    assert run_main(capsys, "apply", "--yes")[0] == 3
    error = native.state()["images"]["img-tools"]["error"]
    assert error == (
        f"kernelver {PINNED} hides kernel* from every transaction but the pkglist's pinned"
        " ones (All matches were filtered out by exclude filtering for argument:"
        " kernel-tools); list kernel packages in the pkglist, where they get that version"
    )


def test_root_edits_and_the_installed_kernel_without_kernelver(
    native: NativeSite, parity_repos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """generic_post's files (lines 2110-2182) and the vendor repositories disabled (823-831);
    without kernelver IMG_KERNELVERSION and uname -r are the installed kernel (717-728); the
    zone file /etc/localtime names is packed although the exlist drops zoneinfo
    (packimage.pm 339-351)."""
    profile = {
        "packages": ["core", "kernel", "shell", "sysfiles"],
        "exclude": ["./usr/share/zoneinfo*"],
        "postinstall": ["10-probe"],
        "attributes": {"nodebootif": "eth0", "otherifce": "ib0,ib1"},
    }
    use_images(native, parity_repos, {"edits": profile})
    code, out, err = run_main(capsys, "apply", "--yes")
    assert code == 0, out + err + native.log("img-edits")
    r = native.rootimgdir("img-edits")
    etc = r / "rootimg/etc"
    fstab = [line.split() for line in (etc / "fstab").read_text().splitlines()]
    assert fstab == [
        ["devpts", "/dev/pts", "devpts", "gid=5,mode=620", "0", "0"],
        ["tmpfs", "/dev/shm", "tmpfs", "defaults", "0", "0"],
        ["proc", "/proc", "proc", "defaults", "0", "0"],
        ["sysfs", "/sys", "sysfs", "defaults", "0", "0"],
        ["edits_x86_64", "/", "tmpfs", "rw", "0", "1"],
    ], "rocky8 boots systemd: no tmpfs /tmp line"
    assert (etc / "sysconfig/network").read_text() == "NETWORKING=yes\n"
    assert "nameserver" not in (etc / "resolv.conf").read_text()
    scripts = etc / "sysconfig/network-scripts"
    assert (scripts / "ifcfg-eth0").read_text() == "ONBOOT=no\nBOOTPROTO=dhcp\nDEVICE=eth0\n"
    assert (scripts / "ifcfg-ib1").read_text() == "ONBOOT=yes\nBOOTPROTO=dhcp\nDEVICE=ib1\n"
    assert (etc / "securetty").read_text() == "tty1\nttyS0\nttyS1\n"
    assert (etc / "passwd").read_text().splitlines()[0] == "root:x:0:0:root:/root:/bin/sh"
    assert (r / "rootimg/root/.bashrc").read_text() == "# from skel\n"
    assert "enabled=0" in (etc / "yum.repos.d/rocky.repo").read_text()
    assert "enabled=1" in (etc / "yum.repos.d/site.repo").read_text(), "only vendor files"
    assert (etc / "probe.kernelversion").read_text() == f"{KERNEL}\n"
    assert (etc / "probe.uname").read_text() == f"{KERNEL}\nx86_64\n"
    members = cpio_members(r / "rootimg.cpio.gz")
    assert members["./usr/share/zoneinfo/Europe/Berlin"] == b"TZif Berlin\n"
    assert "./usr/share/zoneinfo/UTC" not in members
    assert members["./etc/fstab"] == (etc / "fstab").read_bytes()


def test_env_directives_environvar_module_platform_and_otherpkgdir_urls(
    native: NativeSite, parity_repos: Path, http_repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """#ENV: pairs reach their own section's transactions (imgutils.pm line 174, rh/genimage
    499-504 and 599-634), environvar every transaction and postinstall (438-442);
    module_platform_id lets dnf install a module stream's package (121); an otherpkgdir URL is
    used as it is for every section, next to the one local directory (527-571)."""
    profile = {
        "packages": [
            "core",
            "#ENV:PROBE=one#",
            "envprobe-a",
            "modpkg",
            "#NEW_INSTALL_LIST#",
            "envprobe-b",
        ],
        "otherpkgs": ["#ENV:PROBE=other#", "envprobe-c", "hpc/hpc-app"],
        "postinstall": ["10-probe"],
        "attributes": {"environvar": "SITE_ENV=site"},
    }
    otherpkgdir = f"{http_repo},{native.repos / 'other'}"
    use_images(native, parity_repos, {"env": profile}, otherpkgdir=otherpkgdir)
    code, out, err = run_main(capsys, "apply", "--yes")
    assert code == 0, out + err + native.log("img-env")
    root = native.rootimgdir("img-env") / "rootimg"
    share = root / "usr/share"
    assert (share / "envprobe-a/env").read_text() == "PROBE=one SITE=site\n"
    assert (share / "envprobe-b/env").read_text() == "PROBE=nil SITE=site\n"
    assert (share / "envprobe-c/env").read_text() == "PROBE=other SITE=site\n"
    assert (root / "etc/probe.env").read_text() == "PROBE=nil SITE=site\n", "environvar only"
    assert (root / "opt/modpkg/README").read_text() == "modular\n"
    assert {"envprobe-c", "hpc-app"} <= native.installed("img-env")
    assert "has no repodata; './' installs from the URLs" in native.log("img-env")


def test_otherpkgdir_with_two_local_directories_is_refused(
    native: NativeSite, parity_repos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """genimage takes at most one local otherpkgdir (rh/genimage lines 538-541)."""
    profile = {"packages": ["core"], "otherpkgs": ["hpc/hpc-app"]}
    two = f"{native.repos / 'other'},{parity_repos / 'extra'}"
    use_images(native, parity_repos, {"two": profile}, otherpkgdir=two)
    assert run_main(capsys, "apply", "--yes")[0] == 3
    error = native.state()["images"]["img-two"]["error"]
    assert error == (
        f"image img-two: otherpkgdir lists 2 local directories ({two.replace(',', ', ')});"
        " genimage takes at most one: keep one and give the others as http(s) or ftp URLs"
    )


def test_a_failed_postinstall_leaves_no_hacked_uname(
    native: NativeSite, parity_repos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The wrapper goes also when the step it wraps fails (rh/genimage unuse_hackuname, 871)."""
    profile = {"packages": ["core", "kernel", "shell"], "postinstall": ["10-probe"]}
    use_images(native, parity_repos, {"fail": profile})
    native.write("postinstall/10-probe", PROBE + "exit 4\n")
    native.commit("a failing postinstall")
    assert run_main(capsys, "apply", "--yes")[0] == 3
    staging = native.generation_dir("img-fail", 1).parent / "staging/rootimg"
    assert (staging / "etc/probe.uname").read_text() == f"{KERNEL}\nx86_64\n", "it ran"
    real_uname = Path(shutil.which("uname") or "/bin/uname").resolve().read_bytes()
    assert (staging / "bin/uname").read_bytes() == real_uname
    assert not (staging / "bin/uname-binary").exists()


def test_statelite_root_is_read_only_and_a_stateless_repack_undoes_liteimg(
    native: NativeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    """liteimg makes the root line of fstab read-only (statelite.pm updateFstab, 1001-1022);
    packing that root stateless restores what liteimg moved, as packimage.pm does (240-288),
    and the root line is read-write again.  The generation in use is not touched."""
    assert run_main(capsys, "apply", "--yes", "--only", "img-lite")[0] == 0
    root = native.rootimgdir("img-lite") / "rootimg"
    assert "lite_x86_64  /  tmpfs  ro  0 1" in (root / "etc/fstab").read_text()

    doc = native_site_doc(native.repos, native.install, {})
    doc["images"]["img-lite"]["attributes"] = {"provmethod": "netboot"}
    native.write("imagespec.yaml", dump_yaml(doc))
    native.commit("lite nodes boot stateless now")
    code, out, _ = run_main(capsys, "apply", "--yes", "--only", "img-lite")
    assert code == 0, out
    log = native.log("img-lite")
    assert "dnf" not in log and "restoring its files" in log
    members = cpio_members(native.rootimgdir("img-lite") / "rootimg.cpio.gz")
    assert members["./etc/core.conf"] == b"core=1\n", "a regular file again, not a link"
    assert not any(m.startswith("./.statelite") or m.startswith("./.default") for m in members)
    assert b"lite_x86_64  /  tmpfs  rw  0 1" in members["./etc/fstab"]
    old = native.generation_dir("img-lite", 1) / "rootimg"
    assert (old / "etc/core.conf").is_symlink(), "generation 1 keeps its statelite structure"
    assert "tmpfs  ro" in (old / "etc/fstab").read_text()
