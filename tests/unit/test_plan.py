"""make_plan on literal values: a small rendered director against hand-made states.

The director's real files are given as {path: sha256 hex}, exactly what the
transports report, so every case is a pure function call.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any, Optional

import pytest

from imagespec.diff import DiffReport, ImageDiff
from imagespec.plan import Plan, make_plan, owed_actions
from imagespec.render import RenderedDirector
from imagespec.state import ImageState, State
from tests.helpers import memory_site, site_files

COMMIT = "c" * 40
OLD_COMMIT = "b" * 40
FAMILY = "p/custom/netboot/rocky"
PKG_A, STANZA_A = f"{FAMILY}/img-a.pkglist", f"{FAMILY}/img-a.stanza"
PKG_B, STANZA_B = f"{FAMILY}/img-b.pkglist", f"{FAMILY}/img-b.stanza"
# Every image has a synclist, entries or not (the synclists attribute is always set).
SYNC_A, SYNC_B = f"{FAMILY}/img-a.synclist", f"{FAMILY}/img-b.synclist"
POSTSCRIPT = "postscripts/p/50-site"
EVERY_FILE = sorted([PKG_A, STANZA_A, SYNC_A, PKG_B, STANZA_B, SYNC_B, POSTSCRIPT])
ALL_STAGES = ["sync", "define", "genimage", "pack"]
OTHER = "0" * 64  # a hash no rendered file has


def render(frozen_b: bool = False) -> RenderedDirector:
    """img-a (base) and img-b (login <- base), both using the postscript 50-site."""
    files = site_files(
        {
            "base": {"packages": ["bash"], "postscripts": ["50-site"]},
            "login": {"inherits": ["base"], "packages": ["gcc"]},
        },
        images={
            "img-a": {"profile": "base", "distro": "rocky8"},
            "img-b": {"profile": "login", "distro": "rocky8", "frozen": frozen_b},
        },
        extra={"postscripts/50-site": "#!/bin/sh\nexit 0\n"},
    )
    return memory_site(files).render("main")


def hexdigest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def on_disk(tree: RenderedDirector) -> dict[str, Optional[str]]:
    """The director after a complete apply of tree: every file as rendered."""
    return {path: hexdigest(file.data) for path, file in tree.files.items()}


def done(tree: RenderedDirector, name: str, **fields: Any) -> ImageState:
    """The record of an image whose every stage completed for this rendering."""
    image = ImageState(
        digests=dict(tree.images[name].digests),
        status="ok",
        commit=OLD_COMMIT,
        generation=1,
        builder="xcat",
    )
    return replace(image, **fields)


def applied(tree: RenderedDirector, **images: ImageState) -> State:
    """state.json after a complete apply of tree (images given replace the recorded ones)."""
    recorded = {name: done(tree, name) for name in tree.images}
    recorded.update(images)
    files = {path: hexdigest(file.data) for path, file in tree.files.items()}
    return State("main", OLD_COMMIT, files=files, images=recorded)


def actions(plan: Plan) -> dict[str, list[str]]:
    return {name: image.actions for name, image in plan.report.images.items()}


def reasons(plan: Plan) -> dict[str, list[str]]:
    return {name: image.reasons for name, image in plan.report.images.items()}


# ---------------------------------------------------------------- a director never applied


def test_a_new_director_gets_every_file_and_every_stage() -> None:
    tree = render()
    plan = make_plan(tree, State("main"), {}, "xcat", COMMIT)
    assert plan.as_json() == {
        "director": "main",
        "base": "none",
        "head": COMMIT,
        "images": {
            name: {
                "status": "added",
                "actions": ALL_STAGES,
                "changes": {},
                "reasons": ["never built"],
                "frozen": False,
                "nodeset": {"owed": True, "nodes": None},
            }
            for name in ("img-a", "img-b")
        },
        "summary": {
            "genimage": ["img-a", "img-b"],
            "pack": [],
            "define": [],
            "sync": [],
            "removed": [],
            "unchanged": 0,
        },
        "drift": [],
        "orphans": [],
        "notes": [],
        "files": {"write": EVERY_FILE, "delete": [], "kept": []},
        "frozen_files": {},
    }
    assert plan.work


def test_files_already_right_on_a_new_director_are_adopted_not_written() -> None:
    tree = render()
    actual = {PKG_A: hexdigest(tree.files[PKG_A].data)}
    plan = make_plan(tree, State("main"), actual, "xcat", COMMIT)
    assert plan.files.adopt == {PKG_A: actual[PKG_A]}
    assert sorted(plan.files.write) == [p for p in EVERY_FILE if p != PKG_A]
    assert plan.files.unmanaged == []


def test_a_file_imagespec_never_wrote_that_differs_is_unmanaged_and_replaced() -> None:
    tree = render()
    plan = make_plan(tree, State("main"), {POSTSCRIPT: OTHER}, "xcat", COMMIT)
    assert plan.files.unmanaged == [POSTSCRIPT]
    assert plan.files.drift == []
    assert POSTSCRIPT in plan.files.write


# ---------------------------------------------------------------- in sync


def test_a_director_in_sync_has_nothing_to_do() -> None:
    tree = render()
    plan = make_plan(tree, applied(tree), on_disk(tree), "xcat", COMMIT)
    assert actions(plan) == {"img-a": [], "img-b": []}
    assert reasons(plan) == {"img-a": [], "img-b": []}
    assert {n: i.status for n, i in plan.report.images.items()} == {
        "img-a": "unchanged",
        "img-b": "unchanged",
    }
    assert plan.report.base == OLD_COMMIT
    assert not plan.files.changes
    assert not plan.work


# ---------------------------------------------------------------- stages owed from the digests


@pytest.mark.parametrize(
    ("stale", "owed"),
    [
        ("define", ["define"]),
        ("build", ["genimage", "pack"]),
        ("pack", ["pack"]),
    ],
)
def test_a_recorded_digest_that_differs_owes_its_stage(stale: str, owed: list[str]) -> None:
    tree = render()
    digests: dict[str, Optional[str]] = {**tree.images["img-a"].digests, stale: "sha256:old"}
    state = applied(tree, **{"img-a": done(tree, "img-a", digests=digests)})
    plan = make_plan(tree, state, on_disk(tree), "xcat", COMMIT)
    assert actions(plan) == {"img-a": owed, "img-b": []}
    assert plan.report.images["img-a"].status == "changed"
    assert reasons(plan)["img-a"] == ["recorded digests differ"]
    assert plan.report.summary()[owed[0]] == ["img-a"]


def test_an_unfinished_stage_recorded_as_none_is_still_owed() -> None:
    tree = render()
    digests: dict[str, Optional[str]] = {**tree.images["img-a"].digests, "pack": None}
    state = applied(
        tree,
        **{
            "img-a": done(
                tree, "img-a", digests=digests, status="failed", failed_stage="pack", error="boom"
            )
        },
    )
    plan = make_plan(tree, state, on_disk(tree), "xcat", COMMIT)
    assert actions(plan)["img-a"] == ["pack"]
    assert reasons(plan)["img-a"] == ["failed last time (pack): boom"]


def test_a_failure_without_details_says_where_to_look() -> None:
    tree = render()
    state = applied(tree, **{"img-a": done(tree, "img-a", digests={}, status="failed")})
    plan = make_plan(tree, state, on_disk(tree), "xcat", COMMIT)
    assert actions(plan)["img-a"] == ["define", "genimage", "pack"]
    assert reasons(plan)["img-a"] == ["failed last time (unknown stage): see the log"]


def test_rebuild_forces_genimage_and_pack_only() -> None:
    tree = render()
    plan = make_plan(tree, applied(tree), on_disk(tree), "xcat", COMMIT, rebuild={"img-b"})
    assert actions(plan) == {"img-a": [], "img-b": ["genimage", "pack"]}
    assert reasons(plan)["img-b"] == ["rebuild requested"]


def test_a_rolled_back_image_says_how_to_keep_the_rollback() -> None:
    tree = render()
    digests: dict[str, Optional[str]] = {**tree.images["img-a"].digests, "build": "sha256:old"}
    state = applied(
        tree,
        **{"img-a": done(tree, "img-a", digests=digests, generation=2, rolled_back_from=3)},
    )
    plan = make_plan(tree, state, on_disk(tree), "xcat", COMMIT)
    assert actions(plan)["img-a"] == ["genimage", "pack"]
    assert reasons(plan)["img-a"] == [
        "rolled back to generation 2 (from 3); revert the change in git to keep it"
    ]


def test_a_rolled_back_image_with_nothing_owed_has_no_reason() -> None:
    tree = render()
    state = applied(tree, **{"img-a": done(tree, "img-a", rolled_back_from=3)})
    plan = make_plan(tree, state, on_disk(tree), "xcat", COMMIT)
    assert reasons(plan)["img-a"] == []


def test_owed_actions_in_spec_order() -> None:
    tree = render()
    image = tree.images["img-a"]
    assert owed_actions(image, None, "xcat", False) == ["define", "genimage", "pack"]
    assert owed_actions(image, None, "none", True) == []
    skipped = ImageState(digests=dict(image.digests), status="skipped", builder="none")
    assert owed_actions(image, skipped, "native", False) == ["define", "genimage", "pack"]
    assert owed_actions(image, done(tree, "img-a"), "native", False) == []
    assert owed_actions(image, done(tree, "img-a"), "native", True) == ["genimage", "pack"]


# ---------------------------------------------------------------- builder none


def test_builder_none_only_delivers_files() -> None:
    tree = render()
    plan = make_plan(tree, State("main"), {}, "none", COMMIT)
    assert actions(plan) == {"img-a": ["sync"], "img-b": ["sync"]}
    assert reasons(plan) == {"img-a": ["never delivered"], "img-b": ["never delivered"]}


def test_an_image_skipped_by_builder_none_is_never_built_for_a_real_builder() -> None:
    tree = render()
    skipped = {
        name: ImageState(digests=dict(tree.images[name].digests), status="skipped", builder="none")
        for name in tree.images
    }
    plan = make_plan(tree, applied(tree, **skipped), on_disk(tree), "xcat", COMMIT)
    assert actions(plan) == {"img-a": ALL_STAGES[1:], "img-b": ALL_STAGES[1:]}
    assert reasons(plan) == {"img-a": ["never built"], "img-b": ["never built"]}


# ---------------------------------------------------------------- files


def test_a_managed_file_changed_on_the_director_is_drift_and_is_rewritten() -> None:
    tree = render()
    actual = {**on_disk(tree), PKG_B: OTHER}
    state = applied(tree)
    state.files[PKG_B] = "1" * 64  # what imagespec wrote last time, not what is rendered now
    plan = make_plan(tree, state, actual, "xcat", COMMIT)
    assert plan.files.drift == [PKG_B]
    assert list(plan.files.write) == [PKG_B]
    assert actions(plan) == {"img-a": [], "img-b": ["sync"]}
    assert reasons(plan)["img-b"] == ["drift in img-b.pkglist"]
    assert plan.as_json()["drift"] == [PKG_B]


def test_a_shared_file_owes_a_sync_to_every_image_using_it() -> None:
    tree = render()
    state = applied(tree)
    state.files[POSTSCRIPT] = "1" * 64
    actual = {**on_disk(tree), POSTSCRIPT: "1" * 64}
    plan = make_plan(tree, state, actual, "xcat", COMMIT)
    assert list(plan.files.write) == [POSTSCRIPT]
    assert plan.files.drift == []
    assert actions(plan) == {"img-a": ["sync"], "img-b": ["sync"]}


def test_a_file_no_longer_rendered_is_deleted_only_while_it_is_as_written() -> None:
    tree = render()
    state = applied(tree)
    gone, missing, changed = f"{FAMILY}/old.pkglist", f"{FAMILY}/old.exlist", f"{FAMILY}/x.stanza"
    state.files.update({gone: "1" * 64, missing: "2" * 64, changed: "3" * 64})
    actual = {**on_disk(tree), gone: "1" * 64, changed: OTHER}
    plan = make_plan(tree, state, actual, "xcat", COMMIT)
    assert plan.files.delete == [missing, gone]
    assert plan.files.kept == [changed]
    assert plan.files.write == {}
    assert plan.as_json()["files"] == {"write": [], "delete": [missing, gone], "kept": [changed]}
    assert plan.work
    assert actions(plan) == {"img-a": [], "img-b": []}


# ---------------------------------------------------------------- frozen, only, orphans


def test_a_frozen_image_is_never_touched_and_keeps_its_own_files() -> None:
    tree = render(frozen_b=True)
    plan = make_plan(tree, State("main"), {}, "xcat", COMMIT)
    assert plan.frozen == ["img-b"]
    assert actions(plan) == {"img-a": ALL_STAGES, "img-b": []}
    assert reasons(plan)["img-b"] == ["frozen: never touched by imagespec"]
    # the postscript is shared with img-a, so it is still written
    assert sorted(plan.files.write) == [PKG_A, STANZA_A, SYNC_A, POSTSCRIPT]
    assert plan.as_json()["images"]["img-b"]["frozen"] is True


def test_a_shared_file_a_frozen_image_uses_is_listed_only_when_apply_would_overwrite_it() -> None:
    tree = render(frozen_b=True)
    # not on the director yet: writing it changes nothing the frozen image had
    assert make_plan(tree, State("main"), {}, "xcat", COMMIT).frozen_files == {}
    # already right: nothing is written
    assert make_plan(tree, applied(tree), on_disk(tree), "xcat", COMMIT).frozen_files == {}
    # other content on the director (an older commit's): apply would overwrite it
    disk = {**on_disk(tree), POSTSCRIPT: OTHER}
    state = applied(tree)
    state.files[POSTSCRIPT] = OTHER
    plan = make_plan(tree, state, disk, "xcat", COMMIT)
    assert plan.frozen_files == {POSTSCRIPT: ["img-b"]}
    assert plan.as_json()["frozen_files"] == {POSTSCRIPT: ["img-b"]}
    assert reasons(plan)["img-a"][-1] == f"refused: {POSTSCRIPT} is used by frozen img-b"
    assert reasons(plan)["img-b"] == ["frozen: never touched by imagespec"]


def test_a_frozen_image_with_changes_says_they_are_not_applied() -> None:
    tree = render(frozen_b=True)
    changes = DiffReport(
        "x",
        "y",
        "main",
        {"img-b": ImageDiff("img-b", "changed", ["genimage"], {"pkglist": {}}, ["login"])},
    )
    plan = make_plan(tree, applied(tree), on_disk(tree), "xcat", COMMIT, changes=changes)
    assert reasons(plan)["img-b"] == [
        "frozen: never touched by imagespec",
        "frozen: changes are not applied",
    ]
    assert not plan.work


def test_only_limits_actions_and_files_to_the_named_images() -> None:
    tree = render()
    plan = make_plan(tree, State("main"), {}, "xcat", COMMIT, only={"img-b"})
    # img-a is not built, but the postscript it shares with img-b is written
    assert actions(plan) == {"img-a": ["sync"], "img-b": ALL_STAGES}
    assert sorted(plan.files.write) == [PKG_B, STANZA_B, SYNC_B, POSTSCRIPT]


def test_an_image_gone_from_the_site_is_an_orphan() -> None:
    tree = render()
    state = applied(tree, **{"img-old": ImageState(status="ok", builder="xcat")})
    plan = make_plan(tree, state, on_disk(tree), "xcat", COMMIT)
    assert plan.orphans == ["img-old"]
    assert plan.report.images["img-old"].status == "removed"
    assert reasons(plan)["img-old"] == [
        "no longer in the site (orphaned); --prune-images removes its definition"
    ]
    assert plan.report.summary()["removed"] == ["img-old"]
    assert not plan.work


# ---------------------------------------------------------------- reasons from the diff


def test_changes_since_the_applied_commit_become_reasons() -> None:
    tree = render()
    digests: dict[str, Optional[str]] = {**tree.images["img-b"].digests, "build": "sha256:old"}
    state = applied(tree, **{"img-b": done(tree, "img-b", digests=digests)})
    change = ImageDiff(
        "img-b",
        "changed",
        ["genimage", "pack"],
        {"pkglist": {"added": ["gcc"], "removed": []}, "chain": {}},
        ["login"],
    )
    changes = DiffReport(OLD_COMMIT, COMMIT, "main", {"img-b": change})
    plan = make_plan(tree, state, on_disk(tree), "xcat", COMMIT, changes=changes)
    assert reasons(plan)["img-b"] == ["pkglist changed via login", "chain changed via login"]
    doc = plan.as_json()["images"]["img-b"]
    assert doc["changes"] == {"pkglist": {"added": ["gcc"], "removed": []}, "chain": {}}
    assert doc["actions"] == ["genimage", "pack"]
