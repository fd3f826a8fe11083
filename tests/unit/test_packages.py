"""rpm's version order (rpmvercmp) and what changed between two package manifests."""

from __future__ import annotations

import pytest

from imagespec.packages import (
    ManifestError,
    Package,
    compare_packages,
    manifest_bytes,
    parse_manifest,
    parse_query,
    rpmvercmp,
    spec_matches,
    unmatched_specs,
)

# rpm's own cases (tests/rpmvercmp.at in rpm 4.18): a, b, rpmvercmp(a, b); the last six
# hold Greek letters, which are not ASCII letters and so only separate segments
RPM_CASES = """
1.0 1.0 0
1.0 2.0 -1
2.0 1.0 1
2.0.1 2.0.1 0
2.0 2.0.1 -1
2.0.1 2.0 1
2.0.1a 2.0.1a 0
2.0.1a 2.0.1 1
2.0.1 2.0.1a -1
5.5p1 5.5p1 0
5.5p1 5.5p2 -1
5.5p2 5.5p1 1
5.5p10 5.5p10 0
5.5p1 5.5p10 -1
5.5p10 5.5p1 1
10xyz 10.1xyz -1
10.1xyz 10xyz 1
xyz10 xyz10 0
xyz10 xyz10.1 -1
xyz10.1 xyz10 1
xyz.4 xyz.4 0
xyz.4 8 -1
8 xyz.4 1
xyz.4 2 -1
2 xyz.4 1
5.5p2 5.6p1 -1
5.6p1 5.5p2 1
5.6p1 6.5p1 -1
6.5p1 5.6p1 1
6.0.rc1 6.0 1
6.0 6.0.rc1 -1
10b2 10a1 1
10a2 10b2 -1
1.0aa 1.0aa 0
1.0a 1.0aa -1
1.0aa 1.0a 1
10.0001 10.0001 0
10.0001 10.1 0
10.1 10.0001 0
10.0001 10.0039 -1
10.0039 10.0001 1
4.999.9 5.0 -1
5.0 4.999.9 1
20101121 20101121 0
20101121 20101122 -1
20101122 20101121 1
2_0 2_0 0
2.0 2_0 0
2_0 2.0 0
a a 0
a+ a+ 0
a+ a_ 0
a_ a+ 0
+a +a 0
+a _a 0
_a +a 0
+_ +_ 0
_+ +_ 0
_+ _+ 0
+ _ 0
_ + 0
1.0~rc1 1.0~rc1 0
1.0~rc1 1.0 -1
1.0 1.0~rc1 1
1.0~rc1 1.0~rc2 -1
1.0~rc2 1.0~rc1 1
1.0~rc1~git123 1.0~rc1~git123 0
1.0~rc1~git123 1.0~rc1 -1
1.0~rc1 1.0~rc1~git123 1
1.0^ 1.0^ 0
1.0^ 1.0 1
1.0 1.0^ -1
1.0^git1 1.0^git1 0
1.0^git1 1.0 1
1.0 1.0^git1 -1
1.0^git1 1.0^git2 -1
1.0^git2 1.0^git1 1
1.0^git1 1.01 -1
1.01 1.0^git1 1
1.0^20160101 1.0^20160101 0
1.0^20160101 1.0.1 -1
1.0.1 1.0^20160101 1
1.0^20160101^git1 1.0^20160101^git1 0
1.0^20160102 1.0^20160101^git1 1
1.0^20160101^git1 1.0^20160102 -1
1.0~rc1^git1 1.0~rc1^git1 0
1.0~rc1^git1 1.0~rc1 1
1.0~rc1 1.0~rc1^git1 -1
1.0^git1~pre 1.0^git1~pre 0
1.0^git1 1.0^git1~pre 1
1.0^git1~pre 1.0^git1 -1
1b.fc17 1b.fc17 0
1b.fc17 1.fc17 -1
1.fc17 1b.fc17 1
1g.fc17 1g.fc17 0
1g.fc17 1.fc17 1
1.fc17 1g.fc17 -1
1.1.\u03b1 1.1.\u03b1 0
1.1.\u03b1 1.1.\u03b2 0
1.1.\u03b2 1.1.\u03b1 0
1.1.\u03b1\u03b1 1.1.\u03b1 0
1.1.\u03b1 1.1.\u03b2\u03b2 0
1.1.\u03b2\u03b2 1.1.\u03b1\u03b1 0
"""


@pytest.mark.parametrize(
    "a,b,expected", [tuple(line.split()) for line in RPM_CASES.strip().splitlines()]
)
def test_rpmvercmp_agrees_with_rpms_own_test_cases(a: str, b: str, expected: str) -> None:
    assert rpmvercmp(a, b) == int(expected)


def pkg(name: str, evr: str, arch: str = "x86_64") -> Package:
    epoch, _, rest = evr.rpartition(":")
    version, _, release = rest.partition("-")
    return Package(name, int(epoch or 0), version, release, arch)


def names(changes: list) -> list[tuple[str, str, str]]:  # type: ignore[type-arg]
    return [(c.name, c.old, c.new) for c in changes]


def test_changes_sort_by_rpm_order_not_by_text() -> None:
    old = [pkg("bash", "5.1.8-6.el9"), pkg("zlib", "1.2.11-40"), pkg("gone", "1-1")]
    new = [
        pkg("bash", "5.1.8-10.el9"),  # 10 > 6 although "1" < "6" as text
        pkg("zlib", "1.2.11~rc1-1"),  # a pre-release sorts before the release
        pkg("new", "2-1"),
    ]
    changes = compare_packages(old, new)
    assert names(changes.upgraded) == [("bash", "5.1.8-6.el9", "5.1.8-10.el9")]
    assert names(changes.downgraded) == [("zlib", "1.2.11-40", "1.2.11~rc1-1")]
    assert names(changes.added) == [("new", "", "2-1")]
    assert names(changes.removed) == [("gone", "1-1", "")]
    assert changes.changed and changes.unchanged == 0


def test_epoch_beats_version_and_an_unchanged_package_is_counted() -> None:
    changes = compare_packages(
        [pkg("tool", "9.0-1"), pkg("same", "1-1")], [pkg("tool", "1:1.0-1"), pkg("same", "1-1")]
    )
    assert names(changes.upgraded) == [("tool", "9.0-1", "1:1.0-1")]
    assert changes.unchanged == 1 and not changes.downgraded


def test_install_only_builds_are_added_and_removed_one_by_one() -> None:
    old = [pkg("kernel", "5.14.0-1"), pkg("kernel", "5.14.0-2")]
    new = [pkg("kernel", "5.14.0-2"), pkg("kernel", "5.14.0-3")]
    changes = compare_packages(old, new)
    assert names(changes.removed) == [("kernel", "5.14.0-1", "")]
    assert names(changes.added) == [("kernel", "", "5.14.0-3")]
    assert changes.unchanged == 1 and not changes.upgraded


def test_arches_are_separate_packages() -> None:
    changes = compare_packages([pkg("glibc", "2.34-1")], [pkg("glibc", "2.34-1", "i686")])
    assert names(changes.removed) == [("glibc", "2.34-1", "")]
    assert [(c.name, c.arch) for c in changes.added] == [("glibc", "i686")]


def test_identical_manifests_change_nothing() -> None:
    same = [pkg("a", "1-1"), pkg("b", "2-2")]
    changes = compare_packages(same, list(reversed(same)))
    assert not changes.changed and changes.unchanged == 2


def test_rpm_query_output_becomes_a_sorted_manifest_that_reads_back() -> None:
    output = (
        "zlib\t(none)\t1.2.11\t40.el9\tx86_64\n"
        "warning: something rpm said\n"
        "bash\t2\t5.1.8\t6.el9\tx86_64\n"
        "gpg-pubkey\t(none)\t8483c65d\t5ccc5b19\t(none)\n"
    )
    packages = parse_query(output)
    assert [p.name for p in packages] == ["bash", "gpg-pubkey", "zlib"]
    assert packages[0].epoch == 2 and packages[2].epoch == 0
    data = manifest_bytes(packages)
    assert data == manifest_bytes(list(reversed(packages))), "same packages, same bytes"
    assert parse_manifest(data) == packages
    assert b'"name": "bash"' in data


@pytest.mark.parametrize("data", [b"not json", b"{}", b'{"packages": [{"name": "x"}]}'])
def test_a_manifest_imagespec_did_not_write_is_refused(data: bytes) -> None:
    with pytest.raises(ManifestError):
        parse_manifest(data)


def test_spec_matches_the_forms_dnf_install_reads() -> None:
    pkg = Package("kernel-core", 1, "4.18.0", "513.el8", "x86_64")
    for spec in (
        "kernel-core",
        "KERNEL-core",
        "kernel-core.x86_64",
        "kernel-core-4.18.0",
        "kernel-core-4.18.0-513.el8",
        "kernel-core-4.18.0-513.el8.x86_64",
        "kernel-core-1:4.18.0-513.el8",
        "kernel-*",
    ):
        assert spec_matches(spec, pkg), spec
    for spec in ("kernel", "kernel-core.i686", "kernel-core-4.19", "kernel-core-2:4.18.0"):
        assert not spec_matches(spec, pkg), spec


def test_unmatched_specs_are_the_ones_no_package_answers() -> None:
    found = [Package("core", 0, "1.0", "1", "noarch")]
    assert unmatched_specs(["core", "htop", "core-1.0", "htop"], found) == ["htop"]
