"""The three digests of SPEC §6: which input moves which digest, on literal values.

The attribute lists are spelled out here from SPEC §6 rather than imported,
so dropping an input from a digest fails a test.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any, Callable, Optional

import pytest

from imagespec import digest
from tests.helpers import BASE_SITE, Files, memory_site, site_files

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SPEC_BUILD_ATTRIBUTES = [
    "pkgdir",
    "otherpkgdir",
    "osvers",
    "osarch",
    "profile",
    "kernelver",
    "netdrivers",
    "driverupdatesrc",
    "environvar",
    "permission",
    "postinstall",
]
SPEC_PACK_ATTRIBUTES = ["provmethod", "rootfstype"]
STANZA_ONLY_ATTRIBUTES = ["addkcmdline", "description", "imagetype", "osname", "synclists"]


# ---------------------------------------------------------------- the functions


def test_sha256_is_prefixed_hex() -> None:
    assert digest.sha256(b"") == f"sha256:{EMPTY_SHA256}"


def test_canonical_json_sorts_keys_drops_whitespace_and_keeps_utf8() -> None:
    assert digest.canonical_json({"b": [1, "é"], "a": {"d": None, "c": True}}) == (
        '{"a":{"c":true,"d":null},"b":[1,"é"]}'.encode()
    )


def test_build_digest_is_sha256_of_its_canonical_document() -> None:
    attributes = {"osvers": "rocky8", "addkcmdline": "ignored"}
    empty_attributes = ",".join(
        f'"{k}":"{"rocky8" if k == "osvers" else ""}"'
        # beyond SPEC §6: rootimgdir, and what rh/genimage also reads (kerneldir, krpmver,
        # nodebootif, otherifce)
        for k in sorted(
            [
                *SPEC_BUILD_ATTRIBUTES,
                "rootimgdir",
                "kerneldir",
                "krpmver",
                "nodebootif",
                "otherifce",
            ]
        )
    )
    script_sha = hashlib.sha256(b"#!/bin/sh\n").hexdigest()
    document = (
        f'{{"attributes":{{{empty_attributes}}},"otherpkglist":"","pkglist":"bash\\n",'
        f'"scripts":{{"10-a":"sha256:{script_sha}"}}}}'
    )
    expected = "sha256:" + hashlib.sha256(document.encode()).hexdigest()
    assert (
        digest.build_digest(
            {"pkglist": "bash\n", "otherpkglist": ""}, {"10-a": b"#!/bin/sh\n"}, attributes
        )
        == expected
    )


def test_define_digest_is_the_stanza_bytes() -> None:
    stanza = b"img:\n    objtype=osimage\n"
    assert digest.define_digest(stanza) == "sha256:" + hashlib.sha256(stanza).hexdigest()


def build_of(attributes: dict[str, str]) -> str:
    return digest.build_digest({"pkglist": "bash\n", "otherpkglist": ""}, {}, attributes)


def pack_of(attributes: dict[str, str]) -> str:
    return digest.pack_digest(
        {"exlist": "", "sync": [], "litefile": ""}, {}, attributes, {"method": "cpio"}
    )


@pytest.mark.parametrize("name", SPEC_BUILD_ATTRIBUTES)
def test_each_build_attribute_moves_the_build_digest_only(name: str) -> None:
    assert build_of({name: "x"}) != build_of({})
    assert pack_of({name: "x"}) == pack_of({})


@pytest.mark.parametrize("name", SPEC_PACK_ATTRIBUTES)
def test_each_pack_attribute_moves_the_pack_digest_only(name: str) -> None:
    assert pack_of({name: "x"}) != pack_of({})
    assert build_of({name: "x"}) == build_of({})


@pytest.mark.parametrize("name", STANZA_ONLY_ATTRIBUTES)
def test_other_attributes_move_neither_build_nor_pack(name: str) -> None:
    assert build_of({name: "x"}) == build_of({})
    assert pack_of({name: "x"}) == pack_of({})


def test_an_absent_attribute_and_an_empty_one_are_the_same() -> None:
    assert build_of({"kernelver": ""}) == build_of({})
    assert pack_of({"rootfstype": ""}) == pack_of({})


def test_script_names_count_for_build_not_only_their_bytes() -> None:
    one = digest.build_digest({"pkglist": "", "otherpkglist": ""}, {"10-a": b"x"}, {})
    assert digest.build_digest({"pkglist": "", "otherpkglist": ""}, {"10-b": b"x"}, {}) != one
    assert digest.build_digest({"pkglist": "", "otherpkglist": ""}, {"10-a": b"y"}, {}) != one


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("exlist", b"./tmp*\n"),
        ("sync", ["/a -> /b"]),
        ("sources", {"etc/motd": (b"hi\n", 0o644)}),
        ("litefile", b"#image,file\n"),
        ("pack_options", {"method": "squashfs"}),
    ],
)
def test_each_pack_input_moves_the_pack_digest(field: str, value: Any) -> None:
    files: dict[str, Any] = {"exlist": "", "sync": [], "litefile": ""}
    inputs: dict[str, Any] = {
        "sources": {},
        "attributes": {},
        "pack_options": {"method": "cpio"},
    }
    before = digest.pack_digest(dict(files), **inputs)
    if field in files:
        files[field] = value.decode() if isinstance(value, bytes) else value
    else:
        inputs[field] = value
    assert digest.pack_digest(files, **inputs) != before


def test_a_sync_source_mode_moves_the_pack_digest() -> None:
    def pack(mode: int) -> str:
        return digest.pack_digest(
            {"exlist": "", "sync": [], "litefile": ""}, {"s": (b"x", mode)}, {}, {}
        )

    assert pack(0o755) != pack(0o644)


# ---------------------------------------------------------------- a rendered image

SCRIPT = "#!/bin/sh\nexit 0\n"
PROFILE: dict[str, Any] = {
    "packages": ["bash"],
    "exclude": ["./usr/share/doc*"],
    "sync": [
        {"src": "etc/motd", "dest": "/etc/motd"},
        {"src": "etc/issue", "dest": "/etc/issue", "nodes": "n1"},
        {"src": "etc/hosts.site", "dest": "/etc/hosts", "mode": "append"},
    ],
    "postinstall": ["10-a"],
    "postscripts": ["50-site"],
}
FILES: Files = {
    "synclists/etc/motd": "Welcome\n",
    "synclists/etc/issue": "Issue\n",
    "synclists/etc/hosts.site": "10.0.0.1 head\n",
    "postinstall/10-a": SCRIPT,
    "postscripts/50-site": SCRIPT,
}
Edit = Callable[[dict[str, Any], dict[str, Any], Files], None]


def image_attribute(name: str, value: str) -> Edit:
    def edit(site: dict[str, Any], profile: dict[str, Any], files: Files) -> None:
        site["images"]["img"]["attributes"] = {name: value}

    return edit


def profile_field(name: str, value: Any) -> Edit:
    def edit(site: dict[str, Any], profile: dict[str, Any], files: Files) -> None:
        profile[name] = value

    return edit


def file_content(path: str, text: str) -> Edit:
    def edit(site: dict[str, Any], profile: dict[str, Any], files: Files) -> None:
        assert path in files
        files[path] = text

    return edit


def pack_method(site: dict[str, Any], profile: dict[str, Any], files: Files) -> None:
    site["directors"]["main"]["build"] = {"method": "squashfs"}


def distro_pkgdir(site: dict[str, Any], profile: dict[str, Any], files: Files) -> None:
    site["distros"]["rocky8"]["pkgdir"] = "/install/rocky8.10/x86_64"


def freeze(site: dict[str, Any], profile: dict[str, Any], files: Files) -> None:
    site["images"]["img"]["frozen"] = True


RENDER_CASES: list[tuple[str, Edit, set[str]]] = [
    ("package", profile_field("packages", ["bash", "vim"]), {"build"}),
    ("otherpkg", profile_field("otherpkgs", ["hpc/app"]), {"build", "define"}),
    ("erase", profile_field("erase", ["firewalld"]), {"build", "define"}),
    ("postinstall script", file_content("postinstall/10-a", "#!/bin/sh\n"), {"build"}),
    ("postinstall args", profile_field("postinstall", ["10-a fast"]), {"build", "define"}),
    ("kernelver", image_attribute("kernelver", "5.14.0"), {"build", "define"}),
    ("environvar", image_attribute("environvar", "TZ=UTC"), {"build", "define"}),
    ("distro pkgdir", distro_pkgdir, {"build", "define"}),
    ("exclude", profile_field("exclude", ["./tmp*"]), {"pack"}),
    ("plain sync source", file_content("synclists/etc/motd", "Bye\n"), {"pack"}),
    ("rootfstype", image_attribute("rootfstype", "squashfs"), {"pack", "define"}),
    ("pack method", pack_method, {"pack"}),
    ("addkcmdline", image_attribute("addkcmdline", "quiet"), {"define"}),
    ("postscript", file_content("postscripts/50-site", "#!/bin/sh\necho\n"), set()),
    ("sync source for some nodes", file_content("synclists/etc/issue", "Other\n"), set()),
    ("appended sync source", file_content("synclists/etc/hosts.site", "10.0.0.2 x\n"), set()),
    ("frozen", freeze, set()),
]


def render_image(edit: Optional[Edit] = None) -> Any:
    site = copy.deepcopy(BASE_SITE)
    site["images"] = {"img": {"profile": "p", "distro": "rocky8"}}
    profile, files = copy.deepcopy(PROFILE), dict(FILES)
    if edit is not None:
        edit(site, profile, files)
    overrides = {k: v for k, v in site.items() if k != "images"}
    tree = memory_site(
        site_files({"p": profile}, images=site["images"], extra=files, **overrides)
    ).render("main")
    return tree.images["img"]


def render_digests(edit: Optional[Edit] = None) -> dict[str, str]:
    return dict(render_image(edit).digests)


@pytest.mark.parametrize(
    ("edit", "moved"), [c[1:] for c in RENDER_CASES], ids=[c[0] for c in RENDER_CASES]
)
def test_an_edit_moves_exactly_the_digests_of_the_stages_that_read_it(
    edit: Edit, moved: set[str]
) -> None:
    before, after = render_digests(), render_digests(edit)
    assert {k for k in ("build", "pack", "define") if before[k] != after[k]} == moved


# ---------------------------------------------------------------- package order


UNSORTED = ["vim", "bash", "#NEW_INSTALL_LIST#", "zsh", "acl"]
# What imagespec 0.1.0 (before package order stopped counting) recorded for these
# lists, computed with that version: a director it built for keeps them in state.json.
BUILD_BEFORE_0_1_0 = {
    "unsorted": "sha256:faa5181cbd6c0f053f50cbebe4f66681791adb1355596f174270fe6bc9707682",
    "sorted": "sha256:cd84a05139a325d55dee096f3325c89aa54687bbaef1b162991fe28760cc092d",
}


def test_the_order_within_a_transaction_runs_is_sorted_around_directives() -> None:
    from imagespec.render.formats import order_free

    text = b"vim\nbash\n#ENV:A=1#\nzsh\nacl\n#NEW_INSTALL_LIST#\n-old\nb/y\na/x\n--gone\n"
    assert order_free(text) == (
        "bash\nvim\n#ENV:A=1#\nacl\nzsh\n#NEW_INSTALL_LIST#\n-old\na/x\nb/y\n--gone\n"
    )
    assert order_free(b"") == ""


def test_reordering_packages_within_a_transaction_keeps_the_build_digest() -> None:
    shuffled = render_image(profile_field("packages", ["zsh", "acl", "bash", "vim"]))
    ordered = render_image(profile_field("packages", ["acl", "bash", "vim", "zsh"]))
    assert shuffled.digests == ordered.digests
    others = render_image(profile_field("otherpkgs", ["hpc/b", "hpc/a"]))
    assert others.digests == render_image(profile_field("otherpkgs", ["hpc/a", "hpc/b"])).digests


def test_moving_a_package_across_a_transaction_or_a_directive_moves_the_build_digest() -> None:
    one = render_image(profile_field("packages", ["vim", "#NEW_INSTALL_LIST#", "bash"]))
    two = render_image(profile_field("packages", ["bash", "#NEW_INSTALL_LIST#", "vim"]))
    assert one.digests["build"] != two.digests["build"]
    env_a = render_image(profile_field("packages", ["vim", "#ENV:A=1#", "bash"]))
    env_b = render_image(profile_field("packages", ["#ENV:A=1#", "vim", "bash"]))
    assert env_a.digests["build"] != env_b.digests["build"]


def test_the_legacy_build_digest_is_what_earlier_versions_recorded() -> None:
    unsorted = render_image(profile_field("packages", UNSORTED))
    assert unsorted.legacy_digests == {"build": BUILD_BEFORE_0_1_0["unsorted"]}
    assert unsorted.digests["build"] != BUILD_BEFORE_0_1_0["unsorted"]
    ordered = render_image(
        profile_field("packages", ["bash", "vim", "#NEW_INSTALL_LIST#", "acl", "zsh"])
    )
    # a list already in order keeps its digest: nothing to accept besides it
    assert ordered.digests["build"] == unsorted.digests["build"]
    assert render_image().digests["build"] == BUILD_BEFORE_0_1_0["sorted"]
    assert render_image().legacy_digests == {}
