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


# ---------------------------------------------------------------- the written form


def test_state_json_is_sorted_indented_and_ends_with_a_newline() -> None:
    state = State(
        director="d",
        commit="a" * 40,
        time="2026-01-31T12:00:00Z",
        files={"p/y": "1" * 64, "p/x": "0" * 64},
        images={"a": ImageState(status="ok", generation=2)},
    )
    assert state.to_json().decode() == (
        "{\n"
        f'  "commit": "{"a" * 40}",\n'
        '  "director": "d",\n'
        '  "files": {\n'
        f'    "p/x": "{"0" * 64}",\n'
        f'    "p/y": "{"1" * 64}"\n'
        "  },\n"
        '  "images": {\n'
        '    "a": {\n'
        '      "attributes": [],\n'
        '      "builder": null,\n'
        '      "commit": null,\n'
        '      "digests": {},\n'
        '      "error": null,\n'
        '      "failed_stage": null,\n'
        '      "generation": 2,\n'
        '      "nodeset_owed": false,\n'
        '      "rolled_back_from": null,\n'
        '      "status": "ok",\n'
        '      "time": null\n'
        "    }\n"
        "  },\n"
        '  "time": "2026-01-31T12:00:00Z",\n'
        '  "version": 1\n'
        "}\n"
    )


def test_no_file_is_a_director_never_applied() -> None:
    assert State.from_json(None, "here", WHERE) == State(director="here")


def test_the_smallest_state_file_is_its_version() -> None:
    assert State.from_json(b'{"version": 1}', "here", WHERE) == State(director="here")


def test_the_director_named_in_the_file_wins() -> None:
    state = State.from_json(b'{"version": 1, "director": "there"}', "here", WHERE)
    assert state.director == "there"


def test_text_from_the_file_is_kept_as_written() -> None:
    doc = b'{"version": 1, "images": {"a": {"error": "x\\u001b[31m", "status": "failed"}}}'
    state = State.from_json(doc, "here", WHERE)
    assert state.images == {"a": ImageState(status="failed", error="x\x1b[31m")}


# ---------------------------------------------------------------- what a damaged file says

MOVE_ASIDE = (
    "move it aside and apply again: imagespec then treats the director as never applied,"
    " adopts the files that are already right and rebuilds every image"
)
DAMAGED = [
    ("not an object", b"[]", "the file: should be a JSON object"),
    ("no version", b"{}", "version: is missing"),
    ("version as text", b'{"version": "1"}', "version: Input should be 1"),
    ("unknown key", b'{"version": 1, "colour": 2}', "colour: is not a key imagespec writes"),
    (
        "unknown image key",
        b'{"version": 1, "images": {"a": {"colour": 1}}}',
        "images.a.colour: is not a key imagespec writes",
    ),
    (
        "image not an object",
        b'{"version": 1, "images": {"a": []}}',
        "images.a: should be a JSON object",
    ),
    (
        "short digest",
        b'{"version": 1, "images": {"a": {"digests": {"build": "sha256:zz"}}}}',
        "images.a.digests.build: 'sha256:zz' is not 'sha256:' and 64 lowercase hex digits",
    ),
    (
        "unknown stage",
        b'{"version": 1, "images": {"a": {"digests": {"boot": null}}}}',
        "images.a.digests: Input should be 'define', 'build' or 'pack'",
    ),
    (
        "unknown status",
        b'{"version": 1, "images": {"a": {"status": "great"}}}',
        "images.a.status: Input should be 'ok', 'failed', 'skipped' or 'never'",
    ),
    (
        "unknown failed stage",
        b'{"version": 1, "images": {"a": {"failed_stage": "build"}}}',
        "images.a.failed_stage: Input should be 'define', 'genimage', 'pack' or 'nodeset'",
    ),
    (
        "image name",
        b'{"version": 1, "images": {"../x": {}}}',
        "images: '../x' is not an image name",
    ),
    (
        "negative generation",
        b'{"version": 1, "images": {"a": {"generation": -1}}}',
        "images.a.generation: Input should be greater than or equal to 0",
    ),
    (
        "generation as text",
        b'{"version": 1, "images": {"a": {"generation": "3"}}}',
        "images.a.generation: Input should be a valid integer",
    ),
    (
        "short commit",
        b'{"version": 1, "commit": "abc"}',
        "commit: 'abc' is not a git commit id (40 or 64 hex digits)",
    ),
    (
        "uppercase file hash",
        b'{"version": 1, "files": {"p/x": "ABC"}}',
        "files.p/x: 'ABC' is not a sha256 (64 lowercase hex digits)",
    ),
    (
        "local time",
        b'{"version": 1, "time": "2026-01-31 12:00"}',
        "time: '2026-01-31 12:00' is not a UTC time like 2025-01-31T12:00:00Z",
    ),
    (
        "two problems",
        b'{"version": 1, "images": {"a": {"generation": -1, "status": "x"}}}',
        "images.a.status: Input should be 'ok', 'failed', 'skipped' or 'never'"
        " (and 1 more problem)",
    ),
    (
        "three problems",
        b'{"version": 1, "images": {"a": {"generation": -1, "status": "x"}, "b": {"time": "t"}}}',
        "images.a.status: Input should be 'ok', 'failed', 'skipped' or 'never'"
        " (and 2 more problems)",
    ),
]


@pytest.mark.parametrize(("data", "problem"), [c[1:] for c in DAMAGED], ids=[c[0] for c in DAMAGED])
def test_a_damaged_file_names_the_first_problem_and_what_to_do(data: bytes, problem: str) -> None:
    with pytest.raises(StateError) as exc:
        State.from_json(data, "here", WHERE)
    assert str(exc.value) == f"{WHERE} is damaged: {problem}; {MOVE_ASIDE}"


def test_a_file_that_is_not_json_says_so_and_what_to_do() -> None:
    with pytest.raises(StateError) as exc:
        State.from_json(b"{", "here", WHERE)
    assert str(exc.value) == (
        f"{WHERE} is not valid JSON (Expecting property name enclosed in double quotes:"
        f" line 1 column 2 (char 1)); {MOVE_ASIDE}"
    )


def test_a_newer_version_is_refused_before_anything_else_is_checked() -> None:
    with pytest.raises(StateError) as exc:
        State.from_json(b'{"version": 7, "colour": 1}', "here", WHERE)
    assert str(exc.value) == f"{WHERE}: state version 7 is newer than 1; upgrade imagespec"
