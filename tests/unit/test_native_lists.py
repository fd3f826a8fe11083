"""The native builder reads rendered xCAT lists the way xCAT's tools do."""

from __future__ import annotations

import re
import subprocess
from typing import Optional

import pytest

from imagespec.builders.genimage_rh import (
    UNAME_MARK,
    fstab_text,
    generic_post_script,
    pin_kernel,
    restore_uname_script,
    uname_wrapper,
    uses_systemd,
)
from imagespec.builders.liteimg import liteimg_script, normal_options
from imagespec.render.readers import (
    OtherPass,
    PkgPass,
    SyncCopy,
    el_major,
    parse_environvar,
    parse_exlist,
    parse_litefile,
    parse_otherpkglist,
    parse_pkglist,
    parse_postinstall,
    parse_synclist_for_pack,
    pkglist_passes,
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


def test_env_directives_belong_to_their_own_section() -> None:
    """imgutils.pm get_package_names (line 174) keeps #ENV: pairs per #NEW_INSTALL_LIST# pass."""
    text = "#ENV:A=1#\ncore\n#NEW_INSTALL_LIST#\ntool\n#ENV:B=x:y#\n #ENV:C=3#\n"
    assert pkglist_passes(text) == [
        PkgPass(["core"], ["A=1"]),
        PkgPass(["tool", "#ENV:C=3#"], ["B=x:y"]),
    ], "only at column 0, as the other directives"
    other = parse_otherpkglist("#ENV:D=4#\nhpc/app\n-old\n")
    assert other == [OtherPass(["old"], {"hpc": ["app"]}, [], ["D=4"])]


def test_environvar_is_split_as_genimage_splits_it() -> None:
    """rh/genimage lines 438-442: split on ',' then '=', first two fields, trimmed."""
    assert parse_environvar("A=1, B = two ,C=x=y,=nameless,D") == [
        ("A", "1"),
        ("B", "two"),
        ("C", "x"),
        ("D", ""),
    ]


@pytest.mark.parametrize(
    ("osvers", "major"),
    [
        ("rocky8", 8),
        ("rhels8.6.0", 8),
        ("rhel9", 9),
        ("centos7", 7),
        ("alma9.3", 9),
        ("almalinux10", 10),
        ("ol8.9", 8),
        ("sles15", None),
        ("fedora40", None),
    ],
)
def test_el_major_is_genimages_el_major_version(osvers: str, major: Optional[int]) -> None:
    """rh/genimage el_major_version (lines 95-105) decides module_platform_id (line 121)."""
    assert el_major(osvers) == major


def test_kernel_entries_are_pinned_to_the_version() -> None:
    """rh/genimage line 464: kernel and its -headers, -devel, -bootwrapper, -tools only."""
    names = ["core", "kernel", "kernel-devel", "kernel-tools", "kernel-modules-extra", "kernelx"]
    assert pin_kernel(names, "4.18.0-477.el8.x86_64") == (
        [
            "core",
            "kernel-4.18.0-477.el8.x86_64",
            "kernel-devel-4.18.0-477.el8.x86_64",
            "kernel-tools-4.18.0-477.el8.x86_64",
            "kernel-modules-extra",
            "kernelx",
        ],
        [
            "kernel-4.18.0-477.el8.x86_64",
            "kernel-devel-4.18.0-477.el8.x86_64",
            "kernel-tools-4.18.0-477.el8.x86_64",
        ],
    )
    assert pin_kernel(["kernel"], "") == (["kernel"], [])


def test_fstab_has_tmp_on_tmpfs_only_without_systemd() -> None:
    """rh/genimage generic_post (lines 2114-2131) and using_systemd (2074-2107)."""
    systemd = [line.split() for line in fstab_text("compute", "x86_64", "rocky8").splitlines()]
    assert [f[1] for f in systemd] == ["/dev/pts", "/dev/shm", "/proc", "/sys", "/"]
    assert systemd[-1] == ["compute_x86_64", "/", "tmpfs", "rw", "0", "1"]
    old = [line.split()[1] for line in fstab_text("compute", "x86_64", "rhels6.5").splitlines()]
    assert old == ["/dev/pts", "/dev/shm", "/proc", "/sys", "/tmp", "/var/tmp", "/"]
    assert uses_systemd("centos7") and not uses_systemd("centos6") and uses_systemd("ol8")


@pytest.mark.parametrize(
    ("args", "output"),
    [
        (["-r"], "5.14.0-1.el9.x86_64\n"),
        (["--kernel-release"], "5.14.0-1.el9.x86_64\n"),
        (["-m"], "aarch64\n"),
        ([], "Linux\n"),
        (["-s"], "Linux\n"),
    ],
)
def test_uname_wrapper_answers_for_the_image(args: list[str], output: str) -> None:
    """rh/genimage use_hackuname (lines 2547-2592): -m and -r are the image's."""
    script = uname_wrapper("aarch64", "5.14.0-1.el9.x86_64")
    run = subprocess.run(["sh", "-s", "--", *args], input=script, capture_output=True, text=True)
    assert (run.returncode, run.stdout) == (0, output)


def test_uname_wrapper_without_a_kernel_asks_the_real_uname() -> None:
    script = uname_wrapper("x86_64", "")
    assert 'exec /bin/uname-binary "$@" ;;\n  -s' in script
    assert UNAME_MARK in script and restore_uname_script("/r").count(UNAME_MARK) == 1


def test_interface_names_are_checked_before_they_become_file_names() -> None:
    with pytest.raises(ValueError, match=re.escape("'../x' is not a network interface name")):
        generic_post_script("/r", "p", "x86_64", "rocky8", "eth0", "ib0,../x")
    script = generic_post_script("/r", "p", "s390x", "rocky8", "eth0", "")
    assert "ifcfg-eth0" in script and "securetty" not in script
