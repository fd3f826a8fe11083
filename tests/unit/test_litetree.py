"""The litefile rows liteimg applies, merged as xCAT's ilitefile merges them.

xCAT-server/lib/xcat/plugins/litetree.pm (xcat-core HEAD): syncmount looks the
rows up for the osimage's whole `groups` value, then image '', then ALL, then the
image itself (lines 341-358); mergeArrays keeps the last row per file, gives an
empty option "tmpfs,rw", forces a listed /etc/mtab to "tmpfs,rw" and adds
/etc/mtab as "link" when no row lists it (lines 377-417).
"""

from __future__ import annotations

from imagespec.litetree import LiteRow, effective_rows, parse_table

TABLE = (
    "#image,file,options,comments,disable\n"
    '"ALL","/var/log/","persistent",,\n'
    '"","/etc/ntp.conf",,,\n'
    '"gpu","/etc/nvidia/","tmpfs",,\n'
    '"gpu,ib","/etc/both/","tmpfs",,\n'
    '"other","/etc/other","tmpfs",,\n'
    '"ALL","/etc/disabled","tmpfs",,"1"\n'
    '"img","/etc/old","tmpfs",,\n'
)


def rows_of(found: list[LiteRow]) -> dict[str, tuple[str, str]]:
    return {r.file: (r.options, r.source) for r in found}


def test_table_rows_of_every_image_kind_and_disabled_rows_skipped() -> None:
    table = parse_table(TABLE)
    assert [(r.image, r.file) for r in table] == [
        ("ALL", "/var/log/"),
        ("", "/etc/ntp.conf"),
        ("gpu", "/etc/nvidia/"),
        ("gpu,ib", "/etc/both/"),
        ("other", "/etc/other"),
        ("img", "/etc/old"),
    ]


def test_group_empty_and_all_rows_join_the_profile_rows_and_mtab_is_added() -> None:
    found = rows_of(effective_rows("img", {"/etc/ssh/": "tmpfs"}, parse_table(TABLE), "gpu"))
    assert found["/etc/ssh/"] == ("tmpfs", "profile")
    assert found["/var/log/"][0] == "persistent"
    assert "image=ALL" in found["/var/log/"][1]
    assert found["/etc/ntp.conf"][0] == "tmpfs,rw"  # an empty option
    assert found["/etc/nvidia/"][0] == "tmpfs"
    assert found["/etc/mtab"] == ("link", "added by xCAT on Linux")
    assert "/etc/other" not in found and "/etc/disabled" not in found
    # apply replaces the image's own rows with the rendered ones: the old row is gone
    assert "/etc/old" not in found


def test_groups_are_looked_up_as_one_value_not_split() -> None:
    found = rows_of(effective_rows("img", {}, parse_table(TABLE), "gpu,ib"))
    assert "/etc/both/" in found
    assert "/etc/nvidia/" not in found


def test_the_profile_wins_over_director_rows_and_a_listed_mtab_is_forced_to_tmpfs_rw() -> None:
    rendered = {"/var/log/": "tmpfs", "/etc/mtab": "link"}
    found = rows_of(effective_rows("img", rendered, parse_table(TABLE), None))
    assert found["/var/log/"] == ("tmpfs", "profile")
    assert found["/etc/mtab"][0] == "tmpfs,rw"


def test_an_unreadable_table_leaves_the_profile_rows_and_mtab() -> None:
    found = rows_of(effective_rows("img", {"/etc/ssh/": "tmpfs"}, None, None))
    assert sorted(found) == ["/etc/mtab", "/etc/ssh/"]
