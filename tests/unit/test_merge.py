"""SPEC §4 merge rules, one test (or table) per rule, on in-memory sites."""

from __future__ import annotations

import copy
from typing import Any, Optional

import pytest

from imagespec.errors import ConfigError, Pos
from imagespec.ops.explain import explain
from imagespec.resolve import Entry, ResolvedImage, SyncItem
from imagespec.site import SiteView
from tests.helpers import BASE_SITE, Files, memory_site, site_files

# Every script a test profile may name, so that check_profiles finds the files.
SCRIPTS = ("s1", "s2", "s3", "10-sel", "20-tune", "30-fstab")
SCRIPT_FILES: Files = {
    **{f"postinstall/{name}": f"#!/bin/sh\necho {name}\n" for name in SCRIPTS},
    **{f"postscripts/{name}": f"#!/bin/sh\necho {name}\n" for name in SCRIPTS},
}
SYNC_FILES: Files = {
    **{f"synclists/etc/{name}": f"{name}\n" for name in ("a", "b", "c", "d", "b2")},
    "synclists/alt/b": "another b\n",
}


def open_profiles(
    profiles: dict[str, Any], images: Optional[dict[str, Any]] = None, **site: Any
) -> SiteView:
    """A site of the given profiles with every script and sync source they may use."""
    return memory_site(
        site_files(profiles, images=images, extra={**SCRIPT_FILES, **SYNC_FILES}, **site)
    )


def values(view: SiteView, profile: str, list_field: str = "packages") -> list[str]:
    return [e.value for e in view.merges[profile].lists[list_field]]


def entry(view: SiteView, profile: str, value: str, list_field: str = "packages") -> Entry:
    found = [e for e in view.merges[profile].lists[list_field] if e.value == value]
    assert len(found) == 1, f"{value!r} occurs {len(found)} times in {list_field}"
    return found[0]


def sync_of(view: SiteView, profile: str) -> list[SyncItem]:
    return view.merges[profile].sync


def resolved(view: SiteView, image: str, director: str = "main") -> ResolvedImage:
    return view.render(director).images[image].resolved


def warning_messages(view: SiteView) -> list[str]:
    return [p.message for p in view.warnings]


def line_of(text: str, needle: str) -> int:
    """1-based line of the only line containing needle."""
    lines = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(lines) == 1, f"{needle!r} on lines {lines}"
    return lines[0]


# ---------------------------------------------------------------- chain


def test_chain_login_inherits_base_and_aux_which_inherits_base() -> None:
    view = open_profiles(
        {
            "base": {"packages": ["bash"]},
            "aux": {"inherits": ["base"]},
            "login": {"inherits": ["base", "aux"]},
        }
    )
    assert view.graph.chains["login"] == ("base", "aux", "login")
    assert view.merges["login"].chain == ("base", "aux", "login")
    assert resolved(view, "img-login").chain == ("base", "aux", "login")


def test_chain_diamond_lists_each_ancestor_once() -> None:
    view = open_profiles(
        {
            "a": {},
            "b": {"inherits": ["a"]},
            "c": {"inherits": ["a"]},
            "d": {"inherits": ["b", "c"]},
        }
    )
    assert view.graph.chains["d"] == ("a", "b", "c", "d")


def test_chain_follows_declared_order_not_names() -> None:
    view = open_profiles(
        {
            "a": {},
            "b": {"inherits": ["a"]},
            "c": {"inherits": ["a"]},
            "d": {"inherits": ["c", "b"]},
        }
    )
    assert view.graph.chains["d"] == ("a", "c", "b", "d")


def test_chain_parent_listed_first_still_comes_after_its_own_parent() -> None:
    view = open_profiles(
        {"z": {}, "m": {"inherits": ["z"]}, "top": {"inherits": ["m", "z"]}},
    )
    assert view.graph.chains["top"] == ("z", "m", "top")


def test_declared_order_decides_which_parent_wins_a_list_tie() -> None:
    profiles: dict[str, Any] = {
        "b": {"packages": ["x", "-y"]},
        "c": {"packages": ["y", "-x"]},
        "bc": {"inherits": ["b", "c"]},
        "cb": {"inherits": ["c", "b"]},
    }
    view = open_profiles(profiles)
    assert values(view, "bc") == ["y"]
    assert values(view, "cb") == ["x"]


def test_inheritance_cycle_is_an_error_printed_as_its_path() -> None:
    with pytest.raises(ConfigError) as caught:
        open_profiles({"gpu": {"inherits": ["ib"]}, "ib": {"inherits": ["gpu"]}})
    assert "inheritance cycle: gpu -> ib -> gpu" in str(caught.value)


def test_unknown_parent_is_an_error_suggesting_the_nearest_name() -> None:
    with pytest.raises(ConfigError) as caught:
        open_profiles({"aux": {}, "login": {"inherits": ["auxx"]}})
    (problem,) = caught.value.problems
    assert problem.pos.path == "profiles/login.yaml"
    assert problem.message == "unknown parent 'auxx'; did you mean 'aux'?"


# ---------------------------------------------------------------- lists

# (list field, three distinct valid entries)
LIST_CASES = [
    ("packages", ("a", "b", "c")),
    ("otherpkgs", ("x/a", "x/b", "x/c")),
    ("erase", ("a", "b", "c")),
    ("exclude", ("./a*", "./b*", "+./b/c*")),
    ("postinstall", ("s1", "s2", "s3")),
    ("postscripts", ("s1", "s2", "s3")),
    ("postbootscripts", ("s1", "s2", "s3")),
]
LIST_IDS = [case[0] for case in LIST_CASES]


@pytest.mark.parametrize(("list_field", "items"), LIST_CASES, ids=LIST_IDS)
def test_list_entries_append_unless_already_present(
    list_field: str, items: tuple[str, str, str]
) -> None:
    a, b, c = items
    view = open_profiles(
        {"base": {list_field: [a, b]}, "child": {"inherits": ["base"], list_field: [c, b, a, c]}}
    )
    assert values(view, "child", list_field) == [a, b, c]
    assert entry(view, "child", b, list_field).origin.level == "base"
    assert entry(view, "child", c, list_field).origin.level == "child"


@pytest.mark.parametrize(("list_field", "items"), LIST_CASES, ids=LIST_IDS)
def test_removal_removes_entry_added_by_an_earlier_level(
    list_field: str, items: tuple[str, str, str]
) -> None:
    a, b, c = items
    view = open_profiles(
        {
            "base": {list_field: [a, b]},
            "mid": {"inherits": ["base"], list_field: [c]},
            "top": {"inherits": ["mid"], list_field: [f"-{a}", f"-{c}"]},
        }
    )
    assert values(view, "top", list_field) == [b]
    assert values(view, "mid", list_field) == [a, b, c]
    assert view.warnings == []


@pytest.mark.parametrize(("list_field", "items"), LIST_CASES, ids=LIST_IDS)
def test_removal_removes_entry_added_earlier_in_the_same_level(
    list_field: str, items: tuple[str, str, str]
) -> None:
    a, b, _ = items
    view = open_profiles({"only": {list_field: [a, b, f"-{a}"]}})
    assert values(view, "only", list_field) == [b]
    assert view.warnings == []


@pytest.mark.parametrize(("list_field", "items"), LIST_CASES, ids=LIST_IDS)
def test_removal_does_not_touch_later_additions(
    list_field: str, items: tuple[str, str, str]
) -> None:
    a, b, _ = items
    view = open_profiles(
        {"base": {list_field: [b]}, "child": {"inherits": ["base"], list_field: [f"-{b}", b, a]}}
    )
    assert values(view, "child", list_field) == [b, a]
    assert entry(view, "child", b, list_field).origin.level == "child"


@pytest.mark.parametrize(("list_field", "items"), LIST_CASES, ids=LIST_IDS)
def test_removed_then_re_added_entry_goes_to_the_end_with_new_provenance(
    list_field: str, items: tuple[str, str, str]
) -> None:
    a, b, c = items
    view = open_profiles(
        {
            "base": {list_field: [a, b]},
            "mid": {"inherits": ["base"], list_field: [f"-{a}", c]},
            "top": {"inherits": ["mid"], list_field: [a]},
        }
    )
    assert values(view, "top", list_field) == [b, c, a]
    assert entry(view, "top", a, list_field).origin.level == "top"
    assert entry(view, "top", a, list_field).origin.pos.path == "profiles/top.yaml"


@pytest.mark.parametrize("list_field", ["postinstall", "postscripts", "postbootscripts"])
def test_script_removal_by_name_removes_entry_with_args(list_field: str) -> None:
    view = open_profiles(
        {
            "base": {list_field: ["10-sel", "20-tune hugepages", "30-fstab"]},
            "child": {"inherits": ["base"], list_field: ["-20-tune"]},
        }
    )
    assert values(view, "child", list_field) == ["10-sel", "30-fstab"]
    assert view.warnings == []


@pytest.mark.parametrize("list_field", ["postinstall", "postscripts", "postbootscripts"])
def test_script_removal_with_args_removes_only_the_exact_entry(list_field: str) -> None:
    view = open_profiles(
        {
            "base": {list_field: ["20-tune hugepages"]},
            "child": {"inherits": ["base"], list_field: ["-20-tune nohugepages"]},
            "exact": {"inherits": ["base"], list_field: ["-20-tune hugepages"]},
        }
    )
    assert values(view, "child", list_field) == ["20-tune hugepages"]
    assert values(view, "exact", list_field) == []
    assert any("'-20-tune nohugepages' removes nothing" in m for m in warning_messages(view))


def test_package_removal_by_prefix_is_not_a_script_name_match() -> None:
    view = open_profiles(
        {
            "base": {"packages": ["kernel", "kernel-devel"]},
            "c": {"inherits": ["base"], "packages": ["-kernel"]},
        }
    )
    assert values(view, "c") == ["kernel-devel"]


def test_exclude_removal_strips_only_the_leading_dash() -> None:
    view = open_profiles(
        {
            "base": {"exclude": ["./usr/share/man*", "./usr/share/doc*", "+./usr/share/doc/bash*"]},
            "login": {"inherits": ["base"], "exclude": ["-./usr/share/man*"]},
        }
    )
    assert values(view, "login", "exclude") == ["./usr/share/doc*", "+./usr/share/doc/bash*"]


def test_exclude_removal_of_a_re_include_keeps_the_exclude() -> None:
    view = open_profiles(
        {
            "base": {"exclude": ["./x*", "+./x"]},
            "child": {"inherits": ["base"], "exclude": ["-+./x"]},
        }
    )
    assert values(view, "child", "exclude") == ["./x*"]
    assert view.warnings == []


@pytest.mark.parametrize(
    ("list_field", "directive"),
    [
        ("packages", "#NEW_INSTALL_LIST#"),
        ("otherpkgs", "#NEW_INSTALL_LIST#"),
        ("packages", "#ENV:LANG=C#"),
    ],
)
def test_directives_stay_in_place_and_are_not_deduplicated(list_field: str, directive: str) -> None:
    view = open_profiles(
        {
            "base": {list_field: ["a", directive, "b"]},
            "child": {"inherits": ["base"], list_field: [directive, "c", "b", directive, "d"]},
        }
    )
    assert values(view, "child", list_field) == [
        "a",
        directive,
        "b",
        directive,
        "c",
        directive,
        "d",
    ]
    levels = [e.origin.level for e in view.merges["child"].lists[list_field]]
    assert levels == ["base", "base", "base", "child", "child", "child", "child"]


# ---------------------------------------------------------------- sync


def _sync(dest: str, src: str) -> dict[str, Any]:
    return {"src": src, "dest": dest}


SYNC_BASE = {"sync": [_sync("/etc/a", "etc/a"), _sync("/etc/b", "etc/b"), _sync("/etc/c", "etc/c")]}


def test_sync_keeps_first_appearance_order_and_replaces_in_place() -> None:
    view = open_profiles(
        {
            "base": SYNC_BASE,
            "child": {
                "inherits": ["base"],
                "sync": [
                    _sync("/etc/d", "etc/d"),
                    {"src": "etc/b2", "dest": "/etc/b", "mode": "append"},
                ],
            },
        }
    )
    items = sync_of(view, "child")
    assert [i.dest for i in items] == ["/etc/a", "/etc/b", "/etc/c", "/etc/d"]
    replaced = items[1]
    assert replaced.sources == ("etc/b2",)
    assert replaced.mode == "append"
    assert replaced.origin.level == "child"
    assert items[0].origin.level == "base"


def test_sync_drop_removes_the_inherited_entry() -> None:
    view = open_profiles(
        {
            "base": SYNC_BASE,
            "child": {"inherits": ["base"], "sync": [{"dest": "/etc/b", "drop": True}]},
        }
    )
    assert [i.dest for i in sync_of(view, "child")] == ["/etc/a", "/etc/c"]
    assert [i.dest for i in sync_of(view, "base")] == ["/etc/a", "/etc/b", "/etc/c"]
    assert view.warnings == []


def test_sync_override_then_drop_removes_it() -> None:
    view = open_profiles(
        {
            "base": SYNC_BASE,
            "mid": {"inherits": ["base"], "sync": [_sync("/etc/b", "etc/b2")]},
            "top": {"inherits": ["mid"], "sync": [{"dest": "/etc/b", "drop": True}]},
        }
    )
    assert [i.dest for i in sync_of(view, "top")] == ["/etc/a", "/etc/c"]


def test_sync_drop_then_re_add_appends_with_new_provenance() -> None:
    view = open_profiles(
        {
            "base": SYNC_BASE,
            "mid": {"inherits": ["base"], "sync": [{"dest": "/etc/a", "drop": True}]},
            "top": {"inherits": ["mid"], "sync": [_sync("/etc/a", "etc/d")]},
        }
    )
    items = sync_of(view, "top")
    assert [i.dest for i in items] == ["/etc/b", "/etc/c", "/etc/a"]
    assert items[-1].sources == ("etc/d",)
    assert items[-1].origin.level == "top"


# ---------------------------------------------------------------- sync keyed by image path


def lines_of(view: SiteView, profile: str) -> list[tuple[tuple[str, ...], str, str]]:
    """(sources, dest, level) of each merged synclist line."""
    return [(i.sources, i.dest, i.origin.level) for i in sync_of(view, profile)]


def written(view: SiteView, profile: str) -> list[tuple[str, str]]:
    """(image path, source) in synclist order: what the image gets."""
    return [(p, s) for i in sync_of(view, profile) for p, s in zip(i.paths, i.sources)]


def synclist_body(view: SiteView, image: str) -> list[str]:
    """The rendered synclist's entry lines, sources relative to synclists/."""
    tree = view.render("main")
    path = tree.images[image].attributes["synclists"].removeprefix("/install/")
    text = tree.files[path].data.decode().replace("/install/p/custom/synclists/", "")
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_two_files_into_one_directory_in_one_profile_are_both_synced() -> None:
    """SPEC §4: a directory dest is keyed by dest + each source's file name, so entries
    into /etc/profile.d/ no longer collapse to the last one."""
    view = open_profiles({"base": {"sync": [_sync("/etc/x/", "etc/a"), _sync("/etc/x/", "etc/b")]}})
    assert written(view, "base") == [("/etc/x/a", "etc/a"), ("/etc/x/b", "etc/b")]
    assert synclist_body(view, "img-base") == ["etc/a -> /etc/x/", "etc/b -> /etc/x/"]


DIR_BASE = {"sync": [{"src": ["etc/a", "etc/b", "etc/c"], "dest": "/d/"}]}


def test_a_later_source_with_the_same_name_replaces_one_path_in_place() -> None:
    view = open_profiles(
        {"base": DIR_BASE, "child": {"inherits": ["base"], "sync": [_sync("/d/", "alt/b")]}}
    )
    assert lines_of(view, "child") == [
        (("etc/a",), "/d/", "base"),
        (("alt/b",), "/d/", "child"),
        (("etc/c",), "/d/", "base"),
    ]
    assert written(view, "child") == [("/d/a", "etc/a"), ("/d/b", "alt/b"), ("/d/c", "etc/c")]
    assert synclist_body(view, "img-child") == [
        "etc/a -> /d/",
        "alt/b -> /d/",
        "etc/c -> /d/",
    ]
    events = [(e.key, e.action, e.value) for e in view.merges["child"].events if e.field == "sync"]
    assert events[-1] == ("/d/b", "replaced", "alt/b")


def test_an_untouched_multi_source_entry_stays_one_line() -> None:
    view = open_profiles(
        {"base": DIR_BASE, "child": {"inherits": ["base"], "sync": [_sync("/etc/x", "etc/d")]}}
    )
    assert lines_of(view, "child") == [
        (("etc/a", "etc/b", "etc/c"), "/d/", "base"),
        (("etc/d",), "/etc/x", "child"),
    ]


def test_a_file_dest_replaces_the_path_a_directory_entry_writes() -> None:
    view = open_profiles(
        {"base": DIR_BASE, "child": {"inherits": ["base"], "sync": [_sync("/d/b", "etc/d")]}}
    )
    assert written(view, "child") == [("/d/a", "etc/a"), ("/d/b", "etc/d"), ("/d/c", "etc/c")]
    assert synclist_body(view, "img-child") == ["etc/a -> /d/", "etc/d -> /d/b", "etc/c -> /d/"]


def test_drop_with_src_removes_those_paths_of_a_directory_entry() -> None:
    view = open_profiles(
        {
            "base": DIR_BASE,
            "child": {
                "inherits": ["base"],
                "sync": [{"src": ["b"], "dest": "/d/", "drop": True}],
            },
        }
    )
    assert lines_of(view, "child") == [(("etc/a", "etc/c"), "/d/", "base")]
    assert view.warnings == []


def test_drop_of_a_directory_without_src_drops_every_path_directly_in_it() -> None:
    base = {
        "sync": [
            *DIR_BASE["sync"],
            _sync("/d/extra", "etc/d"),
            _sync("/d/sub/", "etc/b2"),
            _sync("/e/", "etc/a"),
        ]
    }
    view = open_profiles(
        {"base": base, "child": {"inherits": ["base"], "sync": [{"dest": "/d/", "drop": True}]}}
    )
    assert written(view, "child") == [("/d/sub/b2", "etc/b2"), ("/e/a", "etc/a")]
    dropped = [e.key for e in view.merges["child"].events if e.action == "dropped"]
    assert dropped == ["/d/a", "/d/b", "/d/c", "/d/extra"]


def test_drop_of_paths_that_nothing_writes_is_a_warning() -> None:
    view = open_profiles(
        {
            "base": DIR_BASE,
            "child": {
                "inherits": ["base"],
                "sync": [{"src": ["x", "y"], "dest": "/d/", "drop": True}],
            },
        }
    )
    assert [p.message for p in view.warnings] == [
        "drop of '/d/x', '/d/y' removes nothing: no earlier level of the chain syncs to it"
    ]
    assert written(view, "child") == written(view, "base")


def test_explain_follows_one_path_or_a_whole_directory() -> None:
    view = open_profiles(
        {"base": DIR_BASE, "child": {"inherits": ["base"], "sync": [_sync("/d/", "alt/b")]}}
    )
    image = view.render("main").images["img-child"]
    one = explain(image, "/d/b")
    assert one is not None
    assert [(e.key, e.action, e.value, e.origin.level) for e in one.events] == [
        ("/d/b", "added", "etc/b", "base"),
        ("/d/b", "replaced", "alt/b", "child"),
    ]
    assert one.final == ["synclist: alt/b -> /d/ (from child)"]
    whole = explain(image, "/d/")
    assert whole is not None
    assert [e.key for e in whole.events] == ["/d/a", "/d/b", "/d/c", "/d/b"]
    assert len(whole.final) == 3


def test_two_sources_with_one_file_name_in_one_entry_are_an_error() -> None:
    files = site_files(
        {"base": {"sync": [{"src": ["etc/b", "alt/b"], "dest": "/d/"}]}},
        extra=SYNC_FILES,
    )
    with pytest.raises(ConfigError) as caught:
        memory_site(files)
    assert [str(p) for p in caught.value.problems] == [
        "profiles/base.yaml:2:3: sync: 'etc/b' and 'alt/b' would both be written to /d/b; "
        "keep one of them, or sync one to a path of its own in another entry"
    ]


# ---------------------------------------------------------------- litefile


def test_litefile_later_level_wins() -> None:
    view = open_profiles(
        {
            "base": {"litefile": {"/etc/ntp.conf": "tmpfs", "/var/log/": "persistent"}},
            "child": {"inherits": ["base"], "litefile": {"/etc/ntp.conf": "link,ro"}},
        }
    )
    lite = view.merges["child"].litefile
    assert {path: e.value for path, e in lite.items()} == {
        "/etc/ntp.conf": "link,ro",
        "/var/log/": "persistent",
    }
    assert lite["/etc/ntp.conf"].origin.level == "child"
    assert lite["/var/log/"].origin.level == "base"


def test_litefile_null_removes_the_inherited_row() -> None:
    view = open_profiles(
        {
            "base": {"litefile": {"/etc/ntp.conf": "tmpfs", "/var/log/": "persistent"}},
            "child": {"inherits": ["base"], "litefile": {"/etc/ntp.conf": None}},
        }
    )
    assert set(view.merges["child"].litefile) == {"/var/log/"}
    assert view.warnings == []


# ---------------------------------------------------------------- attributes

# Each attribute is set at every level up to (and including) the one that must win.
LEVELS = ("defaults", "distro", "director", "base", "child", "image")
LADDER = ("usercomment", "addkcmdline", "nodebootif", "otherifce", "crashkernelsize", "dump")
ORIGIN_LEVEL = {
    "defaults": "defaults",
    "distro": "distro rocky8",
    "director": "director main",
    "base": "base",
    "child": "child",
    "image": "image img",
}


def attribute_site(per_level: dict[str, dict[str, Any]]) -> Files:
    """One image `img` (profile child <- base) with attributes set at every precedence level."""
    distros = copy.deepcopy(BASE_SITE["distros"])
    distros["rocky8"]["attributes"] = per_level.get("distro", {})
    directors = copy.deepcopy(BASE_SITE["directors"])
    directors["main"]["distros"] = {"rocky8": {"attributes": per_level.get("director", {})}}
    return site_files(
        {
            "base": {"attributes": per_level.get("base", {})},
            "child": {"inherits": ["base"], "attributes": per_level.get("child", {})},
        },
        images={
            "img": {
                "profile": "child",
                "distro": "rocky8",
                "attributes": per_level.get("image", {}),
            }
        },
        defaults=per_level.get("defaults", {}),
        distros=distros,
        directors=directors,
    )


def test_attribute_precedence_builtin_defaults_distro_director_chain_image() -> None:
    per_level: dict[str, dict[str, Any]] = {level: {} for level in LEVELS}
    for winner, attr in enumerate(LADDER):
        for level in LEVELS[: winner + 1]:
            per_level[level][attr] = f"{attr}@{level}"
    files = attribute_site(per_level)
    attrs = resolved(memory_site(files), "img").attributes
    for winner, attr in enumerate(LADDER):
        level = LEVELS[winner]
        assert attrs[attr].value == f"{attr}@{level}", attr
        assert attrs[attr].origin.level == ORIGIN_LEVEL[level], attr
    # Nothing overrides the built-in defaults here.
    assert attrs["imagetype"].value == "linux"
    assert attrs["imagetype"].origin.level == "builtin"


@pytest.mark.parametrize("level", LEVELS)
def test_attribute_null_unsets_at_any_level(level: str) -> None:
    index = LEVELS.index(level)
    per_level: dict[str, dict[str, Any]] = {name: {} for name in LEVELS}
    for below in LEVELS[:index]:
        per_level[below]["imagetype"] = f"linux-{below}"
        per_level[below]["kernelver"] = f"5.{below}"
    per_level[level].update(imagetype=None, kernelver=None)
    view = memory_site(attribute_site(per_level))
    attrs = resolved(view, "img").attributes
    assert "imagetype" not in attrs
    assert "kernelver" not in attrs
    stanza = view.render("main").files["p/custom/netboot/rocky/img.stanza"].data.decode()
    assert "imagetype=" not in stanza
    assert "kernelver=" not in stanza


@pytest.mark.parametrize("level", LEVELS[:-1])
def test_attribute_unset_then_set_again_by_a_later_level(level: str) -> None:
    index = LEVELS.index(level)
    later = LEVELS[index + 1]
    per_level: dict[str, dict[str, Any]] = {name: {} for name in LEVELS}
    per_level[level]["imagetype"] = None
    per_level[later]["imagetype"] = "linux-again"
    attrs = resolved(memory_site(attribute_site(per_level)), "img").attributes
    assert attrs["imagetype"].value == "linux-again"
    assert attrs["imagetype"].origin.level == ORIGIN_LEVEL[later]


def test_distro_without_otherpkgdir_keeps_the_default_value() -> None:
    """An omitted distro field is not `null`: it must not unset the value from defaults."""
    distros = copy.deepcopy(BASE_SITE["distros"])
    del distros["rocky8"]["otherpkgdir"]
    files = site_files(
        {"p": {}},
        defaults={**BASE_SITE["defaults"], "otherpkgdir": "/install/post/otherpkgs"},
        distros=distros,
    )
    attrs = resolved(memory_site(files), "img-p").attributes
    assert attrs["otherpkgdir"].value == "/install/post/otherpkgs"


def test_integers_in_attributes_are_rendered_as_plain_text() -> None:
    files = site_files({"p": {"attributes": {"crashkernelsize": 256, "dump": "1.0"}}})
    attrs = resolved(memory_site(files), "img-p").attributes
    assert (attrs["crashkernelsize"].value, attrs["dump"].value) == ("256", "1.0")


def test_a_float_attribute_is_an_error_not_a_changed_text() -> None:
    files = site_files({"p": {"attributes": {"dump": 1.10}}})
    with pytest.raises(ConfigError, match=r"profiles/p.yaml:\d+:\d+: .*floating-point.*quote it"):
        memory_site(files)


# ---------------------------------------------------------------- provenance

LOGIN_YAML = """\
# Login nodes.
description: login
inherits: [base]
packages:
  - vim-enhanced
  - "-emacs"
attributes:
  addkcmdline: quiet
sync:
  - {src: etc/a, dest: /etc/motd}
litefile:
  /etc/ntp.conf: tmpfs
"""
BASE_YAML = """\
packages: [emacs, bash]
"""


def test_list_entries_carry_profile_file_line_and_column() -> None:
    view = open_profiles({"base": BASE_YAML, "login": LOGIN_YAML})
    vim = entry(view, "login", "vim-enhanced")
    assert vim.origin.level == "login"
    assert vim.origin.pos == Pos("profiles/login.yaml", 5, 5)
    bash = entry(view, "login", "bash")
    assert bash.origin.level == "base"
    assert bash.origin.pos == Pos("profiles/base.yaml", 1, 19)
    assert values(view, "login") == ["bash", "vim-enhanced"]


def test_removals_are_recorded_with_their_position() -> None:
    view = open_profiles({"base": BASE_YAML, "login": LOGIN_YAML})
    removed = [e for e in view.merges["login"].events if e.action == "removed"]
    assert [(e.key, e.origin.level, e.origin.pos) for e in removed] == [
        ("emacs", "login", Pos("profiles/login.yaml", 6, 5))
    ]


def test_sync_litefile_and_attributes_carry_provenance() -> None:
    view = open_profiles({"base": BASE_YAML, "login": LOGIN_YAML})
    merge = view.merges["login"]
    assert merge.sync[0].origin.pos == Pos("profiles/login.yaml", 10, 5)
    assert merge.litefile["/etc/ntp.conf"].origin.pos == Pos("profiles/login.yaml", 12, 3)
    attr = resolved(view, "img-login").attributes["addkcmdline"]
    assert attr.origin.level == "login"
    assert attr.origin.pos == Pos("profiles/login.yaml", 8, 3)


def test_site_level_attributes_point_into_imagespec_yaml() -> None:
    per_level: dict[str, dict[str, Any]] = {
        "defaults": {"usercomment": "from-defaults"},
        "distro": {"addkcmdline": "from-distro"},
        "director": {"nodebootif": "from-director"},
        "image": {"otherifce": "from-image"},
    }
    files = attribute_site(per_level)
    site_text = str(files["imagespec.yaml"])
    attrs = resolved(memory_site(files), "img").attributes
    for name, value in [
        ("usercomment", "from-defaults"),
        ("addkcmdline", "from-distro"),
        ("nodebootif", "from-director"),
        ("otherifce", "from-image"),
    ]:
        pos = attrs[name].origin.pos
        assert pos.path == "imagespec.yaml"
        assert pos.line == line_of(site_text, value), name


# ---------------------------------------------------------------- rootimgdir and directors


def test_default_rootimgdir_is_install_root_netboot_osvers_osarch_profile() -> None:
    directors = {"main": {"install_root": "/srv/xcat", "prefix": "p", "host": "mn"}}
    view = open_profiles({"compute": {}}, directors=directors)
    image = view.render("main").images["img-compute"]
    assert image.rootimgdir == "/srv/xcat/netboot/rocky8/x86_64/compute"
    assert "rootimgdir=/srv/xcat/netboot/rocky8/x86_64/compute\n" in image_stanza(
        view, "img-compute"
    )


def test_image_attribute_overrides_the_default_rootimgdir() -> None:
    images = {
        "img": {"profile": "p", "distro": "rocky8", "attributes": {"rootimgdir": "/install/x/img"}}
    }
    view = open_profiles({"p": {}}, images=images)
    assert view.render("main").images["img"].rootimgdir == "/install/x/img"


def test_two_images_with_the_same_rootimgdir_on_one_director_is_an_error() -> None:
    images = {
        "img-a": {"profile": "p", "distro": "rocky8"},
        "img-b": {"profile": "p", "distro": "rocky8"},
    }
    view = open_profiles({"p": {}}, images=images)
    with pytest.raises(ConfigError, match="share rootimgdir /install/netboot/rocky8/x86_64/p"):
        view.render("main")


def image_stanza(view: SiteView, image: str, director: str = "main") -> str:
    rendered = view.render(director)
    return rendered.files[rendered.images[image].stanza_path].data.decode()


def two_director_site(override: bool) -> Files:
    directors: dict[str, Any] = {
        "prod": {"host": "prod-mn", "install_root": "/install", "prefix": "x"},
        "test": {"host": "test-mn", "install_root": "/install", "prefix": "x"},
    }
    if override:
        directors["test"]["distros"] = {"rocky8": {"pkgdir": "https://repo.example.org/el8-test/"}}
    return site_files({"compute": {"packages": ["bash"]}}, directors=directors)


def test_director_distro_override_of_pkgdir_changes_only_that_director() -> None:
    plain = memory_site(two_director_site(override=False))
    over = memory_site(two_director_site(override=True))
    prod, test = (
        over.render("prod").images["img-compute"],
        over.render("test").images["img-compute"],
    )
    assert prod.attributes["pkgdir"] == "/install/rocky8/x86_64"
    assert test.attributes["pkgdir"] == "https://repo.example.org/el8-test/"
    assert test.resolved.attributes["pkgdir"].origin.level == "director test"
    assert over.render("prod").files == plain.render("prod").files
    assert prod.digests == plain.render("prod").images["img-compute"].digests
    before = plain.render("test").images["img-compute"].digests
    assert test.digests["build"] != before["build"]
    assert test.digests["define"] != before["define"]
    assert test.digests["pack"] == before["pack"]


# ---------------------------------------------------------------- useless removals


@pytest.mark.parametrize(
    ("child", "message"),
    [
        ({"packages": ["-emacs"]}, "'-emacs' removes nothing"),
        ({"exclude": ["-./opt*"]}, "'-./opt*' removes nothing"),
        ({"postinstall": ["-s2"]}, "'-s2' removes nothing"),
        (
            {"sync": [{"dest": "/etc/nowhere", "drop": True}]},
            "drop of '/etc/nowhere' removes nothing",
        ),
        ({"litefile": {"/etc/nowhere": None}}, "litefile '/etc/nowhere: null' removes nothing"),
    ],
    ids=["packages", "exclude", "postinstall", "sync", "litefile"],
)
def test_removal_that_removes_nothing_is_a_warning_and_strict_error(
    child: dict[str, Any], message: str
) -> None:
    profiles = {
        "base": {"packages": ["bash"], "exclude": ["./usr*"], "postinstall": ["s1"], **SYNC_BASE},
        "child": {"inherits": ["base"], **child},
    }
    files = site_files(profiles, extra={**SCRIPT_FILES, **SYNC_FILES})
    view = memory_site(files)
    (warning,) = view.warnings
    assert warning.severity == "warning"
    assert warning.pos.path == "profiles/child.yaml"
    assert message in warning.message
    with pytest.raises(ConfigError) as caught:
        memory_site(files, strict=True)
    (problem,) = caught.value.problems
    assert problem.pos == warning.pos
    assert message in problem.message


def test_removal_of_an_entry_only_added_later_is_warned() -> None:
    view = open_profiles(
        {"base": {"packages": ["-vim"]}, "child": {"inherits": ["base"], "packages": ["vim"]}}
    )
    assert [p.pos.path for p in view.warnings] == ["profiles/base.yaml"]
    assert values(view, "child") == ["vim"]


def test_removal_useful_only_in_a_descendant_chain_is_not_warned() -> None:
    files = site_files(
        {
            "a": {"packages": ["x"], "exclude": ["./x*"]},
            "b": {"packages": ["-x"], "exclude": ["-./x*"]},
            "c": {"inherits": ["a", "b"]},
        },
        images={"img-b": {"profile": "b", "distro": "rocky8"}},
    )
    view = memory_site(files)
    assert view.warnings == []
    assert values(view, "c") == []
    assert values(view, "b") == []
    memory_site(files, strict=True)  # does not raise
