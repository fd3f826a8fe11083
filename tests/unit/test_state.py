"""state.json: everything imagespec writes reads back; anything else is one clear line."""

from __future__ import annotations

import json

import pytest

from imagespec.state import ImageState, State, StateError, managed_path_problem

DIGEST = "sha256:" + "ab" * 32
WHERE = "host:/install/p/.imagespec/state.json"


def full_state() -> State:
    return State(
        director="here",
        commit="c" * 40,
        time="2026-01-31T12:00:00Z",
        files={"p/custom/netboot/rocky/a.pkglist": "0" * 64, "postscripts/p/50-site": "f" * 64},
        images={
            "a": ImageState(
                digests={"define": DIGEST, "build": DIGEST, "pack": None},
                status="failed",
                commit="d" * 64,
                time="2026-01-31T12:00:00Z",
                generation=3,
                error="pack: packimage failed \x1b[31mred\x1b[0m",
                failed_stage="pack",
                attributes=["osvers", "pkglist"],
                builder="native",
                rolled_back_from=4,
            ),
            "b.x_y-z": ImageState(status="skipped", builder="none"),
            "c": ImageState(),
        },
    )


def test_every_state_imagespec_writes_reads_back_unchanged() -> None:
    state = full_state()
    assert State.from_json(state.to_json(), "here", WHERE) == state


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../x", "p/../../x", "p/./x", "p//x", "p/x/", "", ".", "p/\tx", "p/x\x7f"],
)
def test_inventory_paths_that_could_leave_the_tree_are_refused(path: str) -> None:
    assert managed_path_problem(path)
    doc = json.loads(full_state().to_json())
    doc["files"][path] = "0" * 64
    with pytest.raises(StateError, match=r"is damaged: files: inventory path .*; move it aside"):
        State.from_json(json.dumps(doc).encode(), "here", WHERE)


@pytest.mark.parametrize("path", ["p/x", "postscripts/p/50 site", "p/.hidden/x", "p/x..y"])
def test_ordinary_inventory_paths_are_accepted(path: str) -> None:
    assert managed_path_problem(path) is None


def test_a_newer_state_version_asks_for_an_upgrade() -> None:
    doc = json.loads(full_state().to_json())
    doc["version"] = 2
    with pytest.raises(StateError, match="newer than 1; upgrade imagespec"):
        State.from_json(json.dumps(doc).encode(), "here", WHERE)


def test_values_from_the_file_are_quoted_on_one_line() -> None:
    doc = json.loads(full_state().to_json())
    doc["commit"] = "x\n" * 100
    with pytest.raises(StateError) as exc:
        State.from_json(json.dumps(doc).encode(), "here", WHERE)
    message = str(exc.value)
    assert "\n" not in message and "..." in message
