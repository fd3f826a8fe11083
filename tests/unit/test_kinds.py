"""The registry of rendered kinds, the action words and the digests, on literal values."""

from __future__ import annotations

import json

from imagespec import digest
from imagespec.actions import (
    ALL_ACTIONS,
    Action,
    ApplyResult,
    BuildStatus,
    Stage,
    Status,
    heaviest_of,
    stage_actions,
)
from imagespec.model import LIST_FIELDS, SCRIPT_FIELDS, Profile
from imagespec.render import kinds


def test_every_merged_list_has_one_kind_in_show_order() -> None:
    assert tuple(kind.field for kind in kinds.LISTS) == LIST_FIELDS
    assert tuple(kind.field for kind in kinds.SCRIPTS) == SCRIPT_FIELDS
    assert [kind.key for kind in kinds.LISTS] == [
        "pkglist",
        "otherpkglist",
        "erase",
        "erase_first",
        "exlist",
        "postinstall",
        "postscripts",
        "postbootscripts",
    ]


def test_every_file_kind_is_written_from_profile_keys() -> None:
    for kind in (*kinds.IMAGE_FILES, kinds.STANZA):
        assert set(kind.fields) <= set(Profile.model_fields), kind.name
    rendered = {f for kind in kinds.IMAGE_FILES for f in kind.fields} | set(SCRIPT_FIELDS)
    assert rendered == {*LIST_FIELDS, "sync", "litefile"}


def test_file_kinds_keep_the_spec_suffixes_attributes_and_stages() -> None:
    table = {k.name: (k.suffix, k.attribute, k.stage, k.key) for k in kinds.IMAGE_FILES}
    assert table == {
        "pkglist": ("pkglist", "pkglist", Stage.BUILD, "pkglist"),
        "otherpkglist": ("otherpkgs.pkglist", "otherpkglist", Stage.BUILD, "otherpkglist"),
        "exlist": ("exlist", "exlist", Stage.PACK, "exlist"),
        "synclist": ("synclist", "synclists", Stage.PACK, "sync"),
        "litefile": ("litefile.csv", None, Stage.PACK, "litefile"),
    }
    # the define digest is the stanza itself: a file's content counts for build or pack
    assert kinds.STANZA.stage == Stage.DEFINE
    assert {k.stage for k in kinds.IMAGE_FILES} <= {Stage.BUILD, Stage.PACK}
    assert {k.field: k.stage for k in kinds.SCRIPTS} == {
        "postinstall": Stage.BUILD,
        "postscripts": None,
        "postbootscripts": None,
    }


def test_computed_attributes_are_the_rendered_ones_and_the_identity() -> None:
    assert {
        "pkglist",
        "otherpkglist",
        "exlist",
        "synclists",
        "postinstall",
        "postscripts",
        "postbootscripts",
        "profile",
        "osvers",
        "osarch",
    } == kinds.COMPUTED_ATTRIBUTES


def test_actions_follow_the_digests_that_differ() -> None:
    assert stage_actions(set()) == []
    assert stage_actions({Stage.DEFINE}) == [Action.DEFINE]
    assert stage_actions({Stage.PACK}) == [Action.PACK]
    assert stage_actions({Stage.BUILD}) == [Action.GENIMAGE, Action.PACK]
    assert stage_actions(set(Stage)) == [Action.DEFINE, Action.GENIMAGE, Action.PACK]
    assert [a.stage for a in ALL_ACTIONS] == [None, Stage.DEFINE, Stage.BUILD, Stage.PACK]


def test_an_image_counts_under_its_heaviest_action() -> None:
    assert heaviest_of([]) is None
    assert heaviest_of([Action.SYNC, Action.DEFINE]) == Action.DEFINE
    assert heaviest_of([Action.SYNC, Action.PACK, Action.DEFINE]) == Action.PACK
    assert heaviest_of(list(ALL_ACTIONS)) == Action.GENIMAGE


def test_the_words_stay_plain_strings_in_text_and_json() -> None:
    words = [Action.GENIMAGE, Status.UNCHANGED, BuildStatus.SKIPPED, ApplyResult.UP_TO_DATE]
    assert json.dumps({Action.SYNC: words}) == (
        '{"sync": ["genimage", "unchanged", "skipped", "up to date"]}'
    )
    assert [f"{w}" for w in words] == [str(w) for w in words] == json.loads(json.dumps(words))
    assert {"pack": 1}[Action.PACK] == 1 and Stage.BUILD == "build"


def test_digests_are_pinned_on_literal_inputs() -> None:
    """The document keys are part of every recorded digest: renaming one rebuilds every image."""
    build = digest.build_digest(
        {"pkglist": "vim\n", "otherpkglist": ""},
        {"10-a": b"#!/bin/sh\n"},
        {"osvers": "rocky8", "profile": "compute"},
    )
    assert build == "sha256:b710dc654cbc7e41c714c8d883dcefa13a9d83089f3f64ef76e5bec459439736"
    pack = digest.pack_digest(
        {
            "exlist": "./usr/share/doc*\n",
            "sync": ["/install/custom/synclists/etc/motd -> /etc/motd"],
            "litefile": "",
        },
        {"etc/motd": (b"hi\n", 0o644)},
        {"provmethod": "netboot"},
        {"method": "cpio", "compress": "gzip"},
    )
    assert pack == "sha256:4006f9ae0c37e56791244d8ee834d0d1baa9124b32db319c13f12097d00c440c"
