"""make_plan with what an xcat director's database says: definition drift and nodeset owed.

xCAT is read once per plan (`lsdef -t osimage -z`, `lsdef -t node -i provmethod -c`);
these cases hand make_plan the parsed answers.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from imagespec.builders.xcat import parse_provmethods, parse_stanzas
from imagespec.plan import Observed, boot_changes, make_plan
from imagespec.render import RenderedDirector
from imagespec.state import State
from tests.unit.test_plan import COMMIT, applied, done, on_disk, render


def definitions(tree: RenderedDirector, **changes: dict[str, str]) -> dict[str, dict[str, str]]:
    """The osimages as imagespec defined them, with per-image changes (foreign attributes)."""
    found = {name: dict(image.attributes) for name, image in tree.images.items()}
    for name, attrs in changes.items():
        found[name].update(attrs)
    return found


def plan_with(
    tree: RenderedDirector,
    state: State,
    defs: Optional[dict[str, dict[str, str]]],
    nodes: Optional[dict[str, list[str]]] = None,
) -> tuple[dict[str, list[str]], dict[str, Optional[int]], dict[str, list[str]]]:
    plan = make_plan(tree, state, on_disk(tree), "xcat", COMMIT, observed=Observed(defs, nodes))
    acts = {name: list(d.actions) for name, d in plan.report.images.items()}
    reasons = {name: list(d.reasons) for name, d in plan.report.images.items()}
    return acts, plan.nodeset, reasons


def test_foreign_attributes_and_genimage_write_backs_are_not_drift() -> None:
    tree = render()
    defs = definitions(tree, **{"img-a": {"groups": "lite", "usercomment": "site's own"}})
    acts, nodeset, _ = plan_with(tree, applied(tree), defs, {})
    assert acts == {"img-a": [], "img-b": []}
    assert nodeset == {}


def test_a_rendered_attribute_changed_by_hand_owes_define_and_says_which() -> None:
    tree = render()
    defs = definitions(tree, **{"img-a": {"osname": "AIX"}})
    acts, _, reasons = plan_with(tree, applied(tree), defs, {})
    assert acts["img-a"] == ["define"]
    assert "definition changed on the director: osname" in reasons["img-a"]
    assert acts["img-b"] == []


def test_a_definition_removed_on_the_director_is_defined_again() -> None:
    tree = render()
    defs = definitions(tree)
    del defs["img-b"]
    acts, _, reasons = plan_with(tree, applied(tree), defs, {})
    assert acts["img-b"] == ["define"]
    assert "definition missing on the director" in reasons["img-b"]


def test_unreadable_definitions_owe_nothing_extra() -> None:
    tree = render()
    acts, _, _ = plan_with(tree, applied(tree), None, None)
    assert acts == {"img-a": [], "img-b": []}


def test_a_new_generation_owes_nodeset_with_the_node_count() -> None:
    tree = render()
    state = applied(tree, **{"img-a": done(tree, "img-a", digests={})})
    nodes = {"img-a": ["cn001", "cn002", "cn003"], "img-b": ["login1"]}
    acts, nodeset, reasons = plan_with(tree, state, definitions(tree), nodes)
    assert acts["img-a"] == ["define", "genimage", "pack"]
    assert nodeset == {"img-a": 3}
    assert "nodeset owed: 3 nodes" in reasons["img-a"]


def test_nodeset_still_owed_from_a_failed_apply_is_work_on_its_own() -> None:
    tree = render()
    state = applied(tree, **{"img-b": done(tree, "img-b", nodeset_owed=True)})
    plan = make_plan(
        tree, state, on_disk(tree), "xcat", COMMIT, observed=Observed(definitions(tree), None)
    )
    assert plan.report.images["img-b"].actions == []
    assert plan.nodeset == {"img-b": None}
    assert plan.work
    assert plan.as_json()["images"]["img-b"]["nodeset"] == {"owed": True, "nodes": None}
    assert "nodeset owed (nodes could not be listed)" in plan.report.images["img-b"].reasons


def test_a_boot_attribute_changed_by_define_owes_nodeset_but_others_do_not() -> None:
    tree = render()
    image = tree.images["img-a"]
    have = dict(image.attributes)
    assert boot_changes(image, have) == []
    assert boot_changes(image, {**have, "addkcmdline": "quiet"}) == ["addkcmdline"]
    assert boot_changes(image, {**have, "osname": "AIX"}) == []
    drifted = {**have, "rootimgdir": "/install/netboot/elsewhere"}
    defs = {"img-a": drifted, "img-b": dict(tree.images["img-b"].attributes)}
    acts, nodeset, _ = plan_with(tree, applied(tree), defs, {})
    assert acts["img-a"] == ["define"]
    assert nodeset == {"img-a": 0}
    assert acts["img-b"] == []


def test_native_and_none_builders_never_owe_nodeset() -> None:
    tree = render()
    state = applied(tree, **{"img-a": done(tree, "img-a", digests={}, nodeset_owed=True)})
    for builder in ("native", "none"):
        plan = make_plan(tree, state, on_disk(tree), builder, COMMIT)
        assert plan.nodeset == {}


def test_frozen_images_owe_no_nodeset() -> None:
    tree = render(frozen_b=True)
    state = applied(tree, **{"img-b": replace(done(tree, "img-b"), nodeset_owed=True)})
    _, nodeset, _ = plan_with(tree, state, definitions(tree), {})
    assert nodeset == {}


def test_lsdef_stanzas_and_node_lists_parse_as_xcat_prints_them() -> None:
    text = (
        "# <xCAT data object stanza file>\n\n"
        "img-a:\n    objtype=osimage\n    groups=lite\n    rootimgdir=/install/x\n\n"
        "img-b:\n    objtype=osimage\n    usercomment=a=b\n"
    )
    assert parse_stanzas(text) == {
        "img-a": {"groups": "lite", "rootimgdir": "/install/x"},
        "img-b": {"usercomment": "a=b"},
    }
    nodes = "cn002: provmethod=img-a\ncn001: provmethod=img-a\nsvc1: provmethod=install\nx: provmethod=\n"
    assert parse_provmethods(nodes) == {"img-a": ["cn001", "cn002"], "install": ["svc1"]}
