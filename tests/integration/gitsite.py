"""Real git repositories holding small sites, for the `diff` tests and the workflow tests.

Commits carry a pinned identity and pinned, increasing dates, so a sequence of
commits has the same shas on every run.  Commands run in-process through
`imagespec.cli.main`, the real entry point (which always ends in SystemExit).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import git
import pytest

from imagespec.cli import main
from tests.helpers import Files, site_files, write_tree

NAME = "imagespec tests"
EMAIL = "tests@imagespec.invalid"
EPOCH = 1704067200  # 2024-01-01T00:00:00Z

# ---------------------------------------------------------------- the small site

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
PROFILES = {
    "base": BASE,
    "aux": AUX,
    "login": LOGIN,
    "compute": COMPUTE,
    "legacy": LEGACY,
    "lite": LITE,
}
IMAGES: dict[str, Any] = {
    "img-aux": {"profile": "aux", "distro": "rocky8"},
    "img-login": {"profile": "login", "distro": "rocky8"},
    "img-compute": {"profile": "compute", "distro": "rocky8"},
    "img-legacy": {"profile": "legacy", "distro": "rocky8", "frozen": True},
    "img-lite": {"profile": "lite", "distro": "rocky8"},
}
EXTRA: Files = {
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
ALL_IMAGES = sorted(IMAGES)
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
        dict(profiles if profiles is not None else PROFILES),
        images=dict(images if images is not None else IMAGES),
        extra=dict(EXTRA),
        **site_overrides,
    )


def site_yaml(images: Optional[Mapping[str, Any]] = None, **site_overrides: Any) -> str:
    """imagespec.yaml of the small site, optionally with other images."""
    text = small_site(images=images, **site_overrides)["imagespec.yaml"]
    assert isinstance(text, str)
    return text


# ---------------------------------------------------------------- git


class Clock:
    """Pinned, increasing commit dates."""

    def __init__(self) -> None:
        self.tick = 0

    def next(self) -> str:
        self.tick += 1
        return f"{EPOCH + 60 * self.tick} +0000"


def identity_env(date: str) -> dict[str, str]:
    return {
        "GIT_AUTHOR_NAME": NAME,
        "GIT_AUTHOR_EMAIL": EMAIL,
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_NAME": NAME,
        "GIT_COMMITTER_EMAIL": EMAIL,
        "GIT_COMMITTER_DATE": date,
    }


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

    def commit(self, message: str, edits: Optional[Edits] = None) -> str:
        """Apply edits to the site, stage everything and commit; the new sha."""
        if edits:
            apply_edits(self.site, edits)
        self.repo.git.add(A=True)
        self.repo.git.commit(
            "-q", "--allow-empty", "-m", message, env=identity_env(self.clock.next())
        )
        return str(self.repo.head.commit.hexsha)

    def branch(self, name: str, start: str, edits: Edits, back_to: str = "main") -> str:
        """A branch `name` from `start` with one commit of edits; the work tree returns to back_to."""
        self.repo.git.checkout("-q", "-B", name, start)
        try:
            return self.commit(f"{name}: edit", edits)
        finally:
            self.repo.git.checkout("-q", back_to)

    def sha(self, rev: str) -> str:
        return str(self.repo.commit(rev).hexsha)


def init_repo(
    top: Path,
    files: Files,
    subdir: str = "",
    branch: str = "main",
    clock: Optional[Clock] = None,
) -> SiteRepo:
    """git init top, write the site (under subdir) and commit it."""
    top.mkdir(parents=True, exist_ok=True)
    repo = git.Repo.init(top, initial_branch=branch)
    with repo.config_writer() as config:
        config.set_value("user", "name", NAME)
        config.set_value("user", "email", EMAIL)
        config.set_value("commit", "gpgsign", "false")
        config.set_value("tag", "gpgsign", "false")
        config.set_value("core", "autocrlf", "false")
    site = top / subdir if subdir else top
    write_tree(site, files)
    handle = SiteRepo(repo, top, site, clock or Clock())
    handle.commit("site")
    return handle


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


@dataclass
class Run:
    code: int
    out: str
    err: str

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
    if code is None:
        code = 0
    assert isinstance(code, int), code
    return Run(code, captured.out, captured.err)


def assert_clean_failure(run: Run) -> None:
    """A user mistake: exit 1, a message, never a traceback or an internal error."""
    assert run.code == 1, (run.code, run.out, run.err)
    assert run.err.strip()
    assert "Traceback" not in run.out + run.err
    assert "internal error" not in run.err


def unchanged_entry() -> dict[str, Any]:
    return {"status": "unchanged", "actions": [], "changes": {}}
