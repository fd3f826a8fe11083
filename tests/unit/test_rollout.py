"""rollout's pure parts: batches, xCAT output parsing, status times, node records."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from imagespec.builders.xcatnodes import (
    booted_since,
    check_noderange,
    parse_node_attrs,
    parse_per_node,
)
from imagespec.errors import ImagespecError
from imagespec.model import RolloutSettings, batch_size
from imagespec.ops.rollout import batches_of, natural
from imagespec.state import NodeBoot, State, StateError

NODES = [f"cn{n:03d}" for n in range(1, 11)]


def sizes(batches: list) -> list[int]:
    return [len(b.nodes) for b in batches]


def test_canary_first_then_fixed_batches() -> None:
    batches = batches_of(NODES[:4], canary=1, batch="2")
    assert [b.nodes for b in batches] == [["cn001"], ["cn002", "cn003"], ["cn004"]]
    assert [b.canary for b in batches] == [True, False, False]


def test_percentage_batches_round_up_and_never_empty() -> None:
    assert sizes(batches_of(NODES, canary=0, batch="25%")) == [3, 3, 3, 1]
    assert sizes(batches_of(NODES[:3], canary=0, batch="1%")) == [1, 1, 1]
    assert sizes(batches_of(NODES, canary=2, batch="100%")) == [2, 8]


def test_no_nodes_no_batches() -> None:
    assert batches_of([], canary=1, batch="5") == []


@pytest.mark.parametrize("text", ["0", "0%", "101%", "-1", "five", "", "2.5"])
def test_bad_batch_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        batch_size(text)
    with pytest.raises(ValidationError):
        RolloutSettings(batch=text)


def test_natural_order() -> None:
    assert sorted(["cn10", "cn9", "cn100", "gpu1"], key=natural) == [
        "cn9",
        "cn10",
        "cn100",
        "gpu1",
    ]


def test_parse_lsdef_node_attributes() -> None:
    text = (
        "cn001: provmethod=rocky8-compute\n"
        "cn001: status=booted\n"
        "cn001: statustime=12-03-2026 16:40:00\n"
        "cn002: status=\n"
        "-bad: status=booted\n"
        "Could not find an object named 'x'\n"
    )
    assert parse_node_attrs(text) == {
        "cn001": {
            "provmethod": "rocky8-compute",
            "status": "booted",
            "statustime": "12-03-2026 16:40:00",
        },
        "cn002": {"status": ""},
    }


def test_parse_per_node_answers() -> None:
    assert parse_per_node("cn001: on reset\ncn002: Error: BMC busy\nnoise\n") == {
        "cn001": "on reset",
        "cn002": "Error: BMC busy",
    }


def test_booted_since_compares_director_times() -> None:
    since = "12-03-2026 16:40:00"
    assert booted_since({"status": "booted", "statustime": "12-03-2026 16:40:00"}, since)
    assert booted_since({"status": "booted", "statustime": "12-04-2026 01:00:00"}, since)
    # the status of the boot before the reboot
    assert not booted_since({"status": "booted", "statustime": "12-03-2026 16:39:59"}, since)
    assert not booted_since({"status": "powering-on", "statustime": "12-03-2026 16:41:00"}, since)
    assert not booted_since({"status": "booted", "statustime": "garbage"}, since)
    assert not booted_since({}, since)


@pytest.mark.parametrize("text", ["-o", "cn[1-2];rm", "a b", "^/etc/passwd", "/x", ""])
def test_noderanges_that_could_be_options_or_files_are_refused(text: str) -> None:
    with pytest.raises(ImagespecError):
        check_noderange(text)


def test_node_records_survive_state_round_trip() -> None:
    state = State(director="d")
    state.record_nodeset({"cn001": "img", "cn002": "img"}, 3)
    state.boots["cn001"].running_image = "img"
    state.boots["cn001"].running_generation = 3
    state.boots["cn002"].rebooting = "12-03-2026 16:40:00"
    again = State.from_json(state.to_json(), "d", "state.json")
    assert again.boots == state.boots
    assert again.boots["cn001"].runs("img", 3)
    assert not again.boots["cn002"].runs("img", 3)


def test_record_nodeset_keeps_what_the_node_runs() -> None:
    state = State(director="d")
    state.boots["cn001"] = NodeBoot("old", 1, running_image="old", running_generation=1)
    state.record_nodeset({"cn001": "new"}, 4)
    boot = state.boots["cn001"]
    assert (boot.image, boot.generation) == ("new", 4)
    assert (boot.running_image, boot.running_generation) == ("old", 1)
    assert boot.nodeset is not None


@pytest.mark.parametrize(
    "boot",
    [
        {"image": "img", "generation": -1},
        {"image": "-o", "generation": 1},
        {"image": "img", "generation": 1, "rebooting": "2026-12-03T16:40:00Z"},
        {"image": "img", "generation": 1, "unknown": 1},
    ],
)
def test_damaged_node_records_are_refused(boot: dict) -> None:
    doc = {"version": 1, "director": "d", "boots": {"cn001": boot}}
    with pytest.raises(StateError):
        State.from_json(json.dumps(doc).encode(), "d", "state.json")


def test_a_node_name_that_is_an_option_is_refused_in_state() -> None:
    doc = {"version": 1, "director": "d", "boots": {"-x": {"image": "img", "generation": 1}}}
    with pytest.raises(StateError):
        State.from_json(json.dumps(doc).encode(), "d", "state.json")
