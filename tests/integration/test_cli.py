"""The command line as users and CI jobs meet it (SPEC §8, §9).

Three ways in: typer's CliRunner on `imagespec.cli.app` (the commands
themselves), `imagespec.cli.main(argv)` in-process (the real entry point,
which maps every failure to a message and an exit code), and a subprocess
`python -m imagespec.cli` (what a shell sees).  Sites are real trees in
tmp_path; director choice by branch uses a real git repository.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import git
import pytest
from typer.testing import CliRunner

from imagespec.cli import app
from imagespec.site import open_site
from imagespec.source import WorktreeSource
from tests.helpers import Files, site_files, write_tree
from tests.integration.sites import Run, init_repo, run_main

REPO_ROOT = Path(__file__).resolve().parents[2]
POSITION_LINE = re.compile(r"^[^\s:]+(/[^\s:]+)*:\d+:\d+: \S.*$")

# ---------------------------------------------------------------- the test site

BASE = """\
description: Minimal root
packages: [bash, emacs, chrony]
exclude: ["./usr/share/doc*"]
sync:
  - {src: etc/motd, dest: /etc/motd}
"""
AUX = """\
description: Admin tools
inherits: [base]
packages: [vim-enhanced, git]
"""
LOGIN = """\
description: Login nodes
inherits: [base, aux]
packages: [gcc, -emacs]
otherpkgs: [slurm/slurm]
erase: [firewalld]
sync:
  - {src: etc/motd.login, dest: /etc/motd}
  - {src: usr/local/sbin/node-info, dest: /usr/local/sbin/node-info, mode: executealways}
postinstall: ["20-tune interactive"]
postscripts: [50-lustre-mount, syncfiles]
postbootscripts: ["70-slurm-start munge"]
attributes: {rootfstype: nfs}
"""
SCRIPT = '#!/bin/sh\necho "$0" "$@"\n'
EXTRA: Files = {
    "synclists/etc/motd": "Welcome\n",
    "synclists/etc/motd.login": "Welcome to the login nodes\n",
    "synclists/usr/local/sbin/node-info": SCRIPT,
    "postinstall/20-tune": SCRIPT,
    "postscripts/50-lustre-mount": SCRIPT,
    "postscripts/70-slurm-start": SCRIPT,
}
IMAGES = {"img-login": {"profile": "login", "distro": "rocky8"}}
TWO_DIRECTORS = {
    "prod": {"branch": "main", "install_root": "/install", "prefix": "prod"},
    "test": {"branch": "dev", "install_root": "/install", "prefix": "test"},
}

SHOW_KEYS = {
    "image",
    "profile",
    "chain",
    "pkglist",
    "otherpkglist",
    "erase",
    "exlist",
    "synclist",
    "postinstall",
    "postscripts",
    "postbootscripts",
    "litefile",
    "attributes",
    "frozen",
    "digests",
}


def demo_files(profiles: Optional[dict[str, str]] = None, **site_overrides: Any) -> Files:
    """The login site: base <- aux <- login, one image, scripts and sync sources."""
    chosen = profiles if profiles is not None else {"base": BASE, "aux": AUX, "login": LOGIN}
    return site_files(chosen, images=IMAGES, extra=EXTRA, **site_overrides)


def make_site(root: Path, files: Optional[Files] = None) -> Path:
    """Write a site under root; the node-info sync source is executable, as in a real repo."""
    write_tree(root, files if files is not None else demo_files())
    node_info = root / "synclists/usr/local/sbin/node-info"
    if node_info.exists():
        node_info.chmod(0o755)
    return root


def git_repo(root: Path, branch: str = "main") -> git.Repo:
    """Commit everything under root with a pinned identity, on the given branch."""
    return init_repo(root, {}, branch=branch).repo


# ---------------------------------------------------------------- three ways to run


def run_process(*argv: str, cwd: Path) -> Run:
    """`python -m imagespec.cli` as a shell would run it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "imagespec.cli", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def run_app(*argv: str) -> Run:
    """The typer app through CliRunner (no exit-code mapping by main)."""
    result = CliRunner().invoke(app, list(argv))
    return Run(result.exit_code, result.stdout, result.stderr)


def assert_no_traceback(run: Run) -> None:
    assert "Traceback" not in run.out
    assert "Traceback" not in run.err
    assert "internal error" not in run.err


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No colours, and crash logs (if any) land in tmp_path where tests can look for them."""
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return make_site(tmp_path / "site")


@pytest.fixture
def two_director_site(tmp_path: Path) -> Path:
    return make_site(tmp_path / "site", demo_files(directors=TWO_DIRECTORS))


# ---------------------------------------------------------------- validate


def test_validate_ok(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_main(capsys, "--site", str(site), "validate")
    assert run.code == 0
    assert run.out == "ok: 3 profiles, 1 images, 1 directors\n"
    assert run.err == ""


def test_validate_ok_through_cli_runner(site: Path) -> None:
    run = run_app("--site", str(site), "validate")
    assert run.code == 0
    assert run.out.startswith("ok: 3 profiles, 1 images, 1 directors")


def broken_files() -> Files:
    files = demo_files()
    files["profiles/login.yaml"] = LOGIN.replace("description:", "descripton:")
    files["imagespec.yaml"] = str(files["imagespec.yaml"]).replace(
        "builder: xcat", "builder: xcatt"
    )
    return files


BROKEN_LINES = [
    "imagespec.yaml:19:5: directors.main.builder: the string 'xcatt' is not allowed; "
    "use one of 'xcat', 'native' or 'none'",
    "profiles/login.yaml:1:1: unknown key 'descripton'; did you mean 'description'?",
]


def test_validate_errors_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = make_site(tmp_path / "site", broken_files())
    run = run_main(capsys, "--site", str(site), "validate")
    assert run.code == 1
    assert run.out == ""
    assert run.err_lines == BROKEN_LINES
    assert all(POSITION_LINE.match(line) for line in run.err_lines)
    assert_no_traceback(run)


def test_validate_errors_in_several_files_subprocess(tmp_path: Path) -> None:
    files = demo_files()
    files["profiles/login.yaml"] = LOGIN.replace("postscripts: [", "postscripts: [nope, ")
    files["profiles/base.yaml"] = BASE.replace("{src: etc/motd,", "{src: etc/mtod,")
    site = make_site(tmp_path / "site", files)
    run = run_process("validate", cwd=site)
    assert run.code == 1
    assert run.out == ""
    assert run.err_lines == [
        "profiles/base.yaml:5:5: sync: 'synclists/etc/mtod' does not exist; create it or fix the path",
        "profiles/login.yaml:10:15: postscripts: 'postscripts/nope' does not exist (not an xCAT "
        "built-in either; add it to builtin_postscripts if it is one); create it or fix the name",
    ]
    assert all(POSITION_LINE.match(line) for line in run.err_lines)
    assert_no_traceback(run)


def test_yaml_syntax_error_subprocess(tmp_path: Path) -> None:
    files = demo_files()
    files["profiles/aux.yaml"] = "packages: [vim\n"
    site = make_site(tmp_path / "site", files)
    run = run_process("--site", str(site), "validate", cwd=tmp_path)
    assert run.code == 1
    assert run.err_lines == [
        "profiles/aux.yaml:2:1: YAML syntax error: while parsing a flow sequence "
        "expected ',' or ']', but got '<stream end>'"
    ]
    assert_no_traceback(run)


def warning_files() -> Files:
    files = demo_files()
    files["profiles/aux.yaml"] = AUX.replace("[vim-enhanced, git]", "[vim-enhanced, git, -nano]")
    return files


WARNING_LINE = (
    "profiles/aux.yaml:3:31: '-nano' removes nothing: "
    "no earlier level of the chain adds 'nano' to packages"
)


def test_validate_warnings_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = make_site(tmp_path / "site", warning_files())
    run = run_main(capsys, "--site", str(site), "validate")
    assert run.code == 0
    assert run.err_lines == [WARNING_LINE.replace(": '-nano'", ": warning: '-nano'", 1)]
    assert run.out == "ok: 3 profiles, 1 images, 1 directors, 1 warning\n"


@pytest.mark.parametrize("via", ["main", "subprocess"])
def test_validate_strict_turns_warnings_into_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], via: str
) -> None:
    site = make_site(tmp_path / "site", warning_files())
    argv = ("--site", str(site), "validate", "--strict")
    run = run_main(capsys, *argv) if via == "main" else run_process(*argv, cwd=tmp_path)
    assert run.code == 1
    assert run.out == ""
    assert run.err_lines == [WARNING_LINE]
    assert_no_traceback(run)


@pytest.mark.parametrize("global_flag", [False, True], ids=["local-json", "global-json"])
def test_validate_json_ok_lists_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], global_flag: bool
) -> None:
    site = make_site(tmp_path / "site", warning_files())
    argv = ["--json", "validate"] if global_flag else ["validate", "--json"]
    run = run_main(capsys, "--site", str(site), *argv)
    assert run.code == 0
    assert json.loads(run.out) == {
        "ok": True,
        "problems": [
            {
                "file": "profiles/aux.yaml",
                "line": 3,
                "column": 31,
                "severity": "warning",
                "message": "'-nano' removes nothing: no earlier level of the chain adds 'nano' to packages",
            }
        ],
    }


def test_validate_json_errors_through_cli_runner(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", broken_files())
    run = run_app("--site", str(site), "validate", "--json")
    assert run.code == 1
    doc = json.loads(run.out)
    assert doc["ok"] is False
    assert doc["problems"] == [
        {
            "file": "imagespec.yaml",
            "line": 19,
            "column": 5,
            "severity": "error",
            "message": "directors.main.builder: the string 'xcatt' is not allowed; "
            "use one of 'xcat', 'native' or 'none'",
        },
        {
            "file": "profiles/login.yaml",
            "line": 1,
            "column": 1,
            "severity": "error",
            "message": "unknown key 'descripton'; did you mean 'description'?",
        },
    ]


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(("validate", "--json"), id="errors"),
        pytest.param(("validate", "--strict", "--json"), id="strict-warnings"),
        pytest.param(("--json", "validate", "--strict"), id="strict-warnings-global-json"),
    ],
)
def test_validate_json_with_errors_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    files = broken_files() if "--strict" not in argv else warning_files()
    site = make_site(tmp_path / "site", files)
    run = run_main(capsys, "--site", str(site), *argv)
    assert json.loads(run.out)["ok"] is False
    assert run.code == 1


def test_validate_json_with_errors_exits_1_subprocess(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", broken_files())
    run = run_process("validate", "--json", cwd=site)
    assert json.loads(run.out)["ok"] is False
    assert run.code == 1


# ---------------------------------------------------------------- graph


def test_graph_text(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_main(capsys, "--site", str(site), "graph")
    assert run.code == 0
    assert run.out == (
        "profiles (parents after '<-'):\n"
        "  aux <- base  # Admin tools\n"
        "  base  # Minimal root\n"
        "  login <- base, aux  # Login nodes\n"
        "images (chain):\n"
        "  img-login: base -> aux -> login (rocky8)\n"
    )


def test_graph_dot(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_main(capsys, "--site", str(site), "graph", "--format", "dot")
    assert run.code == 0
    assert run.out.startswith("digraph")
    assert '"login" -> "aux";' in run.out
    assert '"login" -> "base";' in run.out
    assert run.out.rstrip().endswith("}")


def test_graph_mermaid(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_main(capsys, "--site", str(site), "graph", "--format", "mermaid")
    assert run.code == 0
    assert run.out.startswith("graph")
    assert '"img-login"' in run.out


@pytest.mark.parametrize(
    "argv",
    [
        ("graph", "--format", "json"),
        ("graph", "-f", "json"),
        ("--json", "graph"),
        ("graph", "--json"),
    ],
    ids=["format-json", "short-format", "global-json", "local-json"],
)
def test_graph_json(site: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> None:
    run = run_main(capsys, "--site", str(site), *argv)
    assert run.code == 0
    doc = json.loads(run.out)
    assert {"profiles", "images"} <= set(doc)
    assert set(doc["profiles"]) == {"base", "aux", "login"}
    assert doc["profiles"]["login"]["inherits"] == ["base", "aux"]
    assert doc["images"]["img-login"]["chain"] == ["base", "aux", "login"]
    assert doc["images"]["img-login"]["profile"] == "login"


def test_graph_through_cli_runner(site: Path) -> None:
    run = run_app("--site", str(site), "graph", "--format", "dot")
    assert run.code == 0
    assert run.out.startswith("digraph")


# ---------------------------------------------------------------- show


@pytest.mark.parametrize("global_flag", [False, True], ids=["local-json", "global-json"])
def test_show_json_has_the_spec_shape(
    site: Path, capsys: pytest.CaptureFixture[str], global_flag: bool
) -> None:
    argv = ["--json", "show", "img-login"] if global_flag else ["show", "img-login", "--json"]
    run = run_main(capsys, "--site", str(site), *argv)
    assert run.code == 0
    doc = json.loads(run.out)
    assert set(doc) == SHOW_KEYS
    assert doc["image"] == "img-login"
    assert doc["profile"] == "login"
    assert doc["chain"] == ["base", "aux", "login"]
    assert doc["pkglist"] == ["bash", "chrony", "vim-enhanced", "git", "gcc"]
    assert doc["otherpkglist"] == ["slurm/slurm"]
    assert doc["erase"] == ["firewalld"]
    assert doc["exlist"] == ["./usr/share/doc*"]
    assert doc["postinstall"] == ["20-tune interactive"]
    assert doc["postscripts"] == ["50-lustre-mount", "syncfiles"]
    assert doc["postbootscripts"] == ["70-slurm-start munge"]
    assert doc["synclist"] == [
        {"src": ["etc/motd.login"], "dest": "/etc/motd", "mode": "copy", "nodes": None},
        {
            "src": ["usr/local/sbin/node-info"],
            "dest": "/usr/local/sbin/node-info",
            "mode": "executealways",
            "nodes": None,
        },
    ]
    for item in doc["synclist"]:
        assert set(item) == {"src", "dest", "mode", "nodes"}
    assert doc["litefile"] == {}
    assert doc["frozen"] is False
    assert doc["attributes"]["rootfstype"] == "nfs"
    assert doc["attributes"]["profile"] == "login"
    assert set(doc["digests"]) == {"build", "pack", "define"}
    for value in doc["digests"].values():
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", value)


def test_show_text(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_main(capsys, "--site", str(site), "show", "img-login")
    assert run.code == 0
    assert "img-login" in run.out
    assert "base -> aux -> login" in run.out
    assert "profiles/login.yaml:3:12" in run.out  # where gcc came from


def test_show_through_cli_runner(site: Path) -> None:
    run = run_app("--site", str(site), "show", "img-login", "--json")
    assert run.code == 0
    assert set(json.loads(run.out)) == SHOW_KEYS


@pytest.mark.parametrize("via", ["main", "subprocess"])
def test_show_unknown_image(site: Path, capsys: pytest.CaptureFixture[str], via: str) -> None:
    argv = ("show", "img-logn")
    run = (
        run_main(capsys, "--site", str(site), *argv)
        if via == "main"
        else run_process(*argv, cwd=site)
    )
    assert run.code == 1
    assert run.out == ""
    assert run.err_lines == [
        "error: unknown image 'img-logn'; did you mean 'img-login'? (images: img-login)"
    ]
    assert_no_traceback(run)


# ---------------------------------------------------------------- explain


def test_explain_package_names_profile_and_position(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_main(capsys, "--site", str(site), "explain", "img-login", "gcc")
    assert run.code == 0
    assert "packages: gcc added by login at profiles/login.yaml:3:12" in run.out
    assert "final pkglist: gcc (from login)" in run.out


def test_explain_inherited_package(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_main(capsys, "--site", str(site), "explain", "img-login", "git")
    assert run.code == 0
    assert "packages: git added by aux at profiles/aux.yaml:3:26" in run.out


def test_explain_removed_package_shows_the_removal(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_main(capsys, "--site", str(site), "explain", "img-login", "emacs")
    assert run.code == 0
    assert run.out.splitlines() == [
        "emacs in img-login:",
        "  packages: emacs added by base at profiles/base.yaml:2:18",
        "  packages: emacs removed by login at profiles/login.yaml:3:17",
        "  final: not present in the merged image",
    ]


def test_explain_removed_package_json(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_main(capsys, "--site", str(site), "--json", "explain", "img-login", "emacs")
    assert run.code == 0
    doc = json.loads(run.out)
    assert doc["final"] == []
    assert [(e["action"], e["level"], e["file"], e["line"]) for e in doc["events"]] == [
        ("added", "base", "profiles/base.yaml", 2),
        ("removed", "login", "profiles/login.yaml", 3),
    ]


def test_explain_attribute(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_main(capsys, "--site", str(site), "explain", "img-login", "rootfstype")
    assert run.code == 0
    assert "attributes: rootfstype = nfs set by login at profiles/login.yaml:12:14" in run.out
    assert "final attribute: rootfstype=nfs (login)" in run.out


def test_explain_attribute_from_defaults(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_main(capsys, "--site", str(site), "explain", "img-login", "provmethod", "--json")
    assert run.code == 0
    doc = json.loads(run.out)
    assert [(e["action"], e["level"]) for e in doc["events"]] == [
        ("set", "builtin"),
        ("overridden", "defaults"),
    ]
    assert doc["events"][1]["file"] == "imagespec.yaml"
    assert doc["final"] == ["attribute: provmethod=netboot (defaults)"]


def test_explain_sync_dest_shows_the_replacement(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_main(capsys, "--site", str(site), "explain", "img-login", "/etc/motd")
    assert run.code == 0
    assert "sync: /etc/motd from etc/motd added by base at profiles/base.yaml:5:5" in run.out
    assert (
        "sync: /etc/motd from etc/motd.login replaced by login at profiles/login.yaml:7:5"
        in run.out
    )


@pytest.mark.parametrize("via", ["main", "subprocess"])
def test_explain_unknown_entry(site: Path, capsys: pytest.CaptureFixture[str], via: str) -> None:
    argv = ("explain", "img-login", "nano")
    run = (
        run_main(capsys, "--site", str(site), *argv)
        if via == "main"
        else run_process(*argv, cwd=site)
    )
    assert run.code == 1
    assert run.out == ""
    assert run.err_lines == [
        "error: 'nano' does not occur in image 'img-login' or its chain (base -> aux -> login)"
    ]
    assert_no_traceback(run)


def test_explain_unknown_image(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_main(capsys, "--site", str(site), "explain", "img-logn", "gcc")
    assert run.code == 1
    assert run.err_lines == [
        "error: unknown image 'img-logn'; did you mean 'img-login'? (images: img-login)"
    ]


# ---------------------------------------------------------------- render


def tree_of(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root: relative path -> (bytes, permission bits)."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            found[path.relative_to(root).as_posix()] = (
                path.read_bytes(),
                path.stat().st_mode & 0o777,
            )
    return found


EXPECTED_RENDER_MODES = {
    "p/custom/netboot/rocky/img-login.pkglist": 0o644,
    "p/custom/netboot/rocky/img-login.otherpkgs.pkglist": 0o644,
    "p/custom/netboot/rocky/img-login.exlist": 0o644,
    "p/custom/netboot/rocky/img-login.synclist": 0o644,
    "p/custom/netboot/rocky/img-login.stanza": 0o644,
    "p/custom/netboot/rocky/postinstall/20-tune": 0o755,
    "p/custom/synclists/etc/motd.login": 0o644,
    "p/custom/synclists/usr/local/sbin/node-info": 0o755,
    "postscripts/p/50-lustre-mount": 0o755,
    "postscripts/p/70-slurm-start": 0o755,
}


def test_render_writes_files_with_modes(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    run = run_main(capsys, "--site", str(site), "render", "--out", str(out))
    assert run.code == 0
    assert run.out.startswith("rendered 10 files for 1 images of director 'main'")
    tree = tree_of(out)
    assert {path: mode for path, (_data, mode) in tree.items()} == EXPECTED_RENDER_MODES
    assert tree["p/custom/netboot/rocky/postinstall/20-tune"][0] == SCRIPT.encode()
    assert tree["p/custom/synclists/etc/motd.login"][0] == b"Welcome to the login nodes\n"
    pkglist = tree["p/custom/netboot/rocky/img-login.pkglist"][0].decode()
    assert [line for line in pkglist.splitlines() if not line.startswith("#")] == [
        "bash",
        "chrony",
        "vim-enhanced",
        "git",
        "gcc",
    ]
    stanza = tree["p/custom/netboot/rocky/img-login.stanza"][0].decode()
    assert "pkglist=/install/p/custom/netboot/rocky/img-login.pkglist" in stanza
    assert not list(tmp_path.glob(".out.*")), "the staging directory is cleaned up"


def test_render_json(site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    run = run_main(capsys, "--site", str(site), "--json", "render", "--out", str(out))
    assert run.code == 0
    doc = json.loads(run.out)
    assert doc["director"] == "main"
    assert doc["files"] == sorted(EXPECTED_RENDER_MODES)
    assert set(doc["images"]["img-login"]) == {"build", "pack", "define"}


def test_render_refuses_non_empty_dir_without_force(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine\n")
    run = run_main(capsys, "--site", str(site), "render", "--out", str(out))
    assert run.code == 1
    assert run.err_lines == [
        f"error: {out} is not empty; choose a new directory or pass --force to replace its contents"
    ]
    assert tree_of(out) == {"keep.txt": (b"mine\n", 0o644)}
    run = run_main(capsys, "--site", str(site), "render", "--out", str(out), "--force")
    assert run.code == 0
    assert set(tree_of(out)) == set(EXPECTED_RENDER_MODES)


def test_render_into_empty_existing_dir(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    run = run_main(capsys, "--site", str(site), "render", "--out", str(out))
    assert run.code == 0
    assert set(tree_of(out)) == set(EXPECTED_RENDER_MODES)


def test_render_onto_a_file_is_refused(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.write_text("x")
    run = run_main(capsys, "--site", str(site), "render", "--out", str(out))
    assert run.code == 1
    assert run.err_lines == [f"error: {out} exists and is not a directory"]


def test_render_subprocess(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = run_process("render", "--out", str(out), cwd=site)
    assert run.code == 0
    assert {p: m for p, (_d, m) in tree_of(out).items()} == EXPECTED_RENDER_MODES


# ---------------------------------------------------------------- director choice


def pkglist_path(run: Run) -> str:
    assert run.code == 0, run.err
    return str(json.loads(run.out)["attributes"]["pkglist"])


def test_several_directors_without_git_need_a_choice(
    two_director_site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_main(capsys, "--site", str(two_director_site), "show", "img-login")
    assert run.code == 1
    assert run.err_lines == [
        "error: there are several directors; choose one with --director NAME, "
        "IMAGESPEC_DIRECTOR or default_director in imagespec.yaml (directors: prod, test)"
    ]
    assert_no_traceback(run)


def test_unknown_director_is_suggested(
    two_director_site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_main(
        capsys, "--site", str(two_director_site), "show", "img-login", "--director", "prd"
    )
    assert run.code == 1
    assert run.err_lines == [
        "error: unknown director 'prd'; did you mean 'prod'? (directors: prod, test)"
    ]


@pytest.mark.parametrize(
    ("argv", "prefix"),
    [
        (("--director", "prod"), "/install/prod/"),
        (("-d", "test"), "/install/test/"),
        (("--branch", "dev"), "/install/test/"),
        (("--branch", "main"), "/install/prod/"),
    ],
)
def test_director_and_branch_options(
    two_director_site: Path,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    prefix: str,
) -> None:
    run = run_main(capsys, "--site", str(two_director_site), "show", "img-login", "--json", *argv)
    assert pkglist_path(run).startswith(prefix)


def test_branch_followed_by_no_director(
    two_director_site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    run = run_main(
        capsys, "--site", str(two_director_site), "render", "--out", str(out), "--branch", "nob"
    )
    assert run.code == 1
    assert run.err_lines == ["error: no director follows branch 'nob' (directors: prod, test)"]
    assert not out.exists()


def test_current_git_branch_picks_its_director(
    two_director_site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = git_repo(two_director_site, branch="main")
    try:
        run = run_main(capsys, "--site", str(two_director_site), "show", "img-login", "--json")
        assert pkglist_path(run).startswith("/install/prod/")
        repo.git.checkout("-b", "dev")
        run = run_main(capsys, "--site", str(two_director_site), "show", "img-login", "--json")
        assert pkglist_path(run).startswith("/install/test/")
        # --director still wins over the branch
        run = run_main(
            capsys, "--site", str(two_director_site), "show", "img-login", "--json", "-d", "prod"
        )
        assert pkglist_path(run).startswith("/install/prod/")
        repo.git.checkout("-b", "feature")
        run = run_main(capsys, "--site", str(two_director_site), "show", "img-login")
        assert run.code == 1
        assert run.err_lines == [
            "error: the current branch 'feature' is followed by none, and there are several "
            "directors; choose one with --director NAME, IMAGESPEC_DIRECTOR or "
            "default_director in imagespec.yaml (directors: prod, test)"
        ]
    finally:
        repo.close()


def test_current_git_branch_subprocess(two_director_site: Path) -> None:
    repo = git_repo(two_director_site, branch="dev")
    repo.close()
    run = run_process("show", "img-login", "--json", cwd=two_director_site / "profiles")
    assert pkglist_path(run).startswith("/install/test/")


def test_only_director_is_used_on_any_branch(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = git_repo(site, branch="feature")
    repo.close()
    run = run_main(capsys, "--site", str(site), "show", "img-login", "--json")
    assert pkglist_path(run).startswith("/install/p/")


# ---------------------------------------------------------------- finding the site


@pytest.mark.parametrize("position", ["global", "local"])
def test_site_option_from_another_directory(
    site: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    position: str,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    argv = (
        ["--site", str(site), "validate"]
        if position == "global"
        else ["validate", "--site", str(site)]
    )
    run = run_main(capsys, *argv)
    assert run.code == 0
    assert run.out.startswith("ok: 3 profiles")


def test_relative_site_option(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    run = run_main(capsys, "--site", "site", "show", "img-login", "--json")
    assert run.code == 0
    assert json.loads(run.out)["image"] == "img-login"


def test_site_discovered_from_a_subdirectory(
    site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(site / "synclists" / "usr" / "local")
    run = run_main(capsys, "graph", "--format", "json")
    assert run.code == 0
    assert set(json.loads(run.out)["images"]) == {"img-login"}


def test_site_discovered_from_a_subdirectory_subprocess(site: Path) -> None:
    run = run_process("validate", cwd=site / "profiles")
    assert run.code == 0
    assert run.out.startswith("ok: 3 profiles")


def test_no_site_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    run = run_main(capsys, "validate")
    assert run.code == 1
    assert run.err_lines == [
        "error: no imagespec.yaml in this directory or any parent; run inside a site or pass --site PATH"
    ]


def test_site_option_without_imagespec_yaml(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_main(capsys, "--site", str(site / "profiles"), "validate")
    assert run.code == 1
    assert run.err_lines == [
        f"error: {site / 'profiles'}: no imagespec.yaml there; --site must name a site directory"
    ]


# ---------------------------------------------------------------- usage errors

USAGE_ERRORS = [
    pytest.param(("frobnicate",), id="unknown-command"),
    pytest.param(("validate", "--bogus"), id="unknown-option"),
    pytest.param(("--bogus", "validate"), id="unknown-global-option"),
    pytest.param(("show",), id="missing-argument"),
    pytest.param(("explain", "img-login"), id="missing-second-argument"),
    pytest.param(("render",), id="missing-required-option"),
    pytest.param(("show", "img-login", "--director"), id="option-without-value"),
    pytest.param(("graph", "--format", "svg"), id="bad-choice"),
    pytest.param((), id="no-command"),
]


@pytest.mark.parametrize("argv", USAGE_ERRORS)
def test_usage_error_exits_1_never_2(
    site: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    run = run_main(capsys, "--site", str(site), *argv)
    assert run.code == 1
    assert run.out == ""
    assert "Traceback" not in run.err


def test_usage_error_exits_1_subprocess(site: Path) -> None:
    run = run_process("validate", "--bogus", cwd=site)
    assert run.code == 1
    assert "Traceback" not in run.err


@pytest.mark.parametrize("argv", USAGE_ERRORS)
def test_usage_error_is_a_plain_message(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    run = run_main(capsys, "--site", str(site), *argv)
    assert run.code == 1
    assert run.err_lines, "a usage error says what is wrong"
    assert run.err_lines[0].startswith("error: ")
    assert_no_traceback(run)
    assert not (tmp_path / "cache" / "imagespec").exists(), "no crash log for a user mistake"


def test_unknown_option_message_subprocess(site: Path) -> None:
    run = run_process("validate", "--bogus", cwd=site)
    assert run.code == 1
    assert run.err_lines[0] == "error: No such option: --bogus"
    assert_no_traceback(run)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    run = run_main(capsys, "--version")
    assert run.code == 0
    assert re.fullmatch(r"imagespec \d+\.\d+\.\d+\S*\n", run.out)


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    run = run_main(capsys, "--help")
    assert run.code == 0
    assert "validate" in run.out


# ---------------------------------------------------------------- the bundled example site


def example_directors_and_images(repo_root: Path) -> tuple[list[str], list[str]]:
    view = open_site(WorktreeSource(repo_root))
    return view.directors, sorted(view.docs.site.model.images)


def test_example_site_validates_strictly(
    repo_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_main(capsys, "--site", str(repo_root), "validate", "--strict")
    assert run.code == 0, run.err
    assert run.err == ""
    assert run.out.startswith("ok: ")


def test_example_site_shows_every_image_on_every_director(
    repo_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directors, images = example_directors_and_images(repo_root)
    assert len(directors) >= 2
    assert len(images) >= 2
    for director in directors:
        for image in images:
            run = run_main(
                capsys, "--site", str(repo_root), "show", image, "-d", director, "--json"
            )
            assert run.code == 0, (director, image, run.err)
            doc = json.loads(run.out)
            assert set(doc) == SHOW_KEYS
            assert doc["image"] == image
            assert doc["chain"][-1] == doc["profile"]


def test_example_site_renders_identically_twice(repo_root: Path, tmp_path: Path) -> None:
    directors, _images = example_directors_and_images(repo_root)
    for director in directors:
        trees = []
        for attempt in ("first", "second"):
            out = tmp_path / director / attempt
            run = run_app("--site", str(repo_root), "render", "--out", str(out), "-d", director)
            assert run.code == 0, run.out
            trees.append(tree_of(out))
        assert trees[0], director
        assert trees[0] == trees[1], director
