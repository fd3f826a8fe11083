"""The xcat builder against the xCAT stand-in: clean, atomic, reversible builds nodes boot.

The stand-in behaves as xCAT does where it matters here (tests/xcatstub,
each behaviour citing xcat-core): genimage installs into the existing root and
never clears it, packimage and liteimg work on the root in place, liteimg's
recoverFiles deletes the paths of removed litefile rows, nodeset copies the
kernel and initrd to tftp, mkdef -f drops foreign attributes.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Optional

import pytest

from tests.helpers import dump_yaml
from tests.integration.sites import APPLY_PROFILES, Env, apply_site_doc, build_calls, run_main
from tests.xcatstub import (
    add_nodes,
    clear_failures,
    inject_failure,
    read_bootparams,
    read_calls,
    read_litefile,
    read_nodes,
    read_osimages,
)

ROCKY = Path("netboot/rocky8/x86_64")
MAC = "52:54:00:00:00:"


def root_of(env: Env, profile: str) -> Path:
    return env.install / ROCKY / profile


def packages_in(env: Env, profile: str) -> set[str]:
    """The packages the stand-in's genimage installed in the image's root (marker files)."""
    where = root_of(env, profile) / "rootimg/var/lib/xcatstub/packages"
    return {p.name for p in where.iterdir()} if where.is_dir() else set()


def profile_edit(env: Env, name: str, **changes: object) -> None:
    doc = {**APPLY_PROFILES[name], **changes}
    env.write(f"profiles/{name}.yaml", dump_yaml(doc))


def tftp(env: Env) -> Path:
    return env.stub_state / "tftpboot" / "xcat" / "osimage"


def test_a_package_removed_in_git_is_absent_from_the_next_image(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes").code == 0
    assert {"gcc", "vim-enhanced", "bash"} <= packages_in(env, "login")
    profile_edit(env, "login", packages=["make"])
    env.commit("login: make instead of gcc")
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 0, run.err
    have = packages_in(env, "login")
    assert "make" in have
    assert "gcc" not in have, "genimage installs into the old root: it must be emptied first"
    assert os.readlink(root_of(env, "login")) == ".login.imagespec/2"


def test_genimage_never_sees_the_root_nodes_boot(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes").code == 0
    genimages = [c for c in read_calls(env.stub_state) if c["cmd"] == "genimage"]
    assert {c["args"][-1] for c in genimages} == {
        "img-login-imagespec-staging",
        "img-compute-imagespec-staging",
        "img-lite-imagespec-staging",
    }
    defs = read_osimages(env.stub_state)
    assert set(defs) == {"img-login", "img-compute", "img-lite"}, "staging osimages removed"
    assert defs["img-login"]["rootimgdir"] == str(root_of(env, "login"))
    # genimage wrote its attributes back into the staging osimage, never the image's own
    assert "permission" not in defs["img-login"]
    assert root_of(env, "login").is_symlink()


@pytest.mark.parametrize("stage", ["genimage", "packimage"])
def test_a_failed_build_leaves_the_image_nodes_boot_untouched(
    env: Env, capsys: pytest.CaptureFixture[str], stage: str
) -> None:
    assert run_main(capsys, "apply", "--yes").code == 0
    root = root_of(env, "login")
    archive = (root / "rootimg.cpio.gz").read_bytes()
    kernel = (root / "kernel").read_bytes()
    profile_edit(env, "login", packages=["gcc", "make"])
    env.commit("login: make")
    inject_failure(env.stub_state, stage, "img-login-imagespec-staging")
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 3
    assert os.readlink(root) == ".login.imagespec/1"
    assert (root / "rootimg.cpio.gz").read_bytes() == archive
    assert (root / "kernel").read_bytes() == kernel
    assert "make" not in packages_in(env, "login")
    assert env.state()["images"]["img-login"]["status"] == "failed"
    clear_failures(env.stub_state)
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 0, run.err
    assert os.readlink(root) == ".login.imagespec/2"
    assert "make" in packages_in(env, "login")


def test_nodes_get_the_new_kernel_after_a_build_and_the_old_one_after_rollback(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    add_nodes(
        env.stub_state,
        {
            "cn001": {"groups": "compute", "provmethod": "img-compute", "mac": MAC + "01"},
            "cn002": {"groups": "compute", "provmethod": "img-compute", "mac": MAC + "02"},
            "ln001": {"groups": "login", "provmethod": "img-login", "mac": MAC + "03"},
        },
    )
    assert run_main(capsys, "apply", "--yes").code == 0
    kernel = tftp(env) / "img-compute" / "kernel"
    assert kernel.read_bytes() == b"xcatstub kernel default\n"
    profile_edit(env, "compute", packages=["slurm", "kernel-5.14.0-2"])
    env.commit("compute: newer kernel")
    plan = run_main(capsys, "plan", "--json").json()
    assert plan["images"]["img-compute"]["nodeset"] == {"owed": True, "nodes": 2}
    assert "nodeset owed: 2 nodes" in plan["images"]["img-compute"]["reasons"]
    assert plan["images"]["img-login"]["nodeset"] == {"owed": False, "nodes": None}
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 0, run.err
    assert kernel.read_bytes() == b"xcatstub kernel 5.14.0-2\n"
    nodesets = [c["args"] for c in read_calls(env.stub_state) if c["cmd"] == "nodeset"]
    assert nodesets[-1] == ["cn001,cn002", "osimage=img-compute"]
    assert run_main(capsys, "status").code == 0
    run = run_main(capsys, "rollback", "img-compute", "--director", "here")
    assert run.code == 0, run.err
    assert os.readlink(root_of(env, "compute")) == ".compute.imagespec/1"
    assert kernel.read_bytes() == b"xcatstub kernel default\n"
    assert env.state()["images"]["img-compute"]["nodeset_owed"] is False


def test_a_failed_nodeset_is_owed_until_it_succeeds(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    add_nodes(
        env.stub_state, {"cn001": {"groups": "all", "provmethod": "img-compute", "mac": MAC + "01"}}
    )
    inject_failure(env.stub_state, "nodeset")
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 3
    image = env.state()["images"]["img-compute"]
    assert (image["status"], image["failed_stage"], image["nodeset_owed"]) == (
        "failed",
        "nodeset",
        True,
    )
    plan = run_main(capsys, "plan", "--json").json()
    assert plan["images"]["img-compute"]["actions"] == []
    assert plan["images"]["img-compute"]["nodeset"] == {"owed": True, "nodes": 1}
    clear_failures(env.stub_state)
    before = len(read_calls(env.stub_state))
    assert run_main(capsys, "apply", "--yes").code == 0
    new = [c["cmd"] for c in read_calls(env.stub_state)[before:]]
    assert "genimage" not in new and "nodeset" in new
    assert env.state()["images"]["img-compute"]["nodeset_owed"] is False


def test_a_litefile_change_never_leaves_a_statelite_root_with_deleted_files(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env.write(
        "postinstall/10-a",
        "#!/bin/sh\nmkdir -p $1/etc/ssh $1/var/log\necho k > $1/etc/ssh/key\necho l > $1/var/log/boot.log\n",
    )
    lite = {**APPLY_PROFILES["lite"], "litefile": {"/var/log/": "persistent", "/etc/ssh/": "tmpfs"}}
    env.write("profiles/lite.yaml", dump_yaml(lite))
    env.commit("lite: ssh keys in tmpfs")
    assert run_main(capsys, "apply", "--yes").code == 0
    lite["litefile"] = {"/var/log/": "persistent"}
    env.write("profiles/lite.yaml", dump_yaml(lite))
    env.commit("lite: ssh keys back in the image")
    plan = run_main(capsys, "plan", "--json").json()
    assert plan["images"]["img-lite"]["actions"] == ["sync", "pack"]
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 0, run.err
    root = root_of(env, "lite") / "rootimg"
    assert (root / "etc/ssh/key").read_text() == "k\n"
    assert (root / "var/log/boot.log").exists() or (root / ".default/var/log/boot.log").exists()
    genimages = [c for c in read_calls(env.stub_state) if c["cmd"] == "genimage"]
    assert len([c for c in genimages if "img-lite" in c["args"][-1]]) == 2, "rebuilt from empty"


def test_define_keeps_foreign_attributes_and_unsets_what_git_dropped(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    profile_edit(env, "compute", attributes={"addkcmdline": "quiet"})
    env.commit("compute: quiet boot")
    assert run_main(capsys, "apply", "--yes").code == 0
    # the site sets groups by hand, for its litefile group rows
    db = json.loads((env.stub_state / "osimage.json").read_text())
    db["img-compute"]["groups"] = "lite"
    (env.stub_state / "osimage.json").write_text(json.dumps(db))
    profile_edit(env, "compute")
    env.commit("compute: no quiet")
    assert run_main(capsys, "apply", "--yes").code == 0
    compute = read_osimages(env.stub_state)["img-compute"]
    assert compute.get("groups") == "lite"
    assert "addkcmdline" not in compute
    cmds = [c["cmd"] for c in read_calls(env.stub_state)]
    assert "mkdef" in cmds


def test_a_definition_changed_by_hand_is_drift_and_apply_restores_it(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes").code == 0
    db = json.loads((env.stub_state / "osimage.json").read_text())
    db["img-login"]["osname"] = "AIX"
    db["img-login"]["usercomment"] = "the admin's note"
    (env.stub_state / "osimage.json").write_text(json.dumps(db))
    plan = run_main(capsys, "plan", "--json").json()
    assert plan["images"]["img-login"]["actions"] == ["define"]
    assert "definition changed on the director: osname" in plan["images"]["img-login"]["reasons"]
    assert plan["images"]["img-compute"]["actions"] == []
    assert run_main(capsys, "status").code == 2
    assert run_main(capsys, "apply", "--yes").code == 0
    login = read_osimages(env.stub_state)["img-login"]
    assert login["osname"] == "Linux"
    assert login["usercomment"] == "the admin's note"
    assert run_main(capsys, "status").code == 0


def test_a_netboot_repack_copies_the_root_and_leaves_the_generation_in_use_alone(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(capsys, "apply", "--yes").code == 0
    first = root_of(env, "compute").resolve()
    marker = first / "rootimg/etc/imagespec-stub-build"
    before = marker.read_bytes()
    profile_edit(env, "compute", exclude=["./usr/share/man*"])
    env.commit("compute: no man pages")
    plan = run_main(capsys, "plan", "--json").json()
    assert plan["images"]["img-compute"]["actions"] == ["sync", "pack"]
    start = len(read_calls(env.stub_state))
    assert run_main(capsys, "apply", "--yes").code == 0
    new = [[c["cmd"], *c["args"]] for c in read_calls(env.stub_state)[start:]]
    assert ["genimage", "img-compute-imagespec-staging"] not in new
    assert ["packimage", "-m", "cpio", "-c", "gzip", "img-compute-imagespec-staging"] in new
    # img-lite inherits compute: a statelite pack always starts from an empty root
    assert ["genimage", "img-lite-imagespec-staging"] in new
    assert os.readlink(root_of(env, "compute")) == ".compute.imagespec/2"
    assert marker.read_bytes() == before
    second = root_of(env, "compute").resolve()
    assert os.stat(second / "rootimg/etc/imagespec-stub-build").st_ino != os.stat(marker).st_ino
    with gzip.open(second / "rootimg.cpio.gz") as handle:
        assert b"exclude ./usr/share/man*" in handle.read()


def test_show_and_explain_list_the_rows_liteimg_really_applies(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    """litetree.pm (syncmount, mergeArrays): the rows of the osimage's groups, of image ''
    and ALL join the image's own, and /etc/mtab is added as link when no row lists it."""
    assert run_main(capsys, "apply", "--yes").code == 0
    rows = [
        {
            "image": "ALL",
            "file": "/etc/adjtime",
            "options": "tmpfs",
            "comments": None,
            "disable": None,
        },
        {"image": "", "file": "/var/spool/", "options": "", "comments": None, "disable": None},
        {
            "image": "lite",
            "file": "/etc/gpu/",
            "options": "tmpfs",
            "comments": None,
            "disable": None,
        },
        {"image": "ALL", "file": "/etc/off", "options": "tmpfs", "comments": None, "disable": "1"},
    ]
    table = json.loads((env.stub_state / "litefile.json").read_text()) + rows
    (env.stub_state / "litefile.json").write_text(json.dumps(table))
    db = json.loads((env.stub_state / "osimage.json").read_text())
    db["img-lite"]["groups"] = "lite"
    (env.stub_state / "osimage.json").write_text(json.dumps(db))
    run = run_main(capsys, "show", "img-lite")
    assert run.code == 0, run.err
    assert "litefile as liteimg applies it" in run.out
    for path in ("/etc/adjtime", "/var/spool/", "/etc/gpu/", "/etc/mtab", "/var/log/"):
        assert path in run.out
    assert "/etc/off" not in run.out, "disabled rows are skipped"
    doc = run_main(capsys, "explain", "img-lite", "/etc/adjtime", "--json").json()
    assert doc["final"] == [
        "litefile as liteimg applies it: /etc/adjtime tmpfs (director litefile, image=ALL)"
    ]
    doc = run_main(capsys, "explain", "img-lite", "/etc/mtab", "--json").json()
    assert doc["final"] == [
        "litefile as liteimg applies it: /etc/mtab link (added by xCAT on Linux)"
    ]
    assert run_main(capsys, "show", "img-lite", "--json").json()["litefile"] == {
        "/var/log/": "persistent"
    }


def test_show_says_when_the_director_rows_cannot_be_read(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no xCAT commands
    run = run_main(capsys, "show", "img-lite")
    assert run.code == 0, run.err
    assert "the litefile table of director here could not be read" in run.out
    assert "/etc/mtab" in run.out


def test_liteimg_never_runs_twice_on_one_root_after_a_failed_pack(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failed liteimg leaves a root it changed; fixing the litefile in git must not give
    that root to liteimg again (statelite.pm recoverFiles would act on the old rows)."""
    inject_failure(env.stub_state, "liteimg", "img-lite-imagespec-staging", once=True)
    assert run_main(capsys, "apply", "--yes").code == 3
    lite = {**APPLY_PROFILES["lite"], "litefile": {"/var/log/": "tmpfs"}}
    env.write("profiles/lite.yaml", dump_yaml(lite))
    env.commit("lite: logs in tmpfs")
    start = len(read_calls(env.stub_state))
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 0, run.err
    new = [[c["cmd"], *c["args"]] for c in read_calls(env.stub_state)[start:]]
    assert ["genimage", "img-lite-imagespec-staging"] in new
    assert new.index(["genimage", "img-lite-imagespec-staging"]) < new.index(
        ["liteimg", "img-lite-imagespec-staging"]
    )


def nodes_map(env: Env, nodes: dict[str, str]) -> None:
    doc = apply_site_doc({"install_root": str(env.install), "prefix": "p", "builder": "xcat"})
    doc["directors"]["here"]["nodes"] = nodes
    env.write("imagespec.yaml", dump_yaml(doc))


def test_nodes_moved_in_git_show_in_diff_and_plan_and_get_exactly_one_nodeset(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    add_nodes(
        env.stub_state,
        {f"cn00{i}": {"groups": "compute", "mac": f"{MAC}0{i}"} for i in range(1, 9)},
    )
    nodes_map(env, {"cn[001-004]": "img-compute", "cn[005-008]": "img-compute"})
    env.commit("compute nodes")
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 0, run.err
    nodesets = [c["args"] for c in read_calls(env.stub_state) if c["cmd"] == "nodeset"]
    assert sorted(nodesets) == [
        ["cn[001-004]", "osimage=img-compute"],
        ["cn[005-008]", "osimage=img-compute"],
    ]
    assert env.state()["nodes"] == {"cn[001-004]": "img-compute", "cn[005-008]": "img-compute"}
    nodes_map(env, {"cn[001-004]": "img-login", "cn[005-008]": "img-compute"})
    env.commit("cn001-004 become login nodes")
    move = {"nodes": "cn[001-004]", "from": "img-compute", "to": "img-login"}
    diff = run_main(capsys, "diff", "HEAD~1", "HEAD", "--format", "json").json()
    assert diff["nodes"] == [move]
    text = run_main(capsys, "diff", "HEAD~1", "HEAD")
    assert "cn[001-004]: img-compute -> img-login" in text.out
    markdown = run_main(capsys, "diff", "HEAD~1", "HEAD", "--format", "markdown")
    assert "| `cn[001-004]` | `img-login` | `img-compute` |" in markdown.out
    profile_edit(env, "aux", packages=["vim-enhanced", "htop"])
    env.commit("htop for admins")
    text = run_main(capsys, "diff", "HEAD~1", "HEAD")
    assert "img-login: sync, genimage, pack (via aux) [4 nodes boot it]" in text.out
    markdown = run_main(capsys, "diff", "HEAD~1", "HEAD", "--format", "markdown")
    assert "| `img-login` | changed | sync, genimage, pack | aux | 4 nodes |" in markdown.out
    plan = run_main(capsys, "plan", "--json", "--exit-code")
    assert plan.code == 2
    assert json.loads(plan.out)["nodes"] == [move]
    start = len(read_calls(env.stub_state))
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 0, run.err
    new = [c["args"] for c in read_calls(env.stub_state)[start:] if c["cmd"] == "nodeset"]
    assert new == [["cn[001-004]", "osimage=img-login"]]
    assert read_nodes(env.stub_state)["cn001"]["provmethod"] == "img-login"
    assert read_nodes(env.stub_state)["cn005"]["provmethod"] == "img-compute"
    start = len(read_calls(env.stub_state))
    assert run_main(capsys, "apply", "--yes").code == 0
    assert not [c for c in read_calls(env.stub_state)[start:] if c["cmd"] == "nodeset"]
    assert run_main(capsys, "status").code == 0


def test_nodes_moved_to_an_image_that_failed_to_build_stay_owed(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    add_nodes(env.stub_state, {"cn001": {"groups": "compute", "mac": f"{MAC}01"}})
    nodes_map(env, {"cn001": "img-compute"})
    env.commit("cn001 is a compute node")
    inject_failure(env.stub_state, "genimage", "img-compute-imagespec-staging", once=True)
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 3
    assert "cn001: image img-compute is not built" in run.out
    assert "nodes" not in env.state()
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 0, run.err
    assert env.state()["nodes"] == {"cn001": "img-compute"}


def test_a_kernel_command_line_change_is_a_define_and_a_nodeset_not_a_build(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    """anaconda.pm mknetboot writes the image's addkcmdline into each node's boot
    parameters: a changed addkcmdline reaches nodes only through nodeset."""
    add_nodes(
        env.stub_state,
        {"cn001": {"groups": "compute", "provmethod": "img-login", "mac": f"{MAC}01"}},
    )
    assert run_main(capsys, "apply", "--yes").code == 0
    profile_edit(env, "login", attributes={"addkcmdline": "console=ttyS0"})
    env.commit("login: serial console")
    plan = run_main(capsys, "plan", "--json").json()
    assert plan["images"]["img-login"]["actions"] == ["sync", "define"]
    assert plan["images"]["img-login"]["nodeset"] == {"owed": True, "nodes": 1}
    start = len(read_calls(env.stub_state))
    assert run_main(capsys, "apply", "--yes").code == 0
    new = [[c["cmd"], *c["args"]] for c in read_calls(env.stub_state)[start:]]
    assert not [c for c in new if c[0] in ("genimage", "packimage")]
    assert ["nodeset", "cn001", "osimage=img-login"] in new
    assert "console=ttyS0" in read_bootparams(env.stub_state)["cn001"]["kcmdline"]


# ---------------------------------------------------------------- boot variants (#14)

SERIAL = {"serial": {"attributes": {"addkcmdline": "console=ttyS0"}, "description": "rack 4"}}


def site_with(
    env: Env,
    variants: dict[str, dict[str, object]],
    nodes: Optional[dict[str, str]] = None,
    drop: tuple[str, ...] = (),
) -> None:
    """imagespec.yaml with boot variants per image, a `nodes:` map, images left out."""
    director: dict[str, object] = {
        "install_root": str(env.install),
        "prefix": "p",
        "builder": "xcat",
        "build": {"jobs": 2},
    }
    if nodes:
        director["nodes"] = nodes
    doc = apply_site_doc(director)
    for image, declared in variants.items():
        doc["images"][image]["variants"] = declared
    for image in drop:
        del doc["images"][image]
    env.write("imagespec.yaml", dump_yaml(doc))


def new_calls(env: Env, start: int) -> list[list[str]]:
    return env.calls()[start:]


def test_a_variant_is_its_own_osimage_on_the_image_root_and_costs_no_build(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    # a node the admin already points at the variant-to-be
    add_nodes(
        env.stub_state,
        {"cn001": {"groups": "compute", "provmethod": "img-compute-serial", "mac": f"{MAC}01"}},
    )
    assert run_main(capsys, "apply", "--yes").code == 0
    site_with(env, {"img-compute": SERIAL})
    env.commit("compute: a serial console variant")
    diff = run_main(capsys, "diff", "HEAD~1", "HEAD", "--format", "json").json()
    assert diff["images"]["img-compute"]["actions"] == ["define"]
    assert diff["images"]["img-compute"]["changes"]["variants"]["added"] == ["serial"]
    plan = run_main(capsys, "plan", "--json").json()
    assert plan["images"]["img-compute"]["actions"] == ["sync", "define"]
    assert plan["images"]["img-compute"]["nodeset"] == {"owed": True, "nodes": 1}
    start = len(env.calls())
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 0, run.err
    new = new_calls(env, start)
    assert build_calls(new) == [], "a variant costs a define, never a build"
    assert ["nodeset", "cn001", "osimage=img-compute-serial"] in new
    assert "console=ttyS0" in read_bootparams(env.stub_state)["cn001"]["kcmdline"]
    defs = read_osimages(env.stub_state)
    assert defs["img-compute-serial"]["rootimgdir"] == defs["img-compute"]["rootimgdir"]
    assert defs["img-compute-serial"]["addkcmdline"] == "console=ttyS0"
    assert "addkcmdline" not in defs["img-compute"]
    assert defs["img-compute-serial"]["pkglist"] == defs["img-compute"]["pkglist"]
    assert env.state()["images"]["img-compute"]["variants"] == ["img-compute-serial"]
    stanza = env.install / "p/custom/netboot/rocky/img-compute-serial.stanza"
    assert "    addkcmdline=console=ttyS0\n" in stanza.read_text()
    assert run_main(capsys, "status").code == 0
    show = run_main(capsys, "show", "img-compute")
    assert "img-compute-serial: addkcmdline=console=ttyS0" in show.out
    assert "img-compute-serial: rack 4" in show.out
    assert "variants" not in run_main(capsys, "show", "img-compute", "--json").json()


def test_variant_nodes_get_their_command_line_now_and_after_a_rebuild(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    """anaconda.pm mknetboot copies <rootimgdir>/kernel for the osimage nodeset names, and
    xnba.pm:826-829 appends that osimage's addkcmdline: a variant's nodes boot the image's
    kernel with the variant's command line."""
    add_nodes(
        env.stub_state,
        {
            "cn001": {"groups": "compute", "provmethod": "img-compute", "mac": f"{MAC}01"},
            "cn002": {"groups": "compute", "provmethod": "img-compute-serial", "mac": f"{MAC}02"},
        },
    )
    site_with(env, {"img-compute": SERIAL})
    env.commit("compute: a serial console variant")
    assert run_main(capsys, "apply", "--yes").code == 0
    assert "console=ttyS0" in read_bootparams(env.stub_state)["cn002"]["kcmdline"]
    assert "console=ttyS0" not in read_bootparams(env.stub_state)["cn001"]["kcmdline"]
    site_with(env, {"img-compute": {"serial": {"attributes": {"addkcmdline": "console=ttyS1"}}}})
    env.commit("compute: the serial console on ttyS1")
    plan = run_main(capsys, "plan", "--json").json()
    assert plan["images"]["img-compute"]["actions"] == ["sync", "define"]
    assert plan["images"]["img-compute"]["nodeset"] == {"owed": True, "nodes": 2}
    start = len(env.calls())
    assert run_main(capsys, "apply", "--yes").code == 0
    new = new_calls(env, start)
    assert build_calls(new) == []
    assert ["nodeset", "cn002", "osimage=img-compute-serial"] in new
    assert "console=ttyS1" in read_bootparams(env.stub_state)["cn002"]["kcmdline"]
    profile_edit(env, "compute", packages=["slurm", "kernel-5.14.0-2"])
    env.commit("compute: newer kernel")
    plan = run_main(capsys, "plan", "--json").json()
    assert "nodeset owed: 2 nodes" in plan["images"]["img-compute"]["reasons"]
    start = len(env.calls())
    assert run_main(capsys, "apply", "--yes").code == 0
    nodesets = [c[1:] for c in new_calls(env, start) if c[0] == "nodeset"]
    assert nodesets == [["cn001", "osimage=img-compute"], ["cn002", "osimage=img-compute-serial"]]
    serial = tftp(env) / "img-compute-serial" / "kernel"
    assert serial.read_bytes() == b"xcatstub kernel 5.14.0-2\n"
    boot = read_bootparams(env.stub_state)["cn002"]
    assert boot["kernel"] == "xcat/osimage/img-compute-serial/kernel"
    assert "console=ttyS1" in boot["kcmdline"]
    run = run_main(capsys, "rollback", "img-compute", "--director", "here")
    assert run.code == 0, run.err
    assert serial.read_bytes() == b"xcatstub kernel default\n", "rollback nodesets variants too"


def test_a_dropped_variant_is_removed_and_only_what_imagespec_defined(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    site_with(env, {"img-compute": {**SERIAL, "debug": {"attributes": {"addkcmdline": "debug"}}}})
    env.commit("compute: two variants")
    assert run_main(capsys, "apply", "--yes").code == 0
    db = json.loads((env.stub_state / "osimage.json").read_text())
    db["img-compute-serial"]["groups"] = "rack4"  # set by hand: survives a chdef
    db["img-compute-mine"] = dict(db["img-compute"])  # an admin's own copy, never imagespec's
    (env.stub_state / "osimage.json").write_text(json.dumps(db))
    site_with(env, {"img-compute": {"serial": {"attributes": {"crashkernelsize": "256"}}}})
    env.commit("compute: debug variant gone, serial without its console")
    start = len(env.calls())
    assert run_main(capsys, "apply", "--yes").code == 0
    new = new_calls(env, start)
    assert ["rmdef", "-t", "osimage", "-o", "img-compute-debug"] in new
    assert not [c for c in new if c[0] == "rmdef" and c[-1] != "img-compute-debug"]
    defs = read_osimages(env.stub_state)
    assert "img-compute-debug" not in defs
    assert "img-compute-mine" in defs
    serial = defs["img-compute-serial"]
    assert "addkcmdline" not in serial, "unset with chdef: imagespec no longer renders it"
    assert (serial["crashkernelsize"], serial["groups"]) == ("256", "rack4")
    assert env.state()["images"]["img-compute"]["variants"] == ["img-compute-serial"]
    site_with(env, {})
    env.commit("compute: no variants")
    assert run_main(capsys, "apply", "--yes").code == 0
    assert "img-compute-serial" not in read_osimages(env.stub_state)
    assert "variants" not in env.state()["images"]["img-compute"]


def test_a_nodes_map_entry_naming_a_variant_nodesets_it(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    add_nodes(
        env.stub_state,
        {f"cn00{i}": {"groups": "compute", "mac": f"{MAC}0{i}"} for i in range(1, 5)},
    )
    site_with(
        env,
        {"img-compute": SERIAL},
        nodes={"cn[001-002]": "img-compute", "cn[003-004]": "img-compute-serial"},
    )
    env.commit("compute nodes, two on the serial console")
    text = run_main(capsys, "diff", "HEAD~1", "HEAD")
    assert "[4 nodes boot it]" in text.out, "a variant's nodes boot its image"
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 0, run.err
    nodesets = sorted(c[1:] for c in env.calls() if c[0] == "nodeset")
    assert nodesets == [
        ["cn[001-002]", "osimage=img-compute"],
        ["cn[003-004]", "osimage=img-compute-serial"],
    ]
    assert read_nodes(env.stub_state)["cn003"]["provmethod"] == "img-compute-serial"
    assert "console=ttyS0" in read_bootparams(env.stub_state)["cn004"]["kcmdline"]
    assert env.state()["nodes"]["cn[003-004]"] == "img-compute-serial"
    assert run_main(capsys, "status").code == 0


def test_a_variant_of_an_image_that_failed_to_build_is_not_nodeset(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    add_nodes(env.stub_state, {"cn001": {"groups": "compute", "mac": f"{MAC}01"}})
    site_with(env, {"img-compute": SERIAL}, nodes={"cn001": "img-compute-serial"})
    env.commit("cn001 on the serial console")
    inject_failure(env.stub_state, "genimage", "img-compute-imagespec-staging", once=True)
    run = run_main(capsys, "apply", "--yes")
    assert run.code == 3
    assert "cn001: image img-compute is not built" in run.out
    assert not [c for c in env.calls() if c[0] == "nodeset"]
    assert run_main(capsys, "apply", "--yes").code == 0
    assert env.state()["nodes"] == {"cn001": "img-compute-serial"}


def test_a_statelite_variant_gets_its_image_litefile_rows(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    """A statelite node asks for the rows of its provmethod (litetree.pm:156-179, 343-359)."""

    def rows(image: str) -> list[tuple[Optional[str], Optional[str]]]:
        found = [r for r in read_litefile(env.stub_state) if r["image"] == image]
        return sorted((r["file"], r["options"]) for r in found)

    assert run_main(capsys, "apply", "--yes").code == 0
    site_with(env, {"img-lite": {"dump": {"attributes": {"dump": "nfs:///install/dump"}}}})
    env.commit("lite: a kdump variant")
    assert run_main(capsys, "apply", "--yes").code == 0
    assert rows("img-lite-dump") == rows("img-lite") == [("/var/log/", "persistent")]
    lite = {**APPLY_PROFILES["lite"], "litefile": {"/var/log/": "tmpfs"}}
    env.write("profiles/lite.yaml", dump_yaml(lite))
    env.commit("lite: logs in tmpfs")
    assert run_main(capsys, "apply", "--yes").code == 0
    assert rows("img-lite-dump") == rows("img-lite") == [("/var/log/", "tmpfs")]
    site_with(env, {})
    env.commit("lite: no variant")
    assert run_main(capsys, "apply", "--yes").code == 0
    assert rows("img-lite-dump") == []


def test_pruning_an_orphan_removes_the_variants_imagespec_defined_for_it(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    site_with(env, {"img-login": SERIAL})
    env.commit("login: a serial console variant")
    assert run_main(capsys, "apply", "--yes").code == 0
    assert "img-login-serial" in read_osimages(env.stub_state)
    site_with(env, {}, drop=("img-login",))
    env.commit("no more login image")
    assert run_main(capsys, "apply", "--yes").code == 0
    assert {"img-login", "img-login-serial"} <= set(read_osimages(env.stub_state))
    assert run_main(capsys, "apply", "--yes", "--prune-images").code == 0
    defs = read_osimages(env.stub_state)
    assert "img-login" not in defs
    assert "img-login-serial" not in defs


def test_a_hand_built_root_stays_bootable_when_the_first_build_fails(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rootimgdir built before imagespec becomes generation 0 at once, so nodes keep
    booting it through rootimgdir while (and after) the first build fails."""
    root = root_of(env, "login")
    (root / "rootimg").mkdir(parents=True)
    (root / "rootimg/hand-made").write_text("built before imagespec\n")
    (root / "rootimg.cpio.gz").write_bytes(b"hand-packed")
    inject_failure(env.stub_state, "packimage", "img-login-imagespec-staging")
    assert run_main(capsys, "apply", "--yes").code == 3
    assert os.readlink(root) == ".login.imagespec/0"
    assert (root / "rootimg.cpio.gz").read_bytes() == b"hand-packed"
    assert (root / "rootimg/hand-made").exists()
    clear_failures(env.stub_state)
    assert run_main(capsys, "apply", "--yes").code == 0
    assert os.readlink(root) == ".login.imagespec/1"
    assert (env.install / ROCKY / ".login.imagespec/0/rootimg/hand-made").exists()
