"""Issue #11: hostile or careless repository content never escapes its place.

For every case of the corpus (tests/integration/hostile.py) each command
that reads a site (validate, render, diff, plan, apply) runs as a real
subprocess under a memory and CPU limit (validate and apply for every case,
render, diff and plan too for the cases marked every_command), and must:
- exit 1 with a `path:line:col: message` line naming the problem,
- print no traceback and no content of files outside the site,
- leave no process behind,
- write and delete nothing: the whole sandbox around the site and the
  director is byte-for-byte the same afterwards.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import git
import pytest

from tests.helpers import write_tree
from tests.integration.hostile import CASES, SECRET, Case, make_site
from tests.integration.sites import identity_env

MEMORY_LIMIT = 1 << 30  # bytes of address space: billion laughs needed 2.7 GB
CPU_LIMIT = 60  # seconds of CPU: a hang or a blow-up is killed, never waited for
TIMEOUT = 120  # seconds of wall-clock time, the same idea for a process that sleeps
PROBLEM_LINE = re.compile(r"^(?:[0-9a-f]{10}:)?[^\s:]+:\d+:\d+: ", re.MULTILINE)


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_LIMIT, CPU_LIMIT))


def imagespec(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """The real command in a child process with resource limits."""
    return subprocess.run(
        [sys.executable, "-m", "imagespec", *argv],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=_limits,
        env={**os.environ, "IMAGESPEC_IO_TIMEOUT": "5"},
    )


def sandbox_state(top: Path) -> dict[str, bytes]:
    """Every file, symlink and directory under top (outside .git) with its content."""
    state: dict[str, bytes] = {}
    for path in sorted(top.rglob("*")):
        rel = path.relative_to(top)
        if ".git" in rel.parts:
            continue
        if path.is_symlink():
            state[rel.as_posix()] = b"link:" + os.readlink(path).encode()
        elif path.is_file():
            state[rel.as_posix()] = path.read_bytes()
        else:
            state[rel.as_posix() + "/"] = b""
    return state


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention text (our children name the sandbox)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (
                (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            )
        except OSError:
            continue
        if text in cmdline and "pytest" not in cmdline:
            found.append(cmdline)
    return found


def commit(repo: git.Repo, message: str, tick: int) -> None:
    repo.git.add(A=True)
    date = f"{1704067200 + 60 * tick} +0000"
    repo.git.commit("-q", "--allow-empty", "-m", message, env=identity_env(date))


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """tmp_path/box: site/ (a git repo with the good site), director/install/, outside/."""
    box = tmp_path / "box"
    install = box / "director" / "install"
    install.mkdir(parents=True)
    write_tree(box / "outside", {"secret.txt": SECRET + "\n", "fam/keep": SECRET})
    site = box / "site"
    write_tree(site, make_site(str(install), Case("good", lambda doc, files: None, "")))
    repo = git.Repo.init(site, initial_branch="main")
    commit(repo, "good site", 1)
    return box


COMMANDS = {
    "validate": ["validate"],
    "render": ["render", "--out", "OUT"],
    "diff": ["diff", "HEAD~1", "HEAD"],
    "plan": ["plan", "-d", "here"],
    "apply": ["apply", "-d", "here", "--yes"],
}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_fails_cleanly_everywhere(sandbox: Path, case: Case) -> None:
    site = sandbox / "site"
    install = sandbox / "director" / "install"
    for rel in [p for p in site.rglob("*") if p.is_file() and ".git" not in p.parts]:
        rel.unlink()
    write_tree(site, make_site(str(install), case))
    commit(git.Repo(site), f"hostile: {case.id}", 2)
    before = sandbox_state(sandbox.parent)
    for name, argv in COMMANDS.items():
        if name not in ("validate", "apply") and not case.every_command:
            continue
        argv = [str(sandbox / "out") if a == "OUT" else a for a in argv]
        result = imagespec(site, *argv)
        said = result.stdout + result.stderr
        context = f"{case.id}: imagespec {' '.join(argv)} -> {result.returncode}\n{said[-3000:]}"
        assert result.returncode == 1, context
        assert "Traceback" not in said and "internal error" not in said, context
        assert SECRET not in said, context
        lines = [m for m in PROBLEM_LINE.finditer(result.stderr)]
        assert lines, context
        assert re.search(case.expect, result.stderr), context
        assert not processes_mentioning(str(sandbox)), context
        assert sandbox_state(sandbox.parent) == before, f"{name} changed files: {context}"
