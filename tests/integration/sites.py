"""Sites in real git repositories for the integration tests, and the command run in-process.

Three sites, each with the data its tests need, built the same way (files
from dicts, a repository with a pinned identity, a commit):

- the small site (`small_site`, held in a `SiteRepo`): base, aux, login,
  compute, legacy (frozen) and a statelite image, for diff, markdown,
  workflow and hostile-input tests.  Commits carry pinned, increasing dates,
  so a sequence of commits has the same shas on every run.
- the apply site (fixture `env`, files from `apply_site_files`): a local
  director `here` under tmp_path with the xCAT stand-in on PATH.
- the native site (fixtures `native` and `native_repos`): real RPMs, real
  repositories and the native builder, which really runs dnf.

Commands run in-process through `imagespec.cli.main`, the real entry point
(which always ends in SystemExit): `run_main`.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Optional, TypeVar, Union

import git
import pytest

from imagespec.cli import main
from tests.helpers import Files, dump_yaml, site_files, write_tree
from tests.rpmrepo import Pkg, build_repo
from tests.xcatstub import install_stub, read_calls

# ---------------------------------------------------------------- git

NAME = "imagespec tests"
EMAIL = "tests@imagespec.invalid"
EPOCH = 1704067200  # 2024-01-01T00:00:00Z
IDENTITY = {
    "GIT_AUTHOR_NAME": NAME,
    "GIT_AUTHOR_EMAIL": EMAIL,
    "GIT_COMMITTER_NAME": NAME,
    "GIT_COMMITTER_EMAIL": EMAIL,
}


class Clock:
    """Pinned, increasing commit dates."""

    def __init__(self) -> None:
        self.tick = 0

    def next(self) -> str:
        self.tick += 1
        return f"{EPOCH + 60 * self.tick} +0000"


def identity_env(date: str) -> dict[str, str]:
    return {**IDENTITY, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}


Edits = Mapping[str, Union[str, bytes, None]]


def apply_edits(root: Path, edits: Edits) -> None:
    """Write (str/bytes) or delete (None) site files; scripts stay executable."""
    for rel, content in edits.items():
        path = root / rel
        if content is None:
            path.unlink()
        else:
            write_tree(root, {rel: content})


@dataclass
class SiteRepo:
    """A git repository whose work tree holds a site at `site` (the top or a subdirectory)."""

    repo: git.Repo
    top: Path
    site: Path
    clock: Clock

    def commit(self, message: str = "change", edits: Optional[Edits] = None) -> str:
        """Apply edits to the site, stage everything and commit; the new sha."""
        if edits:
            apply_edits(self.site, edits)
        self.repo.git.add(A=True)
        self.repo.git.commit(
            "-q", "--allow-empty", "-m", message, env=identity_env(self.clock.next())
        )
        return str(self.repo.head.commit.hexsha)

    def write(self, rel: str, text: str) -> None:
        write_tree(self.site, {rel: text})

    def branch(self, name: str, start: str, edits: Edits, back_to: str = "main") -> str:
        """A branch `name` from `start` with one commit of edits; the work tree returns to back_to."""
        self.repo.git.checkout("-q", "-B", name, start)
        try:
            return self.commit(f"{name}: edit", edits)
        finally:
            self.repo.git.checkout("-q", back_to)

    def sha(self, rev: str) -> str:
        return str(self.repo.commit(rev).hexsha)


def new_repo(top: Path, branch: str = "main") -> git.Repo:
    """git init top with the tests' identity and no signing."""
    top.mkdir(parents=True, exist_ok=True)
    repo = git.Repo.init(top, initial_branch=branch)
    with repo.config_writer() as config:
        config.set_value("user", "name", NAME)
        config.set_value("user", "email", EMAIL)
        config.set_value("commit", "gpgsign", "false")
        config.set_value("tag", "gpgsign", "false")
        config.set_value("core", "autocrlf", "false")
    return repo


def init_repo(
    top: Path,
    files: Files,
    subdir: str = "",
    branch: str = "main",
    clock: Optional[Clock] = None,
) -> SiteRepo:
    """git init top, write the site (under subdir) and commit it."""
    repo = new_repo(top, branch)
    site = top / subdir if subdir else top
    write_tree(site, files)
    handle = SiteRepo(repo, top, site, clock or Clock())
    handle.commit("site")
    return handle


SiteT = TypeVar("SiteT", bound=SiteRepo)


def work_in(site: SiteT, monkeypatch: pytest.MonkeyPatch) -> SiteT:
    """Commit the site as written, give git the tests' identity and cd into the site."""
    for key, value in IDENTITY.items():
        monkeypatch.setenv(key, value)
    site.commit("site")
    monkeypatch.chdir(site.site)
    return site


def clone(source: SiteRepo, dest: Path) -> SiteRepo:
    """A clone of source (so `origin/...` exists), with the same identity settings."""
    repo = git.Repo.clone_from(str(source.top), str(dest))
    with repo.config_writer() as config:
        config.set_value("user", "name", NAME)
        config.set_value("user", "email", EMAIL)
        config.set_value("commit", "gpgsign", "false")
    rel = source.site.relative_to(source.top)
    return SiteRepo(repo, dest, dest / rel, Clock())


def snapshot(top: Path) -> dict[str, bytes]:
    """Every file of a work tree (outside .git) and its bytes."""
    return {
        p.relative_to(top).as_posix(): p.read_bytes()
        for p in sorted(top.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(top).parts
    }


# ---------------------------------------------------------------- running the command


class Run(NamedTuple):
    """What a command did; unpacks as (code, out, err)."""

    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()

    def json(self) -> Any:
        assert self.code in (0, 2), self.err
        return json.loads(self.out)


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    """The console entry point in-process: it always ends in SystemExit."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as caught:
        main(list(argv))
    captured = capsys.readouterr()
    code = caught.value.code
    return Run(
        code if isinstance(code, int) else (0 if code is None else 1), captured.out, captured.err
    )


def assert_clean_failure(run: Run) -> None:
    """A user mistake: exit 1, a message, never a traceback or an internal error."""
    assert run.code == 1, (run.code, run.out, run.err)
    assert run.err.strip()
    assert "Traceback" not in run.out + run.err
    assert "internal error" not in run.err


def unchanged_entry() -> dict[str, Any]:
    return {"status": "unchanged", "actions": [], "changes": {}}


# ---------------------------------------------------------------- the small site (diff)

SCRIPT = '#!/bin/sh\necho "$0" "$@"\n'

BASE = """\
description: Root of every interactive and compute image
packages: [bash, chrony]
exclude: ["./usr/share/doc*"]
sync:
  - {src: etc/motd, dest: /etc/motd}
  - {src: etc/hosts, dest: /etc/hosts, nodes: compute}
postinstall: [10-a, 20-b]
postscripts: [50-site]
"""
AUX = """\
description: Admin tools
inherits: [base]
packages: [vim-enhanced]
"""
LOGIN = """\
description: Login nodes
inherits: [base, aux]
packages: [gcc]
"""
COMPUTE = """\
description: Compute nodes
inherits: [base]
packages: [slurm]
"""
LEGACY = """\
description: The old partition, frozen
inherits: [base]
packages: [python2]
"""
LITE = """\
description: Statelite nodes
packages: [bash]
litefile: {/etc/ntp.conf: tmpfs}
attributes: {provmethod: statelite}
"""
SMALL_PROFILES = {
    "base": BASE,
    "aux": AUX,
    "login": LOGIN,
    "compute": COMPUTE,
    "legacy": LEGACY,
    "lite": LITE,
}
SMALL_IMAGES: dict[str, Any] = {
    "img-aux": {"profile": "aux", "distro": "rocky8"},
    "img-login": {"profile": "login", "distro": "rocky8"},
    "img-compute": {"profile": "compute", "distro": "rocky8"},
    "img-legacy": {"profile": "legacy", "distro": "rocky8", "frozen": True},
    "img-lite": {"profile": "lite", "distro": "rocky8"},
}
SMALL_FILES: Files = {
    "synclists/etc/motd": "Welcome\n",
    "synclists/etc/hosts": "127.0.0.1 localhost\n",
    "postinstall/10-a": SCRIPT,
    "postinstall/20-b": SCRIPT,
    "postscripts/50-site": SCRIPT,
}
# base renamed to root: the same content, the children's `inherits` updated
RENAMED_BASE: dict[str, Optional[str]] = {
    "profiles/base.yaml": None,
    "profiles/root.yaml": BASE,
    "profiles/aux.yaml": AUX.replace("inherits: [base]", "inherits: [root]"),
    "profiles/login.yaml": LOGIN.replace("inherits: [base, aux]", "inherits: [root, aux]"),
    "profiles/compute.yaml": COMPUTE.replace("inherits: [base]", "inherits: [root]"),
    "profiles/legacy.yaml": LEGACY.replace("inherits: [base]", "inherits: [root]"),
}
ALL_IMAGES = sorted(SMALL_IMAGES)
# images whose chain includes base (every one but the standalone statelite image)
BASE_IMAGES = ["img-aux", "img-compute", "img-legacy", "img-login"]
TWO_DIRECTORS = {
    "prod": {"branch": "main", "install_root": "/install", "prefix": "prod"},
    "test": {"branch": "dev", "install_root": "/install", "prefix": "test"},
}


def small_site(
    profiles: Optional[Mapping[str, str]] = None,
    images: Optional[Mapping[str, Any]] = None,
    **site_overrides: Any,
) -> Files:
    """The small site as {path: content}, optionally with other profiles or images."""
    return site_files(
        dict(profiles if profiles is not None else SMALL_PROFILES),
        images=dict(images if images is not None else SMALL_IMAGES),
        extra=dict(SMALL_FILES),
        **site_overrides,
    )


def site_yaml(images: Optional[Mapping[str, Any]] = None, **site_overrides: Any) -> str:
    """imagespec.yaml of the small site, optionally with other images."""
    text = small_site(images=images, **site_overrides)["imagespec.yaml"]
    assert isinstance(text, str)
    return text


# ---------------------------------------------------------------- sites with a director


def director_site_doc(
    name: str, director: dict[str, Any], images: dict[str, Any], **distro: str
) -> dict[str, Any]:
    """imagespec.yaml of a site with one rocky8 distro and one director, `here`."""
    return {
        "site": name,
        "defaults": {"osname": "Linux", "imagetype": "linux", "provmethod": "netboot"},
        "distros": {
            "rocky8": {"osvers": "rocky8", "osarch": "x86_64", "family": "rocky", **distro}
        },
        "directors": {"here": director},
        "images": images,
    }


def profile_files(profiles: Mapping[str, Any]) -> Files:
    return {f"profiles/{n}.yaml": dump_yaml(p) for n, p in profiles.items()}


@dataclass
class DirectorSite(SiteRepo):
    """A site in its own repository whose director `here` (prefix p) is under `install`."""

    install: Path

    def state(self) -> dict[str, Any]:
        return json.loads((self.install / "p" / ".imagespec" / "state.json").read_text())


# ---------------------------------------------------------------- the apply site (xCAT stand-in)

APPLY_PROFILES = {
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
    # the frozen image's own profile: the tests that edit base's files change no file of it
    # (test_apply_frozen.py shares them on purpose)
    "old": {"packages": ["bash"], "postscripts": ["50-old"]},
}
APPLY_IMAGES = {
    "img-login": {"profile": "login", "distro": "rocky8"},
    "img-compute": {"profile": "compute", "distro": "rocky8"},
    "img-lite": {"profile": "lite", "distro": "rocky8", "attributes": {"provmethod": "statelite"}},
    "img-old": {
        "profile": "old",
        "distro": "rocky8",
        "frozen": True,
        "attributes": {"rootimgdir": "INSTALL/netboot/old"},
    },
}
APPLY_FILES: Files = {
    "synclists/etc/motd": "welcome\n",
    "postinstall/10-a": "#!/bin/sh\nexit 0\n",
    "postscripts/50-site": "#!/bin/sh\nexit 0\n",
    "postscripts/50-old": "#!/bin/sh\nexit 0\n",
}


def apply_site_doc(director: dict[str, Any]) -> dict[str, Any]:
    return director_site_doc(
        "t", director, _images_under(director["install_root"]), pkgdir="/install/rocky8/x86_64"
    )


def _images_under(install_root: str) -> dict[str, Any]:
    """APPLY_IMAGES with INSTALL in a rootimgdir replaced by the director's install_root."""
    images = copy.deepcopy(APPLY_IMAGES)
    for image in images.values():
        attributes = image.get("attributes", {})
        if "rootimgdir" in attributes:
            attributes["rootimgdir"] = attributes["rootimgdir"].replace("INSTALL", install_root)
    return images


def apply_site_files(director: dict[str, Any]) -> Files:
    """The apply site as {path: content} for the given director `here`."""
    return {
        "imagespec.yaml": dump_yaml(apply_site_doc(director)),
        **profile_files(APPLY_PROFILES),
        **APPLY_FILES,
    }


@dataclass
class Env(DirectorSite):
    """The apply site; the stand-in records its calls under stub_state."""

    stub_state: Path

    def calls(self) -> list[list[str]]:
        return [[c["cmd"], *c["args"]] for c in read_calls(self.stub_state)]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
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
    write_tree(site, apply_site_files(director))
    return work_in(Env(new_repo(site), site, site, Clock(), install, stub_state), monkeypatch)


def foreign_lock(lock: Path) -> None:
    """A director lock held by an apply on another host (runner-7), which imagespec only
    reports and never breaks."""
    lock.mkdir(parents=True)
    info = {
        "holder": "ci@runner-7",
        "host": "runner-7",
        "pid": 4242,
        "commit": "0123456789abcdef",
        "started": "2026-11-21T00:00:00Z",
    }
    (lock / "info.json").write_text(json.dumps(info))


STAGING = "-imagespec-staging"  # the xcat builder builds image X as osimage X-imagespec-staging


def build_calls(calls: list[list[str]]) -> list[list[str]]:
    """genimage, packimage and liteimg calls, named by the image they build."""
    return [
        [*c[:-1], c[-1].removesuffix(STAGING)]
        for c in calls
        if c[0] in ("genimage", "packimage", "liteimg")
    ]


def changing_calls(calls: list[list[str]]) -> list[list[str]]:
    """Every xCAT call but the reads (lsdef, tabdump) plan makes on every run."""
    return [c for c in calls if c[0] not in ("lsdef", "tabdump")]


# ---------------------------------------------------------------- the native site (real dnf)

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
    Pkg("tool-b", {"/usr/bin/tool-b": "b\n"}, provides=["tool-b-compat"]),
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

NATIVE_PROFILES: dict[str, Any] = {
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
NATIVE_IMAGES = {
    "img-base": {"profile": "base", "distro": "rocky8"},
    "img-compute": {"profile": "compute", "distro": "rocky8"},
    "img-lite": {
        "profile": "lite",
        "distro": "rocky8",
        "attributes": {"provmethod": "statelite", "rootfstype": "ramdisk"},
    },
}
NATIVE_FILES: Files = {
    "synclists/etc/motd": "welcome to the test cluster\n",
    "synclists/etc/issue": "only for n1\n",
    "synclists/etc/hosts.site": "10.0.0.1 head\n",
    "postinstall/10-record": RECORD,
}


@pytest.fixture(scope="session")
def native_repos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """EL8-like media (BaseOS and AppStream under one pkgdir) and an otherpkgdir with hpc/."""
    top = tmp_path_factory.mktemp("repos")
    build_repo(top / "media" / "BaseOS", BASEOS)
    build_repo(top / "media" / "AppStream", APPSTREAM)
    build_repo(top / "other" / "hpc", HPC)
    return top


def native_site_doc(repos: Path, install: Path, build: dict[str, Any]) -> dict[str, Any]:
    director = {
        "install_root": str(install),
        "prefix": "p",
        "builder": "native",
        "build": {"jobs": 2, **build},
    }
    return director_site_doc(
        "native",
        director,
        copy.deepcopy(NATIVE_IMAGES),
        pkgdir=str(repos / "media"),
        otherpkgdir=str(repos / "other"),
    )


@dataclass
class NativeSite(DirectorSite):
    """The native site; `repos` holds the package repositories it builds from."""

    repos: Path

    def profile(self, name: str, doc: dict[str, Any]) -> None:
        self.write(f"profiles/{name}.yaml", dump_yaml(doc))

    def build_options(self, **options: Any) -> None:
        """Rewrite imagespec.yaml with these build options for the director."""
        self.write("imagespec.yaml", dump_yaml(native_site_doc(self.repos, self.install, options)))

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


@pytest.fixture
def native(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native_repos: Path) -> NativeSite:
    """The native site in tmp_path: director `here` builds with dnf into tmp_path/install."""
    site, install = tmp_path / "site", tmp_path / "install"
    files = {
        "imagespec.yaml": dump_yaml(native_site_doc(native_repos, install, {})),
        **profile_files(NATIVE_PROFILES),
        **NATIVE_FILES,
    }
    write_tree(site, files)
    made = NativeSite(new_repo(site), site, site, Clock(), install, native_repos)
    return work_in(made, monkeypatch)
