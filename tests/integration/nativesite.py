"""A site built for real by the native builder: real RPMs, real repositories, real dnf.

`native_repos` (session) builds EL8-like media (BaseOS and AppStream under one
pkgdir, each with its own repodata) and an otherpkgdir with an `hpc/`
repository.  `native` (per test) is a git site whose director `here` uses
the native builder in tmp_path.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import pytest

from tests.helpers import dump_yaml, write_tree
from tests.integration.applysite import IDENTITY
from tests.rpmrepo import Pkg, build_repo

KERNEL = "5.14.0-1.t.x86_64"
VMLINUZ = "not a real kernel\n"

BASEOS = [
    Pkg(
        "core",
        {
            "/etc/core.conf": "core=1\n",
            "/usr/bin/core": "#!/bin/sh\necho core\n",
            "/usr/share/doc/core/README": "core docs\n",
            "/usr/share/locale/en/LC_MESSAGES/core.mo": "en\n",
            "/usr/share/locale/de/LC_MESSAGES/core.mo": "de\n",
        },
        requires=["libcore"],
        recommends=["extra-rec"],
        executables=["/usr/bin/core"],
    ),
    Pkg("libcore", {"/usr/lib64/libcore.so.1": "lib\n"}),
    Pkg("extra-rec", {"/etc/extra-rec.conf": "pulled in as a weak dependency\n"}),
    Pkg(
        "kernel",
        {f"/boot/vmlinuz-{KERNEL}": VMLINUZ, f"/boot/initramfs-{KERNEL}.img": "initrd\n"},
    ),
]
APPSTREAM = [
    Pkg("tool-a", {"/usr/bin/tool-a": "a\n"}, requires=["core"]),
    Pkg("tool-b", {"/usr/bin/tool-b": "b\n"}),
]
HPC = [
    Pkg("hpc-app", {"/opt/hpc/bin/app": "app\n"}, requires=["hpc-lib", "core"]),
    Pkg("hpc-lib", {"/opt/hpc/lib/libhpc.so": "hpc\n"}),
]

RECORD = """#!/bin/sh
# postinstall for the tests: records its arguments and IMG_* environment
set -eu
root=$1
[ -f "$root/etc/core.conf" ] || { echo "packages are not installed yet" >&2; exit 3; }
shift
printf '%s\\n' "$@" > "$root/etc/postinstall.args"
[ "$root" = "$IMG_ROOTIMGDIR" ] && echo same > "$root/etc/postinstall.rootimgdir"
env | grep '^IMG_' | grep -v '^IMG_ROOTIMGDIR=' | sort > "$root/etc/postinstall.env"
echo "postinstall ran for $IMG_NAME"
"""

PROFILES: dict[str, Any] = {
    "base": {
        "packages": ["core", "kernel"],
        "erase": ["extra-rec"],
        "exclude": [
            "./boot*",
            "./usr/share/doc*",
            "./usr/share/locale*",
            "+./usr/share/locale/en*",
        ],
        "sync": [
            {"src": "etc/motd", "dest": "/etc/motd"},
            {"src": "etc/issue", "dest": "/etc/issue", "nodes": "n1"},
            {"src": "etc/hosts.site", "dest": "/etc/hosts", "mode": "append"},
        ],
        "postinstall": ["10-record first"],
    },
    "compute": {
        "inherits": ["base"],
        "packages": ["tool-a", "#NEW_INSTALL_LIST#", "tool-b"],
        "otherpkgs": ["hpc/hpc-app"],
    },
    "lite": {
        "inherits": ["compute"],
        "litefile": {
            "/etc/core.conf": "tmpfs,rw",
            "/var/log/": "persistent",
            "/etc/lite/": "link",
            "/etc/lite/child": "link",
        },
    },
}

IMAGES = {
    "img-base": {"profile": "base", "distro": "rocky8"},
    "img-compute": {"profile": "compute", "distro": "rocky8"},
    "img-lite": {
        "profile": "lite",
        "distro": "rocky8",
        "attributes": {"provmethod": "statelite", "rootfstype": "ramdisk"},
    },
}


@pytest.fixture(scope="session")
def native_repos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    top = tmp_path_factory.mktemp("repos")
    build_repo(top / "media" / "BaseOS", BASEOS)
    build_repo(top / "media" / "AppStream", APPSTREAM)
    build_repo(top / "other" / "hpc", HPC)
    return top


def site_doc(repos: Path, install: Path, build: dict[str, Any]) -> dict[str, Any]:
    return {
        "site": "native",
        "defaults": {"osname": "Linux", "imagetype": "linux", "provmethod": "netboot"},
        "distros": {
            "rocky8": {
                "osvers": "rocky8",
                "osarch": "x86_64",
                "family": "rocky",
                "pkgdir": str(repos / "media"),
                "otherpkgdir": str(repos / "other"),
            }
        },
        "directors": {
            "here": {
                "install_root": str(install),
                "prefix": "p",
                "builder": "native",
                "build": {"jobs": 2, **build},
            }
        },
        "images": copy.deepcopy(IMAGES),
    }


@dataclass
class NativeSite:
    repo: git.Repo
    site: Path
    install: Path
    repos: Path

    def write(self, rel: str, text: str) -> None:
        write_tree(self.site, {rel: text})

    def profile(self, name: str, doc: dict[str, Any]) -> None:
        self.write(f"profiles/{name}.yaml", dump_yaml(doc))

    def build_options(self, **options: Any) -> None:
        """Rewrite imagespec.yaml with these build options for the director."""
        self.write("imagespec.yaml", dump_yaml(site_doc(self.repos, self.install, options)))

    def commit(self, message: str = "change") -> str:
        self.repo.git.add("-A")
        self.repo.index.commit(message)
        return str(self.repo.head.commit.hexsha)

    def state(self) -> dict[str, Any]:
        return json.loads((self.install / "p/.imagespec/state.json").read_text())

    def rootimgdir(self, image: str) -> Path:
        return self.install / "netboot/rocky8/x86_64" / image.removeprefix("img-")

    def generation_dir(self, image: str, number: int) -> Path:
        r = self.rootimgdir(image)
        return r.parent / f".{r.name}.imagespec" / str(number)

    def current(self, image: str) -> str:
        return os.readlink(self.rootimgdir(image))

    def installed(self, image: str) -> set[str]:
        return rpm_names(self.rootimgdir(image) / "rootimg")

    def log(self, image: str) -> str:
        logs = sorted((self.install / "p/.imagespec/logs" / image).iterdir())
        return logs[-1].read_text()


def rpm_names(root: Path) -> set[str]:
    out = subprocess.run(
        ["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "-qa", "--qf", "%{NAME}\\n"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(out.split())


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


@pytest.fixture
def native(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native_repos: Path) -> NativeSite:
    for key, value in IDENTITY.items():
        monkeypatch.setenv(key, value)
    site, install = tmp_path / "site", tmp_path / "install"
    files = {"imagespec.yaml": dump_yaml(site_doc(native_repos, install, {}))}
    files.update({f"profiles/{n}.yaml": dump_yaml(p) for n, p in PROFILES.items()})
    files.update(
        {
            "synclists/etc/motd": "welcome to the test cluster\n",
            "synclists/etc/issue": "only for n1\n",
            "synclists/etc/hosts.site": "10.0.0.1 head\n",
            "postinstall/10-record": RECORD,
        }
    )
    write_tree(site, files)
    (site / "postinstall/10-record").chmod(0o755)
    repo = git.Repo.init(site, initial_branch="main")
    native_site = NativeSite(repo, site, install, native_repos)
    native_site.commit("site")
    monkeypatch.chdir(site)
    return native_site
