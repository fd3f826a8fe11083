"""An untrusted or broken director: a doctored or damaged state.json, a read-only
file system, a full disk while saving state, a directory where a managed file
goes, and temporary files left by a killed apply.  Each is one line on stderr
and an exit code, never a traceback; nothing is lost, nothing outside the
director's tree is touched, and no temporary file is left behind."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from imagespec.runner import Runner
from imagespec.transport.base import TransportError
from imagespec.transport.local import LocalTransport, stage_file
from imagespec.transport.ssh import SshTransport
from tests.helpers import dump_yaml
from tests.integration.sites import APPLY_PROFILES, Env, run_main
from tests.integration.test_apply_disk_and_link import small_disk, snapshot  # noqa: F401
from tests.integration.test_apply_ssh import remote  # noqa: F401 - fixture

STATE = "p/.imagespec/state.json"
TEMP_GLOB = ".*.imagespec-*"


def one_line_error(err: str) -> str:
    """The single line an error must be: no traceback, no internal error."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]


def doctor(install: Path, change: Callable[[dict[str, Any]], None]) -> bytes:
    """Change state.json as an attacker (or a bad disk) would; returns the new bytes."""
    path = install / STATE
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    return path.read_bytes()


def victim(tmp_path: Path) -> tuple[Path, str]:
    """A file outside the director whose sha256 a doctored inventory records."""
    path = tmp_path / "victim"
    path.write_text("root:x:0:0:root:/root:/bin/bash\n")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ a doctored inventory


@pytest.mark.parametrize("how", ["absolute", "dotdot"])
def test_a_doctored_inventory_never_deletes_a_file_outside_the_tree(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    target, digest = victim(tmp_path)
    rel = str(target) if how == "absolute" else "../victim"
    doctored = doctor(env.install, lambda d: d["files"].__setitem__(rel, digest))
    before = snapshot(env.install)
    code, _, err = run_main(capsys, "apply", "--yes")
    line = one_line_error(err)
    assert code == 1
    assert target.read_text().startswith("root:"), "the file outside the tree is still there"
    assert str(env.install / STATE) in line
    assert "inventory path" in line and "move it aside and apply again" in line
    assert snapshot(env.install) == before
    assert (env.install / STATE).read_bytes() == doctored
    code, _, err = run_main(capsys, "plan")
    assert code == 1 and "inventory path" in one_line_error(err)


@pytest.mark.slow
def test_a_doctored_inventory_on_a_remote_director_deletes_nothing_outside(
    remote: Path,  # noqa: F811 - fixture
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    target, digest = victim(tmp_path)
    doctor(remote, lambda d: d["files"].update({str(target): digest, "../victim": digest}))
    code, _, err = run_main(capsys, "apply", "--yes")
    assert code == 1
    assert "inventory path" in one_line_error(err)
    assert target.exists()


@pytest.mark.parametrize("how", ["absolute", "dotdot", "dotdot-inside", "empty", "dot"])
@pytest.mark.parametrize("kind", ["local", "ssh"])
def test_transports_refuse_paths_outside_the_tree_whatever_the_caller(
    tmp_path: Path, how: str, kind: str
) -> None:
    root = tmp_path / "director" / "install"
    root.mkdir(parents=True)
    target, _ = victim(tmp_path / "director")
    rel = {
        "absolute": str(target),  # never a real system file: a wrong guard would clobber it
        "dotdot": "../victim",
        "dotdot-inside": "p/../../victim",
        "empty": "",
        "dot": ".",
    }[how]
    runner = Runner()
    transport: Any = (
        LocalTransport(str(root), runner)
        if kind == "local"
        else SshTransport("unreachable.invalid", str(root), runner)
    )
    calls = [
        lambda: transport.delete([rel]),
        lambda: transport.copy({rel: "p/copy"}),
        lambda: transport.copy({"p/x": rel}),
        lambda: transport.remove_tree(rel),
        lambda: transport.write_atomic(rel, b"x"),
        lambda: transport.write_files({rel: (b"x", 0o644)}),
        lambda: transport.clean_temp([rel]),
    ]
    for call in calls:
        with pytest.raises(TransportError, match="refusing to"):
            call()
    assert target.read_text().startswith("root:"), "the file outside the tree is untouched"
    assert root.is_dir()


# ------------------------------------------------------------------ wrong values in state.json


def _set(*path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def _first_file(value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["files"][sorted(doc["files"])[0]] = value

    return change


WRONG = {
    "commit is a number": (_set("commit", value=5), "commit: Input should be a valid string"),
    "commit is not hex": (_set("commit", value="HEAD; rm -rf /"), "is not a git commit id"),
    "files is a list": (_set("files", value=[]), "files: should be a JSON object"),
    "file digest is a number": (_first_file(7), "Input should be a valid string"),
    "file digest is not a sha256": (_first_file("abc"), "is not a sha256"),
    "inventory path has a newline": (
        _set("files", value={"p/x\n": "0" * 64}),
        "contains a control character",
    ),
    "image digest is a number": (
        _set("images", "img-login", "digests", "build", value=5),
        "images.img-login.digests.build: Input should be a valid string",
    ),
    "image digest has no prefix": (
        _set("images", "img-login", "digests", "pack", value="0" * 64),
        "is not 'sha256:' and 64 lowercase hex digits",
    ),
    "digests is a string": (
        _set("images", "img-login", "digests", value="sha256:"),
        "digests: should be a JSON object",
    ),
    "unknown status": (
        _set("images", "img-login", "status", value="great"),
        "images.img-login.status: Input should be 'ok', 'failed', 'skipped' or 'never'",
    ),
    "status is a list": (_set("images", "img-login", "status", value=["ok"]), "status:"),
    "image commit is a number": (
        _set("images", "img-login", "commit", value=1),
        "images.img-login.commit: Input should be a valid string",
    ),
    "generation is text": (
        _set("images", "img-login", "generation", value="1"),
        "generation: Input should be a valid integer",
    ),
    "image name leaves the tree": (
        _set("images", "../x", value={}),
        "'../x' is not an image name",
    ),
    "images is a list": (_set("images", value=[]), "images: should be a JSON object"),
    "version is missing": (lambda d: d.pop("version"), "version: is missing"),
    "an unknown key": (_set("owner", value="mallory"), "owner: is not a key imagespec writes"),
}


@pytest.mark.parametrize("case", sorted(WRONG))
def test_wrong_values_in_state_json_are_one_line_errors(
    env: Env, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    calls = len(env.calls())
    change, expected = WRONG[case]
    doctored = doctor(env.install, change)
    before = snapshot(env.install)
    code, _, err = run_main(capsys, "apply", "--yes")
    line = one_line_error(err)
    assert code == 1
    assert f"{env.install / STATE} is damaged: " in line
    assert expected in line
    assert line.endswith("adopts the files that are already right and rebuilds every image")
    assert (env.install / STATE).read_bytes() == doctored
    assert snapshot(env.install) == before
    assert len(env.calls()) == calls, "no xCAT command ran"


@pytest.mark.parametrize("content", [b"{not json", b"[]", b"\xff\xfe"])
def test_a_state_json_that_is_not_a_json_object_is_one_line(
    env: Env, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    (env.install / STATE).write_bytes(content)
    code, _, err = run_main(capsys, "status")
    assert code == 1
    assert "move it aside and apply again" in one_line_error(err)


def test_a_directory_in_place_of_state_json_is_not_taken_for_a_fresh_director(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    (env.install / STATE).unlink()
    (env.install / STATE).mkdir()
    env.write("postscripts/50-site", "#!/bin/sh\nexit 1\n")
    env.commit("a postscript change")
    code, _, err = run_main(capsys, "apply", "--yes")
    assert code == 1
    assert "state.json is not a regular file" in one_line_error(err)
    assert (env.install / "postscripts/p/50-site").read_text().endswith("exit 0\n")


# ------------------------------------------------------------------ a director that cannot be written


@pytest.fixture
def read_only(env: Env) -> Iterator[Callable[[], None]]:
    """A function that makes the director's install root a read-only bind mount."""
    mounted: list[Path] = []

    def make() -> None:
        path = str(env.install)
        for argv in (["mount", "--bind", path, path], ["mount", "-o", "remount,bind,ro", path]):
            done = subprocess.run(argv, capture_output=True, text=True)
            if done.returncode != 0:
                if mounted:
                    subprocess.run(["umount", path], check=False)
                pytest.skip(f"cannot make a read-only bind mount here: {done.stderr.strip()}")
            mounted[:] = [env.install]

    yield make
    for path in mounted:
        subprocess.run(["umount", str(path)], check=False)


def test_a_read_only_director_is_one_line_and_nothing_changes(
    env: Env, read_only: Callable[[], None], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    env.write("postscripts/50-site", "#!/bin/sh\nexit 1\n")
    env.commit("a postscript change")
    before = snapshot(env.install)
    read_only()
    code, _, err = run_main(capsys, "apply", "--yes")
    line = one_line_error(err)
    assert code == 1
    assert "Read-only file system" in line and "remount it read-write" in line
    assert snapshot(env.install) == before
    subprocess.run(["umount", str(env.install)], check=True)
    assert run_main(capsys, "apply", "--yes")[0] == 0
    assert (env.install / "postscripts/p/50-site").read_text().endswith("exit 1\n")


@pytest.fixture
def immutable() -> Iterator[Callable[[Path], None]]:
    """chattr +i on files, undone after the test (root cannot write them either)."""
    done: list[Path] = []

    def make(path: Path) -> None:
        if not shutil.which("chattr"):
            pytest.skip("chattr is not installed")
        result = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"chattr +i does not work here: {result.stderr.strip()}")
        done.append(path)

    yield make
    for path in done:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_a_state_json_that_cannot_be_replaced_keeps_the_old_one_and_no_temp_file(
    env: Env, immutable: Callable[[Path], None], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    state = env.install / STATE
    old = state.read_bytes()
    immutable(state)
    env.write("postscripts/50-site", "#!/bin/sh\nexit 1\n")
    env.commit("a postscript change")
    code, _, err = run_main(capsys, "apply", "--yes")
    line = one_line_error(err)
    assert code == 1
    assert f"cannot write {state}: Operation not permitted" in line
    assert "was left as it was" in line and "lsattr" in line
    assert state.read_bytes() == old
    assert not list(env.install.rglob(TEMP_GLOB)), "no temporary file left"
    assert not (env.install / "p/.imagespec/lock").exists()
    subprocess.run(["chattr", "-i", str(state)], check=True)
    assert run_main(capsys, "apply", "--yes")[0] == 0
    assert (
        env.state()["files"]["postscripts/p/50-site"]
        == hashlib.sha256(b"#!/bin/sh\nexit 1\n").hexdigest()
    )


def test_state_that_cannot_be_saved_after_some_images_were_done_exits_3(
    env: Env, immutable: Callable[[Path], None], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    state = env.install / STATE
    immutable(state)  # skips the test where chattr does not work
    subprocess.run(["chattr", "-i", str(state)], check=True)
    script = f'#!/bin/sh\ncase "$4" in lite) chattr +i "{state}";; esac\nexit 0\n'
    env.write("postinstall/10-a", script)
    commit = env.commit("a postinstall that freezes state.json while img-lite builds")
    try:
        code, _, err = run_main(capsys, "apply", "--yes", "--jobs", "1")
        line = one_line_error(err)
        assert code == 3
        assert f"cannot write {state}: Operation not permitted" in line
        assert line.endswith("1 image(s) were done and recorded before that: img-compute")
        recorded = json.loads(state.read_text())
        assert recorded["images"]["img-compute"]["status"] == "ok"
        assert recorded["commit"] != commit, "the commit is recorded only when all is done"
        assert not list(env.install.rglob(TEMP_GLOB)), "no temporary file left"
    finally:
        subprocess.run(["chattr", "-i", str(state)], check=False)
    env.write("postinstall/10-a", "#!/bin/sh\nexit 0\n")
    env.commit("a plain postinstall again")
    code, _, err = run_main(capsys, "apply", "--yes")
    assert code == 0, err
    assert {i["status"] for i in env.state()["images"].values()} == {"ok"}


def fill(disk: Path, leave_pages: int) -> Path:
    """Fill a tmpfs to the last page, then give back `leave_pages` pages of 4 KiB."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - size % 4096 - leave_pages * 4096))
    return filler


def test_a_full_disk_while_saving_state_is_one_line_and_keeps_the_old_state(
    env: Env,
    small_disk: Path,  # noqa: F811 - fixture
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    state = small_disk / STATE
    old = state.read_bytes()
    assert len(old) > 4096, "state.json needs more than the one page left"
    env.write("README", "only the commit changes\n")
    commit = env.commit("a change no file depends on")
    filler = fill(small_disk, leave_pages=1)  # room for the lock, not for state.json
    code, _, err = run_main(capsys, "apply", "--yes")
    line = one_line_error(err)
    assert code == 1
    assert f"cannot write {state}: No space left on device" in line
    assert "free some space" in line
    assert state.read_bytes() == old
    assert not list(small_disk.rglob(TEMP_GLOB))
    assert not (small_disk / "p/.imagespec/lock").exists()
    filler.unlink()
    assert run_main(capsys, "apply", "--yes")[0] == 0
    assert env.state()["commit"] == commit


# ------------------------------------------------------------------ a directory where a file goes


def test_a_directory_where_a_managed_file_goes_fails_before_writing_anything(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    env.write("postscripts/50-site", "#!/bin/sh\nexit 1\n")
    env.write("profiles/aux.yaml", "inherits: [base]\npackages: [vim-enhanced, htop]\n")
    env.commit("a postscript and a package")
    in_the_way = env.install / "postscripts/p/50-site"
    in_the_way.unlink()
    (in_the_way / "kept").mkdir(parents=True)
    state = (env.install / STATE).read_bytes()
    before = snapshot(env.install)
    code, _, err = run_main(capsys, "apply", "--yes")
    line = one_line_error(err)
    assert code == 1
    assert f"cannot write {in_the_way}: it is a directory" in line
    assert "no file on the director was changed" in line and "move it away" in line
    assert snapshot(env.install) == before
    assert (env.install / STATE).read_bytes() == state
    assert not list(env.install.rglob(TEMP_GLOB)), "no temporary file left"
    shutil.rmtree(in_the_way)
    assert run_main(capsys, "apply", "--yes")[0] == 0
    assert "htop" in (env.install / "p/custom/netboot/rocky/img-login.pkglist").read_text()


@pytest.mark.slow
def test_a_directory_where_a_managed_file_goes_on_a_remote_director_is_one_line(
    remote: Path,  # noqa: F811 - fixture
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    site = Path.cwd()
    (site / "postscripts/50-site").write_text("#!/bin/sh\nexit 1\n")
    subprocess.run(["git", "commit", "-qam", "a postscript change"], cwd=site, check=True)
    in_the_way = remote / "postscripts/p/50-site"
    in_the_way.unlink()
    (in_the_way / "kept").mkdir(parents=True)
    state = (remote / STATE).read_bytes()
    code, _, err = run_main(capsys, "apply", "--yes")
    line = one_line_error(err)
    assert code == 1
    assert "could not make way for new regular file: postscripts/p/50-site" in line
    assert "no file was half-written" in line
    assert (remote / STATE).read_bytes() == state
    assert (in_the_way / "kept").is_dir()
    assert not list(remote.rglob(TEMP_GLOB)) and not list(remote.rglob(".~tmp~"))


def test_a_directory_where_a_no_longer_rendered_file_was_is_left_alone(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    gone = env.install / "p/custom/netboot/rocky/img-login.exlist"
    gone.unlink()
    (gone / "notes").mkdir(parents=True)
    base = {k: v for k, v in APPLY_PROFILES["base"].items() if k != "exclude"}
    env.write("profiles/base.yaml", dump_yaml(base))
    env.commit("no exclude list")
    code, _, err = run_main(capsys, "apply", "--yes")
    assert code == 0, err
    assert (gone / "notes").is_dir(), "a directory is never deleted"
    assert "p/custom/netboot/rocky/img-login.exlist" not in env.state()["files"]


# ------------------------------------------------------------------ leftovers of a killed apply


def test_temporary_files_of_a_killed_apply_are_removed_by_the_next_one(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    managed = env.install / "p/custom/netboot/rocky/img-login.pkglist"
    left = [
        stage_file(managed, b"half a pkglist", 0o644),
        stage_file(env.install / STATE, b'{"half', 0o644),
        stage_file(env.install / "postscripts/p/50-site", b"#!", 0o755),
    ]
    not_ours = [
        env.install / "p/custom/netboot/rocky/.notes.imagespec-old",  # not the 8-letter name
        env.install / "p/custom/netboot/rocky/img-login.pkglist.imagespec-abcdefgh",  # no dot
        env.install / "elsewhere/.file.imagespec-abcdefgh",  # not beside a managed file
    ]
    for path in not_ours:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("the admin's\n")
    code, out, err = run_main(capsys, "apply", "--yes")
    assert code == 0, err
    assert "removed 3 temporary file(s) left by an interrupted apply" in out
    assert not any(Path(p).exists() for p in left)
    assert all(p.exists() for p in not_ours)
    code, out, _ = run_main(capsys, "apply", "--yes")
    assert code == 0 and "temporary" not in out


@pytest.mark.slow
def test_temporary_files_on_a_remote_director_are_removed_by_the_next_apply(
    remote: Path,  # noqa: F811 - fixture
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_main(capsys, "apply", "--yes")[0] == 0
    rocky = remote / "p/custom/netboot/rocky"
    left = [
        Path(stage_file(rocky / "img-login.pkglist", b"half", 0o644)),
        rocky / ".img-login.stanza.imagespec-AbC123xY",  # as mktemp names them
        rocky / ".~tmp~/img-login.pkglist",  # rsync --delay-updates, killed
    ]
    left[1].write_text("half")
    left[2].parent.mkdir()
    left[2].write_text("half")
    mine = rocky / ".notes.imagespec-old"
    mine.write_text("the admin's\n")
    code, out, err = run_main(capsys, "apply", "--yes")
    assert code == 0, err
    assert "removed 3 temporary file(s) left by an interrupted apply" in out
    assert not any(p.exists() for p in left) and not (rocky / ".~tmp~").exists()
    assert mine.exists()
    state = json.loads((remote / STATE).read_text())
    assert state["images"]["img-login"]["status"] == "ok"
    assert set(remote.rglob(TEMP_GLOB)) == {mine}, "write_atomic leaves no temporary file"
