"""A director's `nodes:` map: which nodes boot which image, checked before xCAT sees it (#14)."""

from __future__ import annotations

import json

import pytest

from imagespec.noderange import NodeRangeError, booting, expand, overlap
from imagespec.state import State, StateError
from tests.unit.test_errors import lines, open_all, problem_lines, site

IMAGES = lines(
    "images:",
    "  img:",
    "    profile: p",
    "    distro: rocky8",
    "  min:",
    "    profile: p",
    "    distro: rocky8",
    "    attributes: {rootimgdir: /install/netboot/min}",
    "  gone:",
    "    profile: p",
    "    distro: rocky8",
    "    attributes: {rootimgdir: /install/netboot/gone}",
    "    directors: [other]",
)


def directors(*nodes: str) -> str:
    return lines(
        "directors:",
        "  main:",
        "    install_root: /install",
        "    prefix: p",
        "    nodes:",
        *[f"      {n}" for n in nodes],
        "  other:",
        "    install_root: /install",
        "    prefix: o",
    )


def test_ranges_and_names_expand_and_groups_stay_words() -> None:
    found = expand("cn[001-003],cn010-cn011,login1,compute")
    assert found.nodes == {"cn001", "cn002", "cn003", "cn010", "cn011"}
    assert found.words == {"login1", "compute"}
    assert overlap(expand("cn[001-004]"), expand("cn004,cn005")) == {"cn004"}
    assert overlap(expand("cn[001-004]"), expand("cn[005-009]")) == set()
    with pytest.raises(NodeRangeError):
        expand("cn[9-1]")
    with pytest.raises(NodeRangeError):
        expand("cn[0-9999999]")


def test_a_valid_map_renders_as_before() -> None:
    view = open_all(site(directors=directors('"cn[001-004]": min', "compute: img"), images=IMAGES))
    assert view.docs.site.model.directors["main"].nodes == {"cn[001-004]": "min", "compute": "img"}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            ['"cn[001-004]": imgg'],
            "director 'main': nodes 'cn[001-004]' boot unknown image 'imgg'; did you mean 'img'?",
        ),
        (
            ["cn001: gone"],
            "director 'main': nodes 'cn001' boot image 'gone', which director 'main' does not"
            " build (its directors: other)",
        ),
        (
            ['"cn[001-004]": img', '"cn004,cn005": min'],
            "director 'main': nodes 'cn004,cn005' overlap 'cn[001-004]' (cn004); a node boots"
            " one image",
        ),
        (
            ['"^/etc/shadow": img'],
            "director 'main': '^/etc/shadow' is not a noderange imagespec passes to xCAT; use"
            " node names, ranges (cn[001-128]) and groups, comma separated",
        ),
        (
            ['"-cn001": img'],
            "director 'main': '-cn001' is not a noderange imagespec passes to xCAT; use node"
            " names, ranges (cn[001-128]) and groups, comma separated",
        ),
        (['"cn[5-1]": img'], "director 'main': nodes 'cn[5-1]': range 5-1 runs backwards"),
    ],
)
def test_bad_maps_are_errors_at_the_entry(entries: list[str], message: str) -> None:
    found = problem_lines(site(directors=directors(*entries), images=IMAGES))
    assert len(found) == 1, found
    assert found[0].split(": ", 1)[1] == message
    assert found[0].startswith("imagespec.yaml:")


def test_applied_assignments_round_trip_through_state_and_doctored_ones_are_refused() -> None:
    state = State("main", nodes={"cn[001-004]": "img"})
    again = State.from_json(state.to_json(), "main", "state.json")
    assert again.nodes == {"cn[001-004]": "img"}
    assert b'"nodes"' not in State("main").to_json(), "absent while nothing was assigned"
    doc = json.loads(state.to_json())
    doc["nodes"] = {"-cn001 --fork": "img"}
    with pytest.raises(StateError, match="nodes"):
        State.from_json(json.dumps(doc).encode(), "main", "state.json")


def test_who_boots_each_image_counts_names_and_ranges_and_lists_groups() -> None:
    assert booting(
        {"cn[001-412]": "compute", "gpu[01-04],login1": "gpu", "login": "login", "cn[9-1]": "x"}
    ) == {"compute": "412 nodes", "gpu": "4 nodes + login1", "login": "login"}
