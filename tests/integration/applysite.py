"""A small site in a real git repository with a local director and the xCAT stand-in on PATH.

Shared by the apply tests; the `env` fixture is registered in conftest.py.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import pytest

from imagespec.cli import main
from tests.helpers import dump_yaml, write_tree
from tests.xcatstub import install_stub, read_calls

IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@imagespec.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@imagespec.invalid",
}

PROFILES = {
    "base": {
        "packages": ["bash", "chrony"],
        "exclude": ["./usr/share/doc*"],
        "sync": [{"src": "etc/motd", "dest": "/etc/motd"}],
        "postinstall": ["10-a"],
        "postscripts": ["50-site"],
    },
    "aux": {"inherits": ["base"], "packages": ["vim-enhanced"]},
    "login": {"inherits": ["base", "aux"], "packages": ["gcc"]},
    "compute": {"inherits": ["base"], "packages": ["slurm"]},
    "lite": {
        "inherits": ["compute"],
        "litefile": {"/var/log/": "persistent"},
        "sync": [{"dest": "/etc/motd", "drop": True}],
    },
}
IMAGES = {
    "img-login": {"profile": "login", "distro": "rocky8"},
    "img-compute": {"profile": "compute", "distro": "rocky8"},
    "img-lite": {"profile": "lite", "distro": "rocky8", "attributes": {"provmethod": "statelite"}},
    "img-old": {
        "profile": "compute",
        "distro": "rocky8",
        "frozen": True,
        "attributes": {"rootimgdir": "INSTALL/netboot/old"},
    },
}


def site_doc(director: dict[str, Any]) -> dict[str, Any]:
    return {
        "site": "t",
        "defaults": {"osname": "Linux", "imagetype": "linux", "provmethod": "netboot"},
        "distros": {
            "rocky8": {
                "osvers": "rocky8",
                "osarch": "x86_64",
                "family": "rocky",
                "pkgdir": "/install/rocky8/x86_64",
            }
        },
        "directors": {"here": director},
        "images": _images_under(director["install_root"]),
    }


def _images_under(install_root: str) -> dict[str, Any]:
    """IMAGES with INSTALL in a rootimgdir replaced by the director's install_root."""
    images = copy.deepcopy(IMAGES)
    for image in images.values():
        attributes = image.get("attributes", {})
        if "rootimgdir" in attributes:
            attributes["rootimgdir"] = attributes["rootimgdir"].replace("INSTALL", install_root)
    return images


@dataclass
class Env:
    repo: git.Repo
    site: Path
    install: Path
    stub_state: Path

    def write(self, rel: str, text: str) -> None:
        write_tree(self.site, {rel: text})

    def commit(self, message: str = "change") -> str:
        self.repo.git.add("-A")
        self.repo.index.commit(message)
        return str(self.repo.head.commit.hexsha)

    def calls(self) -> list[list[str]]:
        return [[c["cmd"], *c["args"]] for c in read_calls(self.stub_state)]

    def state(self) -> dict[str, Any]:
        return json.loads((self.install / "p" / ".imagespec" / "state.json").read_text())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    code = exc.value.code if isinstance(exc.value.code, int) else 0
    return code, out, err


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    for key, value in IDENTITY.items():
        monkeypatch.setenv(key, value)
    stub_state = tmp_path / "xcat"
    stub_bin = install_stub(tmp_path / "xcat-bin", stub_state)
    monkeypatch.setenv("PATH", f"{stub_bin}{os.pathsep}{os.environ['PATH']}")
    site = tmp_path / "site"
    install = tmp_path / "install"
    director = {
        "install_root": str(install),
        "prefix": "p",
        "builder": "xcat",
        "build": {"jobs": 2},
    }
    files = {"imagespec.yaml": dump_yaml(site_doc(director))}
    files.update({f"profiles/{n}.yaml": dump_yaml(p) for n, p in PROFILES.items()})
    files.update(
        {
            "synclists/etc/motd": "welcome\n",
            "postinstall/10-a": "#!/bin/sh\nexit 0\n",
            "postscripts/50-site": "#!/bin/sh\nexit 0\n",
        }
    )
    write_tree(site, files)
    repo = git.Repo.init(site, initial_branch="main")
    e = Env(repo, site, install, stub_state)
    e.commit("site")
    monkeypatch.chdir(site)
    return e


def build_calls(calls: list[list[str]]) -> list[list[str]]:
    return [
        c for c in calls if c[0] in ("mkdef", "chdef", "genimage", "packimage", "liteimg", "rmdef")
    ]


def processes_with(text: str) -> list[int]:
    """The pids of running processes whose command line contains `text` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry))
    return found


def kill_processes_with(text: str) -> None:
    """Test cleanup: SIGKILL whatever still runs with `text` in its command line."""
    for pid in processes_with(text):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
