"""diff.compare on two sites held in memory: statuses, actions, changes and the summary.

The integration tests drive the same comparison through git; here each case
is one edit to a literal site and the exact report it gives.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

from imagespec.actions import Action, Status
from imagespec.diff import DiffReport, ImageDiff, compare
from tests.helpers import Files, memory_site, site_files

SCRIPT = "#!/bin/sh\nexit 0\n"
PROFILES: dict[str, Any] = {
    "base": {
        "packages": ["bash", "chrony"],
        "exclude": ["./usr/share/doc*"],
        "sync": [{"src": "etc/motd", "dest": "/etc/motd"}],
        "postinstall": ["10-a", "20-b"],
        "postscripts": ["50-site"],
    },
    "login": {"inherits": ["base"], "packages": ["gcc", "make"]},
    "lite": {"packages": ["bash"], "litefile": {"/etc/ntp.conf": "tmpfs"}},
    "spare": {"packages": ["unused"]},
}
IMAGES: dict[str, Any] = {
    "img-base": {"profile": "base", "distro": "rocky8"},
    "img-login": {"profile": "login", "distro": "rocky8"},
    "img-lite": {
        "profile": "lite",
        "distro": "rocky8",
        "attributes": {"provmethod": "statelite"},
    },
}
EXTRA: Files = {
    "synclists/etc/motd": "Welcome\n",
    "synclists/etc/issue": "Issue\n",
    "postinstall/10-a": SCRIPT,
    "postinstall/20-b": SCRIPT,
    "postscripts/50-site": SCRIPT,
}
POSTINSTALL = "/install/p/custom/netboot/rocky/postinstall"
UNCHANGED = {"status": "unchanged", "actions": [], "changes": {}}


def site(
    profiles: Optional[dict[str, Any]] = None,
    images: Optional[dict[str, Any]] = None,
    files: Optional[Files] = None,
) -> Files:
    """The test site, with other profiles, images or files (scripts, sync sources)."""
    return site_files(
        copy.deepcopy(profiles if profiles is not None else PROFILES),
        images=copy.deepcopy(images if images is not None else IMAGES),
        extra={**EXTRA, **(files or {})},
    )


def diff(old: Optional[Files], new: Files) -> DiffReport:
    """Compare two sites the way `imagespec diff` does, with the changed paths between them."""
    before = old or {}
    changed = {p for p in set(before) | set(new) if before.get(p) != new.get(p)}
    old_view = memory_site(old) if old is not None else None
    return compare(old_view, memory_site(new), "main", changed, "BASE", "HEAD")


def with_profile(name: str, **fields: Any) -> dict[str, Any]:
    profiles = copy.deepcopy(PROFILES)
    profiles[name].update(fields)
    return profiles


def images_doc(report: DiffReport) -> dict[str, Any]:
    return dict(report.as_json()["images"])


# ---------------------------------------------------------------- what each edit requires


def test_a_package_added_to_a_shared_profile_rebuilds_every_image_of_its_chains() -> None:
    report = diff(site(), site(with_profile("base", packages=["bash", "chrony", "vim"])))
    changed = {
        "status": "changed",
        "actions": ["sync", "genimage", "pack"],
        "changes": {"pkglist": {"added": ["vim"], "removed": []}},
    }
    assert report.as_json() == {
        "base": "BASE",
        "head": "HEAD",
        "images": {"img-base": changed, "img-lite": UNCHANGED, "img-login": changed},
        "summary": {
            "genimage": ["img-base", "img-login"],
            "pack": [],
            "define": [],
            "sync": [],
            "removed": [],
            "unchanged": 1,
        },
    }
    assert report.images["img-login"].via == ["base"]
    assert report.changed


def test_a_postscript_content_change_syncs_the_file_and_nothing_else() -> None:
    report = diff(site(), site(files={"postscripts/50-site": "#!/bin/sh\necho changed\n"}))
    entry = {
        "status": "changed",
        "actions": ["sync"],
        "changes": {"postscripts": {"content": ["50-site"]}},
    }
    assert images_doc(report) == {"img-base": entry, "img-lite": UNCHANGED, "img-login": entry}
    assert report.summary()["sync"] == ["img-base", "img-login"]
    assert report.images["img-base"].via == []


def test_a_postinstall_script_content_change_needs_genimage() -> None:
    report = diff(site(), site(files={"postinstall/10-a": "#!/bin/sh\nexit 1\n"}))
    assert images_doc(report)["img-base"] == {
        "status": "changed",
        "actions": ["sync", "genimage", "pack"],
        "changes": {"postinstall": {"content": ["10-a"]}},
    }


def test_a_postinstall_order_change_shows_before_and_after() -> None:
    report = diff(site(), site(with_profile("base", postinstall=["20-b", "10-a"])))
    assert images_doc(report)["img-base"] == {
        "status": "changed",
        "actions": ["define", "genimage", "pack"],
        "changes": {
            "postinstall": {"before": ["10-a", "20-b"], "after": ["20-b", "10-a"]},
            "attributes": {
                "postinstall": {
                    "old": f"{POSTINSTALL}/10-a,{POSTINSTALL}/20-b",
                    "new": f"{POSTINSTALL}/20-b,{POSTINSTALL}/10-a",
                }
            },
        },
    }


def test_an_exclude_change_syncs_and_packs() -> None:
    report = diff(site(), site(with_profile("base", exclude=["./usr/share/doc*", "./tmp*"])))
    assert images_doc(report)["img-login"] == {
        "status": "changed",
        "actions": ["sync", "pack"],
        "changes": {"exlist": {"added": ["./tmp*"], "removed": []}},
    }
    assert report.summary()["pack"] == ["img-base", "img-login"]


def test_an_image_attribute_is_a_define_only() -> None:
    images = copy.deepcopy(IMAGES)
    images["img-base"]["attributes"] = {"addkcmdline": "quiet"}
    report = diff(site(), site(images=images))
    assert images_doc(report) == {
        "img-base": {
            "status": "changed",
            "actions": ["define"],
            "changes": {"attributes": {"addkcmdline": {"old": None, "new": "quiet"}}},
        },
        "img-lite": UNCHANGED,
        "img-login": UNCHANGED,
    }
    assert report.summary()["define"] == ["img-base"]


def test_a_pack_attribute_is_a_define_and_a_pack_counted_as_pack() -> None:
    images = copy.deepcopy(IMAGES)
    images["img-login"]["attributes"] = {"rootfstype": "squashfs"}
    report = diff(site(), site(images=images))
    assert images_doc(report)["img-login"] == {
        "status": "changed",
        "actions": ["define", "pack"],
        "changes": {"attributes": {"rootfstype": {"old": None, "new": "squashfs"}}},
    }
    assert report.summary()["pack"] == ["img-login"]
    assert report.summary()["define"] == []


def test_the_same_packages_in_a_new_order_are_reported_as_reordered_and_only_synced() -> None:
    """One transaction installs its packages together: their order never changes the image,
    so the rewritten pkglist is synced and nothing is built."""
    report = diff(site(), site(with_profile("login", packages=["make", "gcc"])))
    assert images_doc(report)["img-login"] == {
        "status": "changed",
        "actions": ["sync"],
        "changes": {"pkglist": {"added": [], "removed": [], "reordered": True}},
    }
    assert images_doc(report)["img-base"] == UNCHANGED


def test_a_package_moved_to_another_transaction_is_still_a_build() -> None:
    first = with_profile("login", packages=["gcc", "#NEW_INSTALL_LIST#", "make"])
    second = with_profile("login", packages=["#NEW_INSTALL_LIST#", "gcc", "make"])
    assert images_doc(diff(site(first), site(second)))["img-login"]["actions"] == [
        "sync",
        "genimage",
        "pack",
    ]


def test_a_sync_source_content_change_syncs_and_packs() -> None:
    report = diff(site(), site(files={"synclists/etc/motd": "Goodbye\n"}))
    assert images_doc(report)["img-base"] == {
        "status": "changed",
        "actions": ["sync", "pack"],
        "changes": {"synclist": {"content": ["etc/motd"]}},
    }


def test_a_sync_entry_pointed_at_another_source_is_retargeted() -> None:
    sync = [{"src": "etc/issue", "dest": "/etc/motd", "mode": "append"}]
    report = diff(site(), site(with_profile("base", sync=sync)))
    assert images_doc(report)["img-base"] == {
        "status": "changed",
        "actions": ["sync", "pack"],
        "changes": {
            "synclist": {
                "retargeted": [
                    {
                        "dest": "/etc/motd",
                        "old": {"src": ["etc/motd"], "mode": "copy", "nodes": None},
                        "new": {"src": ["etc/issue"], "mode": "append", "nodes": None},
                    }
                ]
            }
        },
    }


def test_sync_changes_are_reported_by_the_image_path_they_write() -> None:
    """SPEC §4 keys sync entries by image path: one more source into a directory is one
    added path, and a path now written from another source is retargeted, not the
    whole directory entry."""
    one = [{"src": ["etc/motd"], "dest": "/etc/site/"}]
    two = [{"src": ["etc/motd", "etc/issue"], "dest": "/etc/site/"}]
    report = diff(site(with_profile("base", sync=one)), site(with_profile("base", sync=two)))
    assert images_doc(report)["img-base"]["changes"] == {"synclist": {"added": ["/etc/site/issue"]}}
    other = [*two, {"src": "etc/issue", "dest": "/etc/site/motd"}]
    report = diff(site(with_profile("base", sync=two)), site(with_profile("base", sync=other)))
    assert images_doc(report)["img-base"]["changes"] == {
        "synclist": {
            "retargeted": [
                {
                    "dest": "/etc/site/motd",
                    "old": {"src": ["etc/motd"], "mode": "copy", "nodes": None},
                    "new": {"src": ["etc/issue"], "mode": "copy", "nodes": None},
                }
            ]
        }
    }


def test_a_litefile_change_on_a_statelite_image_packs() -> None:
    litefile = {"/etc/ntp.conf": "tmpfs,rw", "/var/log/": "persistent"}
    report = diff(site(), site(with_profile("lite", litefile=litefile)))
    assert images_doc(report)["img-lite"] == {
        "status": "changed",
        "actions": ["sync", "pack"],
        "changes": {
            "litefile": {
                "added": [{"file": "/var/log/", "options": "persistent"}],
                "changed": [{"file": "/etc/ntp.conf", "old": "tmpfs", "new": "tmpfs,rw"}],
            }
        },
    }


# ---------------------------------------------------------------- edits that require nothing


def test_comments_only_change_nothing() -> None:
    old = site()
    new = dict(old)
    new["profiles/base.yaml"] = "# a comment\n" + str(old["profiles/base.yaml"])
    report = diff(old, new)
    assert images_doc(report) == {n: UNCHANGED for n in IMAGES}
    assert not report.changed


def test_a_profile_no_image_uses_changes_nothing() -> None:
    report = diff(site(), site(with_profile("spare", packages=["other"])))
    assert report.summary() == {
        "genimage": [],
        "pack": [],
        "define": [],
        "sync": [],
        "removed": [],
        "unchanged": 3,
    }


def test_freezing_an_image_needs_nothing_but_is_marked() -> None:
    images = copy.deepcopy(IMAGES)
    images["img-login"]["frozen"] = True
    report = diff(site(), site(images=images))
    assert report.images["img-login"] == ImageDiff("img-login", "unchanged", frozen=True)
    assert images_doc(report)["img-login"] == UNCHANGED


# ---------------------------------------------------------------- images added and removed


def test_added_and_removed_images() -> None:
    images = copy.deepcopy(IMAGES)
    del images["img-login"]
    images["img-new"] = {"profile": "base", "distro": "rocky8"}
    report = diff(site(), site(images=images))
    assert images_doc(report) == {
        "img-base": UNCHANGED,
        "img-lite": UNCHANGED,
        "img-login": {"status": "removed", "actions": [], "changes": {}},
        "img-new": {
            "status": "added",
            "actions": ["sync", "define", "genimage", "pack"],
            "changes": {},
        },
    }
    assert report.summary() == {
        "genimage": ["img-new"],
        "pack": [],
        "define": [],
        "sync": [],
        "removed": ["img-login"],
        "unchanged": 2,
    }


def test_without_a_base_site_every_image_is_added() -> None:
    report = diff(None, site())
    assert {n: d.status for n, d in report.images.items()} == {
        "img-base": "added",
        "img-lite": "added",
        "img-login": "added",
    }
    assert report.summary()["genimage"] == ["img-base", "img-lite", "img-login"]


# ---------------------------------------------------------------- the summary rules


def test_each_image_is_counted_once_under_its_heaviest_action() -> None:
    report = DiffReport(
        "a",
        "b",
        "main",
        {
            "z": ImageDiff("z", Status.CHANGED, [Action.SYNC, Action.DEFINE]),
            "y": ImageDiff("y", Status.CHANGED, [Action.DEFINE, Action.PACK]),
            "x": ImageDiff(
                "x", Status.CHANGED, [Action.SYNC, Action.DEFINE, Action.GENIMAGE, Action.PACK]
            ),
            "w": ImageDiff("w", Status.CHANGED, [Action.SYNC]),
            "v": ImageDiff("v", Status.REMOVED),
            "u": ImageDiff("u", Status.UNCHANGED),
            "t": ImageDiff("t", Status.UNCHANGED),
        },
    )
    assert report.summary() == {
        "genimage": ["x"],
        "pack": ["y"],
        "define": ["z"],
        "sync": ["w"],
        "removed": ["v"],
        "unchanged": 2,
    }
    assert [report.images[n].heaviest for n in "zyxwvu"] == [
        "define",
        "pack",
        "genimage",
        "sync",
        None,
        None,
    ]
    assert list(report.as_json()["images"]) == ["t", "u", "v", "w", "x", "y", "z"]
