"""import: stanzas, list reading with #INCLUDE:, dispatchers, synclists and meaning, in memory."""

from __future__ import annotations

import re
from typing import Optional

import pytest

from imagespec.importer import dispatch
from imagespec.importer.factor import duplicated_entries
from imagespec.importer.lists import read_list
from imagespec.importer.meaning import differences, meaning, stage_differences
from imagespec.importer.stanzas import ImportInputError, parse_litefile_rows, parse_osimages
from imagespec.render.readers import SyncLine, parse_synclist


class Files:
    """DirectorFiles over a dict {absolute path: bytes}; modes default to 0644."""

    def __init__(self, files: dict[str, str], modes: Optional[dict[str, int]] = None):
        self.files = {k: v.encode() for k, v in files.items()}
        self.modes = modes or {}
        self.install_root = "/install"

    def readable(self, path: str) -> bool:
        return path.startswith("/install/")

    def read(self, path: str) -> Optional[bytes]:
        return self.files.get(path)

    def mode(self, path: str) -> Optional[int]:
        return self.modes.get(path, 0o644) if path in self.files else None

    def is_dir(self, path: str) -> bool:
        return any(k.startswith(path + "/") for k in self.files)

    def listdir(self, path: str) -> list[str]:
        return sorted(
            {k[len(path) + 1 :].split("/")[0] for k in self.files if k.startswith(path + "/")}
        )

    def readlink(self, path: str) -> Optional[str]:
        return None


def test_stanzas_keep_osimages_and_refuse_hostile_names() -> None:
    text = "# <xCAT data object stanza file>\n\nimg:\n    objtype=osimage\n    profile=compute\n\nn1:\n    objtype=node\n"
    images = parse_osimages(text, "s")
    assert list(images) == ["img"] and images["img"].attributes == {"profile": "compute"}
    with pytest.raises(ImportInputError, match=r"s:1: '\.\./x' is not an xCAT object name"):
        parse_osimages("../x:\n    objtype=osimage\n", "s")
    with pytest.raises(ImportInputError, match="s:3: expected"):
        parse_osimages("img:\n    profile=a\nb\n", "s")


def test_litefile_rows_keep_blank_options_and_disabled_flags() -> None:
    rows = parse_litefile_rows(
        '#image,file,options,comments,disable\n"img","/etc/a",,,\n"ALL","/var/","tmpfs",,"1"\n', "l"
    )
    assert [(r.image, r.file, r.options, r.disabled) for r in rows] == [
        ("img", "/etc/a", "", False),
        ("ALL", "/var/", "tmpfs", True),
    ]


def test_includes_resolve_against_the_top_level_file_also_when_nested() -> None:
    # imgutils.pm:149-158: include_file($1, $idir) with $idir = dirname(top-level file)
    files = Files(
        {
            "/install/l/top.pkglist": "a\n#INCLUDE:sub/one.pkglist#\n# comment\n\nz\n",
            "/install/l/sub/one.pkglist": "b\n#INCLUDE:sub/two.pkglist#\n",
            "/install/l/sub/two.pkglist": "c\n",
        }
    )
    read = read_list(files, "/install/l/top.pkglist")
    assert [(line.text, line.file.rsplit("/", 1)[1]) for line in read.lines] == [
        ("a", "top.pkglist"),
        ("b", "one.pkglist"),
        ("c", "two.pkglist"),
        ("z", "top.pkglist"),
    ]
    assert read.lines[2].included_from == ("/install/l/top.pkglist", "/install/l/sub/one.pkglist")


def test_include_cycle_is_an_error_with_the_chain() -> None:
    files = Files(
        {
            "/install/a.pkglist": "#INCLUDE:b.pkglist#\n",
            "/install/b.pkglist": "#INCLUDE:a.pkglist#\n",
        }
    )
    with pytest.raises(
        ImportInputError,
        match=re.escape(
            "include cycle /install/a.pkglist -> /install/b.pkglist -> /install/a.pkglist"
        ),
    ):
        read_list(files, "/install/a.pkglist")


def test_synclist_reader_reads_plain_noderange_and_clause_lines() -> None:
    text = (
        "# c\n/a b -> /etc/x/\n/c -> (n[1-2]) /etc/c ;\nEXECUTEALWAYS:\n/s\nAPPEND:\n/d -> /etc/d\n"
    )
    assert parse_synclist(text) == [
        SyncLine(("/a", "b"), "/etc/x/"),
        SyncLine(("/c",), "/etc/c", "", "n[1-2]"),
        SyncLine(("/s",), "", "EXECUTEALWAYS"),
        SyncLine(("/d",), "/etc/d", "APPEND"),
    ]


DISPATCHER = '#!/bin/sh\nfor s in "$(dirname "$0")"/p.d/*; do\n  [ -x "$s" ] || continue\n  "$s" "$@" || exit 1\ndone\n'


def test_dispatcher_is_recognised_and_other_scripts_are_not() -> None:
    assert dispatch.dispatcher_dir("/install/pi/p", DISPATCHER.encode()) == "/install/pi/p.d"
    absolute = DISPATCHER.replace('"$(dirname "$0")"/p.d', "/install/pi/q.d")
    assert dispatch.dispatcher_dir("/install/pi/p", absolute.encode()) == "/install/pi/q.d"
    assert dispatch.dispatcher_dir("/install/pi/p", b"#!/bin/sh\nrun-parts /x\n") is None


def _image(**extra: str) -> dict[str, str]:
    attrs = {"profile": "p", "osvers": "rocky8", "osarch": "x86_64", "provmethod": "netboot"}
    attrs.update(extra)
    return attrs


def test_meaning_expands_a_dispatcher_into_the_scripts_it_runs() -> None:
    files = Files(
        {
            "/install/pi/p": DISPATCHER,
            "/install/pi/p.d/10-a": "A",
            "/install/pi/p.d/20-b": "B",
            "/install/pi/a": "A",
            "/install/pi/b": "B",
        },
        {"/install/pi/p.d/10-a": 0o755, "/install/pi/p.d/20-b": 0o755},
    )
    one = meaning(_image(postinstall="/install/pi/p x"), files, [])
    two = meaning(_image(postinstall="/install/pi/a x,/install/pi/b x"), files, [])
    assert one == two
    other = meaning(_image(postinstall="/install/pi/b x,/install/pi/a x"), files, [])
    assert differences(one, other) and "postinstall chain" in differences(one, other)[0]


def test_meaning_compares_package_sets_per_transaction_and_erase_lists() -> None:
    files = Files(
        {
            "/install/a.pkglist": "b\na\n#NEW_INSTALL_LIST#\nc\n",
            "/install/b.pkglist": "a,b\n#NEW_INSTALL_LIST#\nc\n",
            "/install/o1": "-x\ndir/y\n--z\n",
            "/install/o2": "--z\n-x\ndir/y\n",
        }
    )
    a = meaning(_image(pkglist="/install/a.pkglist", otherpkglist="/install/o1"), files, [])
    b = meaning(_image(pkglist="/install/b.pkglist", otherpkglist="/install/o2"), files, [])
    assert a == b
    c = meaning(
        _image(pkglist="/install/a.pkglist", otherpkglist="/install/o1", rootfstype="ramdisk"),
        files,
        [],
    )
    assert differences(a, c) == ["attribute rootfstype: was (unset), now 'ramdisk'"]


def test_meaning_litefile_blank_is_tmpfs_rw_and_counts_only_for_statelite() -> None:
    files = Files({})
    lite = _image(provmethod="statelite")
    assert meaning(lite, files, [("/etc/a", "")]) == meaning(lite, files, [("/etc/a", "tmpfs,rw")])
    assert meaning(_image(), files, [("/etc/a", "")]).litefile == ()


def test_sync_sources_are_compared_by_content_or_director_path() -> None:
    files = Files(
        {
            "/install/s1": "x",
            "/install/s2": "x",
            "/install/s3": "y",
            "/install/l1": "/install/s1 -> /etc/m\n/etc/hosts -> /etc/hosts\n",
            "/install/l2": "/install/s2 -> /etc/m\n/etc/hosts -> /etc/hosts\n",
            "/install/l3": "/install/s3 -> /etc/m\n",
        }
    )
    one, two, three = (meaning(_image(synclists=f"/install/l{n}"), files, []) for n in (1, 2, 3))
    assert one == two
    assert any("lost" in d for d in differences(one, three))


def test_duplicated_entries_flags_entries_two_profiles_hold() -> None:
    profiles = {
        "a": [("packages", "x"), ("postinstall", "s")],
        "b": [("packages", "x"), ("postinstall", "s")],
        "c": [("packages", "#NEW_INSTALL_LIST#")],
        "d": [("packages", "#NEW_INSTALL_LIST#")],
    }
    assert duplicated_entries(profiles) == ["packages 'x' in a, b"]


def test_stage_differences_put_each_difference_where_it_costs() -> None:
    """adopt records a stage only when nothing it reads differs (digest.py names them)."""
    files = Files(
        {
            "/install/p1": "bash\n",
            "/install/p2": "bash\nvim\n",
            "/install/e1": "./usr/share/doc*\n",
            "/install/s1": "/install/src -> /etc/motd\n/install/src -> (login01) /etc/issue\n",
            "/install/s2": "/install/src -> /etc/motd\n/install/src -> (login02) /etc/issue\n",
            "/install/src": "hello\n",
        }
    )
    old = meaning(_image(pkglist="/install/p1", synclists="/install/s1"), files, [])
    same = stage_differences(old, old)
    assert same == {"build": [], "pack": [], "define": []}
    built = meaning(_image(pkglist="/install/p2", synclists="/install/s1"), files, [])
    assert [bool(v) for v in stage_differences(old, built).values()] == [True, False, False]
    packed = meaning(
        _image(pkglist="/install/p1", synclists="/install/s1", exlist="/install/e1"), files, []
    )
    assert [bool(v) for v in stage_differences(old, packed).values()] == [False, True, False]
    # a node-range entry is copied at boot (syncfiles), never into the packed image
    booted = meaning(_image(pkglist="/install/p1", synclists="/install/s2"), files, [])
    assert [bool(v) for v in stage_differences(old, booted).values()] == [False, False, True]
    kernel = meaning(
        _image(pkglist="/install/p1", synclists="/install/s1", kernelver="5.14"), files, []
    )
    assert stage_differences(old, kernel)["build"] == [
        "attribute kernelver: was (unset), now '5.14'"
    ]
