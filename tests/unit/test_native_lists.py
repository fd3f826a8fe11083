"""The native builder reads rendered xCAT lists the way xCAT's tools do."""

from __future__ import annotations

import pytest

from imagespec.builders.liteimg import liteimg_script, normal_options
from imagespec.render.readers import (
    OtherPass,
    SyncCopy,
    parse_exlist,
    parse_litefile,
    parse_otherpkglist,
    parse_pkglist,
    parse_postinstall,
    parse_synclist_for_pack,
    releasever,
)


def test_pkglist_sections_commas_directories_and_ignored_erases() -> None:
    text = (
        "# comment\nbash,tmux\n\n#ENV:LANG=C#\nsub/vim\n-emacs\n--nano\n#NEW_INSTALL_LIST#\n@core\n"
    )
    assert parse_pkglist(text) == [["bash", "tmux", "vim"], ["@core"]]


def test_pkglist_directives_only_count_at_column_zero() -> None:
    assert parse_pkglist("a\n #NEW_INSTALL_LIST#\nb\n") == [["a", "#NEW_INSTALL_LIST#", "b"]]


def test_otherpkglist_repositories_and_erases_per_section() -> None:
    text = "slurm/slurm\nslurm/slurm-slurmd\nplain\n-old\n#NEW_INSTALL_LIST#\nxcat/xcat-core/xCATsn\n--firewalld\n"
    assert parse_otherpkglist(text) == [
        OtherPass(["old"], {"slurm": ["slurm", "slurm-slurmd"], "": ["plain"]}, []),
        OtherPass([], {"xcat/xcat-core": ["xCATsn"]}, ["firewalld"]),
    ]


def test_exlist_includes_and_inline_comments() -> None:
    text = "# head\n./usr/share/doc*  # docs\n+./usr/share/doc/keep*\n\n./boot*\n"
    assert parse_exlist(text) == (["./usr/share/doc*", "./boot*"], ["./usr/share/doc/keep*"])


def test_synclist_for_pack_skips_noderanges_and_stops_at_the_first_clause() -> None:
    text = (
        "# comment\n/s/motd -> /etc/motd\n/s/a /s/b -> /etc/x/\n/s/issue -> (n1,n2) /etc/issue\n"
        "/s/one -> /etc/dir/ ; \nAPPEND:\n/s/hosts -> /etc/hosts\n/s/late -> /etc/late\n"
    )
    copies = parse_synclist_for_pack(text)
    assert copies == [
        SyncCopy(("/s/motd",), "/etc/motd"),
        SyncCopy(("/s/a", "/s/b"), "/etc/x/"),
        SyncCopy(("/s/one",), "/etc/dir/"),
    ]
    assert [c.dest_is_dir for c in copies] == [False, True, True]


def test_postinstall_attribute() -> None:
    assert parse_postinstall("/p/10-a,/p/20-tune hugepages x,") == [
        ("/p/10-a", []),
        ("/p/20-tune", ["hugepages", "x"]),
    ]


@pytest.mark.parametrize(
    ("osvers", "expected"),
    [("rocky8", "8"), ("rhels8.6.0", "8"), ("centos7", "7"), ("alma9.3", "9")],
)
def test_releasever_is_the_major_version(osvers: str, expected: str) -> None:
    assert releasever(osvers) == expected


def test_litefile_csv_and_options() -> None:
    text = '#image,file,options,comments,disable\n"img","/etc/ssh/","tmpfs",,\n"img","/x","",,\n'
    assert parse_litefile(text) == [("/etc/ssh/", "tmpfs"), ("/x", "")]
    assert normal_options("") == "link"
    assert normal_options("tmpfs,rw") == "link"
    assert normal_options("link,persistent") == "link,persistent"


def test_liteimg_links_are_relative_to_the_entry() -> None:
    script = liteimg_script("/r", [("/var/spool/slurmd/", "link,persistent")], "img")
    assert "ln -sfn ../../.statelite/tmpfs/var/spool/slurmd ./var/spool/slurmd" in script
    assert (
        "ln -sfn ../../../../.default/var/spool/slurmd .statelite/tmpfs/var/spool/slurmd" in script
    )
    assert "img: link,persistent /var/spool/slurmd/" in script
