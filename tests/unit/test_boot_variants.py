"""Boot variants (#14): osimages `<image>-<variant>` that share their image's root and build.

A variant differs from its image only in attributes nodeset reads (addkcmdline,
crashkernelsize, ...), so a variant change costs a define and never a build or
pack.  These cases pin what is refused and where, the stanza a variant gets,
which digest it moves, how diff reports it and what plan owes for it.
"""

from __future__ import annotations

import copy
import io
import json
from typing import Any, Optional

import pytest
from rich.console import Console

from imagespec import digest
from imagespec.diff import compare
from imagespec.plan import Observed, make_plan
from imagespec.report.diff import change_lines
from imagespec.report.show import print_show
from imagespec.state import ImageState, State, StateError
from imagespec.validate import VARIANT_ATTRIBUTES, variant_rootfstype_problem
from tests.helpers import memory_site, site_files
from tests.unit.test_errors import IMAGES, lines, open_all, problem_lines, site
from tests.unit.test_plan import COMMIT, applied, on_disk

# ---------------------------------------------------------------- what is refused, and where
#
# The images block of tests/unit/test_errors.py starts at line 12 (`images:`), so
# `    variants:` is line 16 and the first variant line 17.


def variants(*entries: str) -> str:
    return IMAGES + lines("    variants:", *entries)


ERROR_CASES = [
    pytest.param(
        variants("      Serial: {attributes: {addkcmdline: console=ttyS0}}"),
        [
            "imagespec.yaml:17:7: image 'img' variant 'Serial': variant name 'Serial' may only"
            " use lowercase letters, digits and '-', starting with a letter or digit; rename it"
        ],
        id="uppercase-name",
    ),
    pytest.param(
        variants("      -serial: {}"),
        [
            "imagespec.yaml:17:7: image 'img' variant '-serial': variant name '-serial' may only"
            " use lowercase letters, digits and '-', starting with a letter or digit; rename it"
        ],
        id="name-starting-with-dash",
    ),
    pytest.param(
        variants(
            "      serial:",
            "        attributes:",
            "          kernelver: 5.14.0",
            "          pkglist: /x",
            "          provmethod: statelite",
            "          addkcmdline: console=ttyS0",
        ),
        [
            "imagespec.yaml:19:11: image 'img' variant 'serial': 'kernelver' is read by genimage"
            " (genimage.pm:142,148), and a variant shares its image's build; a variant may set"
            " only addkcmdline, crashkernelsize, description, dump, nfsrootopts, partitionfile,"
            " rootfstype, usercomment: remove it, or give those nodes an image of their own",
            "imagespec.yaml:20:11: image 'img' variant 'serial': 'pkglist' is computed by"
            " imagespec from the image's profile and distro; a variant may set only addkcmdline,"
            " crashkernelsize, description, dump, nfsrootopts, partitionfile, rootfstype,"
            " usercomment: remove it, or give those nodes an image of their own",
            "imagespec.yaml:21:11: image 'img' variant 'serial': 'provmethod' is read by"
            " packimage and liteimg (packimage.pm:154, statelite.pm:130), and a variant shares"
            " its image's pack; a variant may set only addkcmdline, crashkernelsize, description,"
            " dump, nfsrootopts, partitionfile, rootfstype, usercomment: remove it, or give those"
            " nodes an image of their own",
        ],
        id="build-pack-and-computed-attributes",
    ),
    pytest.param(
        variants("      nobootif: {attributes: {nodebootif: null}}"),
        [
            "imagespec.yaml:17:31: image 'img' variant 'nobootif': 'nodebootif' is read by"
            " genimage (genimage.pm:142,148), and a variant shares its image's build; a variant"
            " may set only addkcmdline, crashkernelsize, description, dump, nfsrootopts,"
            " partitionfile, rootfstype, usercomment: remove it, or give those nodes an image of"
            " their own"
        ],
        id="unsetting-a-build-attribute",
    ),
    pytest.param(
        variants("      serial: {attributes: {addkcmdline: 'a;b'}}"),
        [
            "imagespec.yaml:17:29: image 'img' variant 'serial': attribute 'addkcmdline' value"
            " 'a;b' may only use letters, digits and . , : / = @ % + ~ - (one space between"
            " words), with no '-' first: xCAT passes it to a shell unquoted"
        ],
        id="unsafe-value",
    ),
    pytest.param(
        variants("      imagespec-staging: {}"),
        [
            "imagespec.yaml:17:7: image 'img' variant 'imagespec-staging': its osimage"
            " 'img-imagespec-staging' ends in '-imagespec-staging', which the xcat builder uses"
            " for the temporary osimage each build goes through; rename the variant"
        ],
        id="staging-suffix",
    ),
    pytest.param(
        IMAGES
        + lines(
            "    variants:",
            "      serial: {}",
            "  img-serial:",
            "    profile: p",
            "    distro: rocky8",
            "    attributes: {rootimgdir: /install/netboot/serial}",
        ),
        [
            "imagespec.yaml:17:7: image 'img' variant 'serial': its osimage 'img-serial' is the"
            " name of image 'img-serial'; rename the variant (one xCAT object cannot be both)"
        ],
        id="clash-with-an-image",
    ),
    pytest.param(
        IMAGES
        + lines(
            "    variants:",
            "      a-b: {}",
            "  img-a:",
            "    profile: p",
            "    distro: rocky8",
            "    attributes: {rootimgdir: /install/netboot/a}",
            "    variants:",
            "      b: {}",
        ),
        [
            "imagespec.yaml:23:7: image 'img-a' variant 'b': its osimage 'img-a-b' is the name"
            " of variant 'a-b' of image 'img'; rename the variant (one xCAT object cannot be"
            " both)"
        ],
        id="clash-with-another-variant",
    ),
    pytest.param(
        variants("      nfs: {attributes: {rootfstype: nfs}}"),
        [
            "imagespec.yaml:17:26: image 'img' variant 'nfs': rootfstype does nothing for a"
            " netboot image: only statelite nodes read it (anaconda.pm mknetboot), and packimage"
            " never does; remove it"
        ],
        id="rootfstype-on-netboot",
    ),
]


@pytest.mark.parametrize(("images", "expected"), ERROR_CASES)
def test_bad_variants_are_errors_at_their_place(images: str, expected: list[str]) -> None:
    assert problem_lines(site(images=images)) == expected


def test_a_variant_osimage_read_as_stanza_defaults_is_refused() -> None:
    images = lines("images:", "  default:", "    profile: p", "    distro: rocky8")
    images += lines("    variants:", "      osimage: {}")
    assert problem_lines(site(images=images)) == [
        "imagespec.yaml:17:7: image 'default' variant 'osimage': its osimage 'default-osimage'"
        " is read by xCAT's stanza reader as the defaults for objects of a type, not as an"
        " osimage, so mkdef never creates it; rename the variant"
    ]


def statelite(own: Optional[str], variant: str) -> str:
    """The one image as statelite with rootfstype `own`, and a variant setting `variant`."""
    attributes = "{provmethod: statelite" + (f", rootfstype: {own}" if own else "") + "}"
    return lines(
        "images:",
        "  img:",
        "    profile: p",
        "    distro: rocky8",
        f"    attributes: {attributes}",
        "    variants:",
        f"      v: {{attributes: {{rootfstype: {variant}}}}}",
    )


def test_a_ramdisk_variant_of_an_nfs_root_image_would_need_another_pack() -> None:
    assert problem_lines(site(images=statelite(None, "ramdisk"))) == [
        "imagespec.yaml:18:24: image 'img' variant 'v': a ramdisk root boots"
        " rootimg-statelite.gz, which liteimg packs only when the image's own rootfstype is"
        " ramdisk (statelite.pm:484), so this variant would change the image's pack; set"
        " rootfstype: ramdisk on the image (its variants may then boot the same root over NFS"
        " with rootfstype: nfs), or give those nodes an image of their own"
    ]


@pytest.mark.parametrize(
    ("own", "variant", "stored"),
    [("ramdisk", "nfs", "nfs"), ("ramdisk", "null", None), (None, "nfs", "nfs")],
)
def test_an_nfs_root_variant_boots_the_root_its_image_already_packs(
    own: Optional[str], variant: str, stored: Optional[str]
) -> None:
    image = open_all(site(images=statelite(own, variant))).render("main").images["img"]
    assert image.attributes.get("rootfstype") == own
    assert image.variants["img-v"].attributes.get("rootfstype") == stored


def test_rootfstype_rules_name_the_values_xcat_knows() -> None:
    assert variant_rootfstype_problem(True, "ramdisk", "nfs") == ""
    assert variant_rootfstype_problem(True, "ramdisk", "ramdisk") == ""
    assert variant_rootfstype_problem(True, None, None) == ""
    assert "neither nfs nor ramdisk" in variant_rootfstype_problem(True, "ramdisk", "tmpfs")
    assert "liteimg packs only" in variant_rootfstype_problem(True, "nfs", "ramdisk")
    assert "netboot" in variant_rootfstype_problem(False, "ramdisk", "nfs")


def test_every_variant_attribute_is_one_the_build_and_pack_never_read() -> None:
    assert not VARIANT_ATTRIBUTES & set(digest.BUILD_ATTRIBUTES)
    assert VARIANT_ATTRIBUTES & set(digest.PACK_ATTRIBUTES) == {"rootfstype"}


# ---------------------------------------------------------------- nodes: maps


def nodes_map(*entries: str) -> str:
    """Directors main (with these `nodes:` entries, if any) and other."""
    return lines(
        "directors:",
        "  main:",
        "    install_root: /install",
        "    prefix: p",
        *(["    nodes:"] if entries else []),
        *[f"      {entry}" for entry in entries],
        "  other:",
        "    install_root: /install",
        "    prefix: o",
    )


SERIAL = IMAGES + lines("    variants:", "      serial: {attributes: {addkcmdline: console=ttyS0}}")


def test_a_nodes_map_may_name_a_variant_of_an_image_the_director_builds() -> None:
    view = open_all(site(directors=nodes_map("cn001: img-serial"), images=SERIAL))
    assert view.docs.site.model.directors["main"].nodes == {"cn001": "img-serial"}


def test_a_misspelt_variant_in_a_nodes_map_suggests_the_variant() -> None:
    found = problem_lines(site(directors=nodes_map("cn001: img-serail"), images=SERIAL))
    assert found == [
        "imagespec.yaml:13:7: director 'main': nodes 'cn001' boot unknown image 'img-serail';"
        " did you mean 'img-serial'?"
    ]


def test_a_variant_of_an_image_another_director_builds_is_refused_in_the_map() -> None:
    images = SERIAL + lines("    directors: [other]")
    found = problem_lines(site(directors=nodes_map("cn001: img-serial"), images=images))
    assert found == [
        "imagespec.yaml:13:7: director 'main': nodes 'cn001' boot 'img-serial', a variant of"
        " image 'img', which director 'main' does not build (its directors: other)"
    ]


# ---------------------------------------------------------------- rendering

STANZA = (
    "# <xCAT data object stanza file>\n"
    "\n"
    "img-serial:\n"
    "    objtype=osimage\n"
    "    addkcmdline=console=ttyS0\n"
    "    imagetype=linux\n"
    "    osarch=x86_64\n"
    "    osname=Linux\n"
    "    osvers=rocky8\n"
    "    pkgdir=/install/rocky8/x86_64\n"
    "    pkglist=/install/p/custom/netboot/rocky/img.pkglist\n"
    "    profile=p\n"
    "    provmethod=netboot\n"
    "    rootimgdir=/install/netboot/rocky8/x86_64/p\n"
    "    synclists=/install/p/custom/netboot/rocky/img.synclist\n"
)


def test_a_variant_stanza_is_the_image_stanza_with_its_attributes_on_top() -> None:
    tree = open_all(site(images=SERIAL)).render("main")
    data = tree.files["p/custom/netboot/rocky/img-serial.stanza"].data
    assert data.decode() == STANZA
    image = tree.files["p/custom/netboot/rocky/img.stanza"].data.decode()
    assert image == STANZA.replace("img-serial:", "img:").replace(
        "    addkcmdline=console=ttyS0\n", ""
    )
    assert tree.osimages == {"img": "img", "img-serial": "img"}


def test_null_in_a_variant_unsets_what_the_image_inherits() -> None:
    profile = lines("attributes: {addkcmdline: quiet, crashkernelsize: 256}")
    images = IMAGES + lines("    variants:", "      loud: {attributes: {addkcmdline: null}}")
    tree = open_all(site(profile, images=images)).render("main")
    image = tree.images["img"]
    loud = image.variants["img-loud"]
    assert image.attributes["addkcmdline"] == "quiet"
    assert "addkcmdline" not in loud.attributes
    assert loud.attributes["crashkernelsize"] == "256"
    assert b"addkcmdline" not in tree.files[loud.stanza_path].data


def test_variants_are_rendered_only_where_their_image_is() -> None:
    images = SERIAL + lines("    directors: [other]")
    view = open_all(site(directors=nodes_map(), images=images))
    assert not [p for p in view.render("main").files if "img-serial" in p]
    assert "o/custom/netboot/rocky/img-serial.stanza" in view.render("other").files


# ---------------------------------------------------------------- digests

PROFILES: dict[str, Any] = {"base": {"packages": ["bash"], "attributes": {"addkcmdline": "quiet"}}}


def images_with(variants: Optional[dict[str, Any]]) -> dict[str, Any]:
    image: dict[str, Any] = {"profile": "base", "distro": "rocky8"}
    if variants is not None:
        image["variants"] = variants
    return {"img-a": image}


def render_with(variants: Optional[dict[str, Any]]) -> Any:
    files = site_files(copy.deepcopy(PROFILES), images=images_with(variants))
    return memory_site(files).render("main")


SERIAL_VARIANT = {"serial": {"attributes": {"addkcmdline": "console=ttyS0"}}}


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, SERIAL_VARIANT),
        (SERIAL_VARIANT, {"serial": {"attributes": {"addkcmdline": "console=ttyS1"}}}),
        (SERIAL_VARIANT, {**SERIAL_VARIANT, "nokdump": {"attributes": {"dump": None}}}),
        (SERIAL_VARIANT, {}),
    ],
    ids=["added", "changed", "another-added", "removed"],
)
def test_a_variant_change_moves_the_define_digest_only(
    before: Optional[dict[str, Any]], after: dict[str, Any]
) -> None:
    old = render_with(before).images["img-a"].digests
    new = render_with(after).images["img-a"].digests
    assert old["build"] == new["build"]
    assert old["pack"] == new["pack"]
    assert old["define"] != new["define"]


def test_without_variants_the_define_digest_is_the_stanza_digest_as_before() -> None:
    tree = render_with(None)
    image = tree.images["img-a"]
    assert image.digests["define"] == digest.sha256(tree.files[image.stanza_path].data)


def test_a_variant_description_is_for_people_and_moves_no_digest() -> None:
    described = {"serial": {**SERIAL_VARIANT["serial"], "description": "serial console\nrack 4"}}
    assert render_with(SERIAL_VARIANT).images["img-a"].digests == (
        render_with(described).images["img-a"].digests
    )


# ---------------------------------------------------------------- diff


def compare_variants(before: Optional[dict[str, Any]], after: Optional[dict[str, Any]]) -> Any:
    old = memory_site(site_files(copy.deepcopy(PROFILES), images=images_with(before)))
    new = memory_site(site_files(copy.deepcopy(PROFILES), images=images_with(after)))
    return compare(old, new, "main", {"imagespec.yaml"}, "a", "b").images["img-a"]


def test_diff_shows_variants_added_removed_and_changed_as_a_define_of_the_image() -> None:
    before = {**SERIAL_VARIANT, "old": {}}
    after = {
        "serial": {"attributes": {"addkcmdline": "console=ttyS1"}},
        "loud": {"attributes": {"addkcmdline": None, "crashkernelsize": 256}},
    }
    change = compare_variants(before, after)
    assert change.as_json() == {
        "status": "changed",
        "actions": ["define"],
        "changes": {
            "variants": {
                "added": ["loud"],
                "removed": ["old"],
                "changed": ["serial"],
                "attributes": {
                    "loud": {
                        "addkcmdline": {"old": "quiet", "new": None},
                        "crashkernelsize": {"old": None, "new": "256"},
                    },
                    "serial": {"addkcmdline": {"old": "console=ttyS0", "new": "console=ttyS1"}},
                },
            }
        },
    }
    assert change_lines(change) == [
        "variants: added loud; removed old; changed serial",
        "variant loud: attribute addkcmdline: quiet -> (unset)",
        "variant loud: attribute crashkernelsize: (unset) -> 256",
        "variant serial: attribute addkcmdline: console=ttyS0 -> console=ttyS1",
    ]


def test_an_image_attribute_its_variants_follow_is_reported_once() -> None:
    old = memory_site(site_files(copy.deepcopy(PROFILES), images=images_with({"same": {}})))
    profiles = copy.deepcopy(PROFILES)
    profiles["base"]["attributes"]["addkcmdline"] = "quiet splash"
    new = memory_site(site_files(profiles, images=images_with({"same": {}})))
    change = compare(old, new, "main", {"profiles/base.yaml"}, "a", "b").images["img-a"]
    assert change.actions == ["define"]
    assert change.changes == {
        "attributes": {"addkcmdline": {"old": "quiet", "new": "quiet splash"}}
    }


def test_a_variant_stanza_is_a_definition_not_a_synced_file_of_the_image() -> None:
    """diff's `sync` is a file a build or boot uses; stanzas are `define` (decisions.md)."""
    assert compare_variants(None, SERIAL_VARIANT).actions == ["define"]
    assert compare_variants(SERIAL_VARIANT, None).actions == ["define"]


# ---------------------------------------------------------------- plan against xCAT's database


def tree_with_serial() -> Any:
    return render_with(SERIAL_VARIANT)


def definitions(tree: Any) -> dict[str, dict[str, str]]:
    found = {}
    for name, image in tree.images.items():
        found[name] = dict(image.attributes)
        found.update({v.name: dict(v.attributes) for v in image.variants.values()})
    return found


def test_a_variant_definition_removed_on_the_director_owes_define_of_its_image() -> None:
    tree = tree_with_serial()
    defs = definitions(tree)
    del defs["img-a-serial"]
    plan = make_plan(
        tree, applied(tree), on_disk(tree), "xcat", COMMIT, observed=Observed(defs, {})
    )
    image = plan.report.images["img-a"]
    assert image.actions == ["define"]
    assert "definition of variant img-a-serial missing on the director" in image.reasons
    assert plan.nodeset == {"img-a": 0}, "its nodes boot an osimage that is gone"


def test_a_variant_attribute_changed_by_hand_is_drift_named_by_the_variant() -> None:
    tree = tree_with_serial()
    defs = definitions(tree)
    defs["img-a-serial"]["addkcmdline"] = "console=tty0"
    nodes = {"img-a": ["cn001"], "img-a-serial": ["cn002", "cn003"], "other": ["x1"]}
    plan = make_plan(
        tree, applied(tree), on_disk(tree), "xcat", COMMIT, observed=Observed(defs, nodes)
    )
    image = plan.report.images["img-a"]
    assert image.actions == ["define"]
    assert (
        "definition of variant img-a-serial changed on the director: addkcmdline" in image.reasons
    )
    assert plan.nodeset == {"img-a": 3}, "the image's node and its variant's two"
    assert plan.as_json()["images"]["img-a"]["nodeset"] == {"owed": True, "nodes": 3}


def test_foreign_attributes_of_a_variant_are_not_drift() -> None:
    tree = tree_with_serial()
    defs = definitions(tree)
    defs["img-a-serial"]["groups"] = "lite"
    plan = make_plan(
        tree, applied(tree), on_disk(tree), "xcat", COMMIT, observed=Observed(defs, {})
    )
    assert plan.report.images["img-a"].actions == []
    assert plan.nodeset == {}


# ---------------------------------------------------------------- state


def test_the_variants_defined_round_trip_through_state_and_bad_names_are_refused() -> None:
    state = State("main", images={"img-a": ImageState(status="ok", variants=["img-a-serial"])})
    again = State.from_json(state.to_json(), "main", "state.json")
    assert again.images["img-a"].variants == ["img-a-serial"]
    doc = json.loads(state.to_json())
    doc["images"]["img-a"]["variants"] = ["-o img-a"]
    with pytest.raises(StateError, match="variants"):
        State.from_json(json.dumps(doc).encode(), "main", "state.json")


def test_a_state_without_variants_reads_and_writes_as_before_them() -> None:
    state = State("main", images={"img-a": ImageState(status="ok")})
    doc = json.loads(state.to_json())
    assert "variants" not in doc["images"]["img-a"], "older imagespecs refuse unknown keys"
    assert State.from_json(json.dumps(doc).encode(), "main", "s").images["img-a"].variants == []


# ---------------------------------------------------------------- show


def test_show_lists_each_variant_with_what_it_sets_and_its_description_as_text() -> None:
    described = {"serial": {**SERIAL_VARIANT["serial"], "description": "rack [/4] only"}}
    variants = {**described, "loud": {"attributes": {"addkcmdline": None}}, "same": {}}
    console = Console(file=io.StringIO(), width=200)
    print_show(console, render_with(variants).images["img-a"])
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "variants (4)" in out
    assert "img-a-serial: rack [/4] only" in out, "free text, never rich markup"
    assert "img-a-serial: addkcmdline=console=ttyS0" in out
    assert "img-a-loud: addkcmdline unset" in out
    assert "img-a-same: the image's attributes" in out
