"""The xCAT stand-in (tests/xcatstub) behaves like the xCAT commands it replaces.

Every test runs the stub through the sh wrappers install_stub writes, as imagespec will
over ssh.  The expected messages and refusals are xCAT's (DBobjectdefs.pm, genimage.pm,
packimage.pm, statelite.pm, tabutils.pm, the xCAT-client front ends).
"""

from __future__ import annotations

import gzip
import lzma
import os
import re
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Optional

import pytest

from tests.xcatstub import (
    STUB_COMMANDS,
    add_nodes,
    clear_failures,
    clear_node_boot,
    inject_failure,
    install_stub,
    read_bootparams,
    read_calls,
    read_litefile,
    read_node_faults,
    read_nodes,
    read_osimages,
    read_packages,
    read_power,
    read_running,
    read_transactions,
    set_node_boot,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
GOLDEN = REPO_ROOT / "tests" / "golden" / "render" / "bare" / "custom" / "netboot" / "rocky"


@dataclass
class Stub:
    bin: Path
    state: Path
    root: Path

    def run(
        self,
        name: str,
        *args: str,
        input: Optional[str] = None,
        term: Optional[str] = "dumb",
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("TERM", "XCATSTUB_STATE")}
        if term is not None:
            env["TERM"] = term
        return subprocess.run(
            [str(self.bin / name), *args],
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    def ok(self, name: str, *args: str, input: Optional[str] = None) -> str:
        proc = self.run(name, *args, input=input)
        assert proc.returncode == 0, f"{name} {args}: rc={proc.returncode}\n{proc.stderr}"
        return proc.stdout


@pytest.fixture
def stub(tmp_path: Path) -> Stub:
    state = tmp_path / "state"
    return Stub(install_stub(tmp_path / "bin", state), state, tmp_path)


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def stanza(name: str, attrs: dict[str, str]) -> str:
    lines = ["# <xCAT data object stanza file>", "", f"{name}:", "    objtype=osimage"]
    lines += [f"    {k}={v}" for k, v in sorted(attrs.items()) if v]
    return "\n".join(lines) + "\n"


def image_attrs(root: Path, name: str, provmethod: str = "netboot", **extra: str) -> dict[str, str]:
    """A complete osimage whose files live under root/custom; writes those files."""
    custom = root / "custom"
    write(custom / "base.pkglist", "# base packages\nbash\n\nchrony,vim-minimal\n")
    write(
        custom / f"{name}.pkglist",
        "# header comment naming the chain\n"
        "#INCLUDE:base.pkglist#\n"
        "  # indented comment\n"
        "kernel\n"
        "-firewalld\n"
        "x86_64/Packages/openssh-server\n"
        "#NEW_INSTALL_LIST#\n"
        "@core\n",
    )
    write(custom / f"{name}.otherpkgs.pkglist", "slurm\nxcat/xcat-core/xCATsn\n--dracut-network\n")
    write(custom / f"{name}.exlist", "./usr/share/doc*   # docs\n+./usr/share/doc/bash*\n")
    write(custom / f"{name}.synclist", "/etc/motd -> /etc/motd\n/etc/a /etc/b -> (n1) /etc/\n")
    attrs = {
        "imagetype": "linux",
        "osname": "Linux",
        "osvers": "rocky8",
        "osarch": "x86_64",
        "profile": "compute",
        "provmethod": provmethod,
        "pkgdir": "/install/rocky8/x86_64",
        "pkglist": str(custom / f"{name}.pkglist"),
        "otherpkgdir": "/install/post/otherpkgs/rocky8/x86_64",
        "otherpkglist": str(custom / f"{name}.otherpkgs.pkglist"),
        "exlist": str(custom / f"{name}.exlist"),
        "rootimgdir": str(root / "netboot" / name),
    }
    if provmethod == "netboot":
        attrs["synclists"] = str(custom / f"{name}.synclist")
    else:
        attrs["rootfstype"] = "ramdisk"
    attrs.update(extra)
    return attrs


def define(stub: Stub, name: str, provmethod: str = "netboot", **extra: str) -> dict[str, str]:
    attrs = image_attrs(stub.root, name, provmethod, **extra)
    stub.ok("mkdef", "-z", input=stanza(name, attrs))
    return attrs


# ---------------------------------------------------------------------------- installer


def test_install_stub_writes_executable_wrappers_with_the_state_baked_in(stub: Stub) -> None:
    for name in STUB_COMMANDS:
        wrapper = stub.bin / name
        assert wrapper.stat().st_mode & stat.S_IXUSR
        text = wrapper.read_text()
        assert text.startswith("#!/bin/sh\n")
        assert f"XCATSTUB_STATE={stub.state}" in text
    # run() strips XCATSTUB_STATE from the environment: the wrapper supplies it
    assert stub.ok("tabdump", "litefile") == "#image,file,options,comments,disable\n"
    assert (stub.state / "calls.jsonl").exists()


# ---------------------------------------------------------------------------- mkdef / chdef / lsdef / rmdef


def test_mkdef_stanza_round_trips_through_lsdef(stub: Stub) -> None:
    golden = (GOLDEN / "rocky8-compute.stanza").read_text()
    out = stub.ok("mkdef", "-z", input=golden)
    assert out == "1 object definitions have been created or modified.\n"
    assert stub.ok("lsdef", "-t", "osimage", "-o", "rocky8-compute", "-z") == golden
    osimages = read_osimages(stub.state)
    assert osimages["rocky8-compute"]["addkcmdline"] == "console=ttyS0,115200n8"
    assert "objtype" not in osimages["rocky8-compute"]


def test_mkdef_of_an_existing_definition_warns_and_changes_nothing(stub: Stub) -> None:
    """DBobjectdefs.pm lines 1816-1823: without -f an existing object only gets a warning
    and the other objects are still created.  The summary (lines 2205-2218) is reported
    as an error, exit code 1, only when nothing at all was created or modified."""
    stub.ok("mkdef", "-z", input=stanza("img", {"profile": "a", "osvers": "rocky8"}))
    both = stanza("img", {"profile": "b"}) + stanza("other", {"profile": "c"}).split("\n", 1)[1]
    warning = (
        "Warning: A definition for 'img' already exists. No changes will be made.  "
        "Run again with '-f' option to force replace.\n"
    )
    proc = stub.run("mkdef", "-z", input=both)
    assert (proc.returncode, proc.stderr) == (0, warning)
    assert proc.stdout == "1 object definitions have been created or modified.\n"
    assert read_osimages(stub.state) == {
        "img": {"profile": "a", "osvers": "rocky8"},
        "other": {"profile": "c"},
    }
    proc = stub.run("mkdef", "-z", input=stanza("img", {"profile": "b"}))
    assert proc.returncode == 1
    assert proc.stderr == warning + "Error: 0 object definitions have been created or modified.\n"
    assert read_osimages(stub.state)["img"] == {"profile": "a", "osvers": "rocky8"}


def test_mkdef_f_replaces_the_whole_definition(stub: Stub) -> None:
    stub.ok("mkdef", "-z", input=stanza("img", {"profile": "a", "osvers": "rocky8"}))
    stub.ok("mkdef", "-z", "-f", input=stanza("img", {"profile": "b"}))
    assert read_osimages(stub.state) == {"img": {"profile": "b"}}
    stub.ok("mkdef", "-zf", input=stanza("img", {"osvers": "rocky9"}))  # bundled flags
    assert read_osimages(stub.state) == {"img": {"osvers": "rocky9"}}


def test_mkdef_command_line_form(stub: Stub) -> None:
    stub.ok("mkdef", "-t", "osimage", "-o", "img", "profile=compute", "osvers=rocky8")
    assert read_osimages(stub.state) == {"img": {"profile": "compute", "osvers": "rocky8"}}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-z", "-o", "img"], "Cannot use '-z' with '-o' or a noderange."),
        (["-z", "-t", "osimage"], "Cannot combine '-t' and '-a', '-z', or '-x' options."),
        (["-z", "-p"], "The '-p' and '-m' options are not valid for the mkdef command."),
        (["--bogus"], "Invalid option.."),
        (["-t", "nodez", "-o", "x"], "\nType 'nodez' is not a valid xCAT object type."),
    ],
)
def test_mkdef_refuses_bad_usage(stub: Stub, args: list[str], message: str) -> None:
    text = stanza("img", {"profile": "a"}) if "-z" in args else None
    proc = stub.run("mkdef", *args, input=text)
    assert proc.returncode == 1
    assert f"Error: {message}" in proc.stderr
    assert read_osimages(stub.state) == {}


def test_mkdef_refuses_unknown_attributes_and_missing_objtype(stub: Stub) -> None:
    """DBobjectdefs.pm lines 1690-1697: an unknown attribute or a stanza without objtype
    (setFINALattrs, line 3189) makes mkdef write nothing at all, exit code 1.  chdef
    writes the valid attributes and reports the error (lines 2455-2462, 3055-3060)."""
    proc = stub.run("mkdef", "-z", input=stanza("img", {"pkglsit": "/x", "profile": "p"}))
    assert proc.returncode == 1
    # xCAT names the type from -t, which is empty for stanza input
    assert proc.stderr == (
        "Error: 'pkglsit' is not a valid attribute name for an object type of ''.\n"
    )
    assert read_osimages(stub.state) == {}
    proc = stub.run("mkdef", "-t", "osimage", "-o", "x", "pkglsit=/x", "profile=p")
    assert proc.returncode == 1
    assert proc.stderr == (
        "Error: 'pkglsit' is not a valid attribute name for an object type of 'osimage'.\n"
        "Error: Skipping to the next attribute.\n"
    )
    assert read_osimages(stub.state) == {}
    proc = stub.run("mkdef", "-z", input="new:\n    profile=a\n")
    assert proc.returncode == 1
    assert "No objtype value was specified for 'new'. Cannot create object" in proc.stderr
    proc = stub.run("mkdef", "-t", "osimage", "-o", "x")
    assert proc.returncode == 1
    assert "no attributes were specified" in proc.stderr
    assert read_osimages(stub.state) == {}
    proc = stub.run("chdef", "-t", "osimage", "-o", "x", "pkglsit=/x", "profile=p")
    assert proc.returncode == 1
    assert "One or more errors occured when attempting to create or modify" in proc.stderr
    assert read_osimages(stub.state) == {"x": {"imagetype": "NIM", "profile": "p"}}


def test_stanza_parser_keeps_xcat_quirks(stub: Stub) -> None:
    """DBobjUtils.pm readFileInput (lines 1684-1780): a value ending in ':' makes the line
    a (bad) header and the rest of that stanza is ignored; only `default-<type>:` is a
    defaults stanza (line 1739; before 2.14 any name containing 'default' was); values
    lose their quotes.  An object left with no attribute is not created (DBobjUtils.pm
    setobjdefs marks only objects with attributes as updated)."""
    text = (
        "default-osimage:\n    osname=Linux\n"
        "img:\n    objtype=osimage\n    usercomment=see:\n    profile=lost\n"
        'other:\n    objtype=osimage\n    profile= "quoted" \n'
        "rocky8-default:\n    objtype=osimage\n    profile=x\n"
    )
    assert stub.ok("mkdef", "-z", input=text) == (
        "3 object definitions have been created or modified.\n"
    )
    assert read_osimages(stub.state) == {
        "img": {"osname": "Linux"},
        "other": {"osname": "Linux", "profile": "quoted"},
        "rocky8-default": {"osname": "Linux", "profile": "x"},
    }


def test_mkdef_reads_stdin_only_as_xcat_does(stub: Stub) -> None:
    # xcatDBcmds reads stdin only from a pipe when TERM is set: `mkdef -z < file` fails.
    path = write(stub.root / "img.stanza", stanza("img", {"profile": "a"}))
    env = {k: v for k, v in os.environ.items() if k != "XCATSTUB_STATE"}
    for term, expected_rc in (("xterm", 1), (None, 0)):
        env.pop("TERM", None)
        if term:
            env["TERM"] = term
        with open(path) as handle:
            proc = subprocess.run(
                [str(stub.bin / "mkdef"), "-z"],
                stdin=handle,
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
            )
        assert proc.returncode == expected_rc, proc.stderr
    assert "img" in read_osimages(stub.state)


def test_chdef_updates_and_creates(stub: Stub) -> None:
    """DBobjectdefs.pm defch: chdef creates a missing object (an osimage without imagetype
    gets imagetype=NIM, lines 3011-3015); `attr=` unsets; DBobjUtils.pm setobjdefs lines
    1151-1230: -p adds only items not there yet, -m refuses items that are not there."""
    stub.ok("mkdef", "-z", input=stanza("img", {"profile": "a", "osvers": "rocky8"}))
    out = stub.ok("chdef", "-z", input=stanza("img", {"profile": "b"}) + "new:\n objtype=osimage\n")
    assert out == (
        "2 object definitions have been created or modified.\n"
        "New object definitions 'new' have been created.\n"
    )
    assert read_osimages(stub.state) == {
        "img": {"profile": "b", "osvers": "rocky8"},
        "new": {"imagetype": "NIM"},
    }
    stub.ok("chdef", "-t", "osimage", "-o", "img", "osvers=", "postscripts=a,b")
    stub.ok("chdef", "-t", "osimage", "-o", "img", "-p", "postscripts=b,c,c")
    assert read_osimages(stub.state)["img"]["postscripts"] == "a,b,c"
    stub.ok("chdef", "-t", "osimage", "img", "-m", "postscripts=a")
    assert read_osimages(stub.state)["img"] == {"profile": "b", "postscripts": "b,c"}
    proc = stub.run("chdef", "-t", "osimage", "-o", "img", "-m", "postscripts=x")
    assert proc.returncode == 1
    assert "Error: x is not in the attribute of 'postscripts' for the 'img' definition." in (
        proc.stderr
    )
    assert read_osimages(stub.state)["img"]["postscripts"] == "b,c"
    proc = stub.run("chdef", "-f", "-z", input=stanza("img", {"profile": "c"}))
    assert proc.returncode == 1
    assert "The '-f' option is not valid for the chdef command." in proc.stderr


def test_lsdef_listing_and_errors(stub: Stub) -> None:
    proc = stub.run("lsdef", "-t", "osimage")
    assert proc.returncode == 1
    assert "Error: Could not get objects of type 'osimage'." in proc.stderr
    for name in ("b-img", "a-img"):
        stub.ok("mkdef", "-t", "osimage", "-o", name, "profile=p", "osvers=rocky8")
    assert stub.ok("lsdef", "-t", "osimage") == "a-img  (osimage)\nb-img  (osimage)\n"
    assert stub.ok("lsdef", "-t", "osimage", "-o", "a-img") == (
        "Object name: a-img\n    osvers=rocky8\n    profile=p\n"
    )
    # defls line 4129 sorts the -i attributes; asked-for attributes show even when unset
    assert stub.ok("lsdef", "-t", "osimage", "a-img", "-i", "profile,pkglist") == (
        "Object name: a-img\n    pkglist=\n    profile=p\n"
    )
    # defls line 3405: -z lists every attribute (since xCAT 2.14, #5241), -s only names
    full = stub.ok("lsdef", "-t", "osimage", "-z")
    assert full.count("    profile=p\n") == 2 and full.startswith("# <xCAT data object stanza")
    assert stub.ok("lsdef", "-t", "osimage", "-z", "-s") == (
        "# <xCAT data object stanza file>\n\na-img:\n\nb-img:\n"
    )
    proc = stub.run("lsdef", "-t", "osimage", "-o", "nope,a-img", "-z")
    assert proc.returncode == 1
    assert "Error: Could not find an object named 'nope' of type 'osimage'." in proc.stderr
    assert "a-img:\n    objtype=osimage\n" in proc.stdout
    proc = stub.run("lsdef", "-t", "osimage", "-o", "a-img", input="a-img:\n")
    assert proc.returncode == 1 and "without -z" in proc.stderr


def test_rmdef(stub: Stub) -> None:
    stub.ok("mkdef", "-t", "osimage", "-o", "img", "profile=p")
    proc = stub.run("rmdef", "-t", "osimage", "-o", "img", "-z")
    assert proc.returncode == 1
    assert "Invalid flag specified, see rmdef manpage for details." in proc.stderr
    stub.ok("rmdef", "-t", "osimage", "-o", "img")
    assert read_osimages(stub.state) == {}
    proc = stub.run("rmdef", "-t", "osimage", "-o", "img")
    assert proc.returncode == 1
    assert "Could not find an object named 'img' of type 'osimage'." in proc.stderr


def test_mkdef_f_removes_attributes_set_outside_the_new_definition(stub: Stub) -> None:
    """DBobjectdefs.pm lines 1908-1920: with -f the old object is removed (rmobjdefs)
    before the new definition is written, so an attribute set by someone else (groups,
    used by litefile group rows) is lost; chdef -z changes only the attributes of the
    stanza (DBobjUtils.pm setobjdefs)."""
    stub.ok("mkdef", "-t", "osimage", "-o", "img", "profile=a", "groups=lite-rows")
    stub.ok("chdef", "-z", input=stanza("img", {"profile": "b"}))
    assert read_osimages(stub.state)["img"] == {"profile": "b", "groups": "lite-rows"}
    stub.ok("mkdef", "-z", "-f", input=stanza("img", {"profile": "c"}))
    assert read_osimages(stub.state)["img"] == {"profile": "c"}


def test_node_definitions(stub: Stub) -> None:
    """Nodes through mkdef/chdef/lsdef/rmdef (DBobjectdefs.pm): -t node is the default
    type (processArgs line 1017) and names are noderanges (lines 793, 1165); mkdef
    needs `groups` (lines 1827-1835) and refuses '.' in a name (lines 1591-1599); a
    group name selects its members."""
    out = stub.ok(
        "mkdef", "-t", "node", "-o", "cn[001-003]", "groups=compute,all", "mac=aa:bb:cc:dd:ee:01"
    )
    assert out == "3 object definitions have been created or modified.\n"
    proc = stub.run("mkdef", "-t", "node", "-o", "cn004", "provmethod=img")
    assert proc.returncode == 1
    assert proc.stderr == (
        "Error: Attribute 'groups' is not specified for node 'cn004', skipping to the next "
        "node.\nError: One or more errors occured when attempting to create or modify xCAT "
        "object definitions.\n"
    )
    proc = stub.run("mkdef", "-t", "node", "-o", "cn.5", "groups=g")
    assert "The object name 'cn.5' is invalid, Cannot use '.' in node name." in proc.stderr
    stub.ok("chdef", "cn002,cn003", "provmethod=img-b")  # no -t: node
    stub.ok("chdef", "-t", "node", "-o", "cn001", "provmethod=img-a")
    add_nodes(stub.state, {"login01": {"groups": "login", "provmethod": "img-l"}})
    assert read_nodes(stub.state)["cn002"] == {
        "groups": "compute,all",
        "mac": "aa:bb:cc:dd:ee:01",
        "provmethod": "img-b",
    }
    listing = "cn001  (node)\ncn002  (node)\ncn003  (node)\nlogin01  (node)\n"
    assert stub.ok("lsdef", "-t", "node") == listing
    assert stub.ok("lsdef") == listing
    assert stub.ok("lsdef", "compute", "-i", "provmethod", "-c") == (
        "cn001: provmethod=img-a\ncn002: provmethod=img-b\ncn003: provmethod=img-b\n"
    )
    assert stub.ok("lsdef", "-t", "node", "-o", "login01") == (
        "Object name: login01\n    groups=login\n    provmethod=img-l\n"
    )
    proc = stub.run("rmdef", "-t", "node", "cn003,cn009")
    assert proc.returncode == 1
    assert proc.stderr == "Error: Could not find an object named 'cn009' of type 'node'.\n"
    assert proc.stdout == "1 object definitions have been removed.\n"
    assert sorted(read_nodes(stub.state)) == ["cn001", "cn002", "login01"]


def test_lsdef_selects_nodes_by_provmethod(stub: Stub) -> None:
    """`lsdef -t node -w provmethod==IMAGE -i provmethod -c` (DBobjectdefs.pm): -w is
    parsed by xCAT::Utils parse_selection_string and filters with selection_string_match
    (defls lines 3902-3910); -c prints `node: attr=value` (line 4199).  Nodes but no match:
    "No object definitions have been found" and exit 0 (lines 4303-4309); no node at all:
    "Could not get objects of type 'node'." and exit 1 (processArgs lines 1238-1247)."""
    args = ["-t", "node", "-w", "provmethod==img", "-i", "provmethod", "-c"]
    proc = stub.run("lsdef", *args)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == "Error: Could not get objects of type 'node'.\n"
    add_nodes(
        stub.state,
        {
            "cn01": {"groups": "compute", "provmethod": "img"},
            "cn02": {"groups": "compute", "provmethod": "img-old"},
            "cn03": {"groups": "compute"},
            "cn10": {"groups": "compute", "provmethod": "img"},
        },
    )
    assert stub.ok("lsdef", *args) == "cn01: provmethod=img\ncn10: provmethod=img\n"
    assert stub.ok("lsdef", "-t", "node", "-w", "provmethod=~^img", "-s") == (
        "cn01  (node)\ncn02  (node)\ncn10  (node)\n"
    )
    assert stub.ok("lsdef", "-t", "node", "-w", "provmethod!=img", "-i", "groups") == (
        "Object name: cn02\n    groups=compute\n"
    )
    proc = stub.run("lsdef", "-t", "node", "-w", "provmethod==other", "-i", "provmethod", "-c")
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0,
        "No object definitions have been found\n",
        "",
    )
    proc = stub.run("lsdef", "-t", "node", "-w", "provmethod", "-i", "provmethod", "-c")
    assert proc.returncode == 1
    assert "Incorrect selection string specified with -w flag." in proc.stderr


def bootable(stub: Stub, name: str, provmethod: str = "netboot", **extra: str) -> Path:
    """An image whose genimage (and packimage for netboot) ran; returns its rootimgdir."""
    attrs = define(stub, name, provmethod, **extra)
    write(Path(attrs["pkglist"]), "bash\nkernel-5.14.0-1\n")
    stub.ok("genimage", name)
    if provmethod == "netboot":
        stub.ok("packimage", name)
    return Path(attrs["rootimgdir"])


def test_nodeset_copies_kernel_and_initrd_and_records_boot_parameters(stub: Stub) -> None:
    """nodeset <noderange> osimage=<image>: destiny.pm setdestiny writes the image into
    each node's provmethod/os/arch/profile first (lines 294-332), refuses nodes without a
    MAC (lines 426-440); anaconda.pm mknetboot refuses an image without kernel, initrd or
    packed image (lines 450-499), copies kernel and initrd-stateless.gz once per image to
    <tftpdir>/xcat/osimage/<image>/ (lines 514-541) and builds the kernel command line
    (lines 707-717 imgurl, XCAT, NODE, FC; 725 XCATHTTPPORT; 793-795 selinux=0); xnba.pm
    lines 174-230 append the node's and the image's addkcmdline without R:: words."""
    attrs = define(stub, "img", addkcmdline="console=ttyS0,115200n8 R::quiet")
    destdir = Path(attrs["rootimgdir"])
    mac = {"groups": "compute", "mac": "aa:bb:cc:dd:ee:01"}
    add_nodes(stub.state, {"cn001": mac, "cn002": mac, "cn003": {"groups": "compute"}})
    proc = stub.run("nodeset", "cn[001-002]", "osimage=img")
    assert proc.returncode == 1
    here = socket.gethostname()
    missing = (
        'Error: Did you run "genimage" before running "packimage"? kernel cannot be found at '
        f"{destdir}/kernel on {here}"
    )
    assert proc.stderr == f"cn001: {missing}\ncn002: {missing}\n"
    assert read_nodes(stub.state)["cn001"]["provmethod"] == "img"  # written before the checks
    assert read_bootparams(stub.state) == {}
    write(Path(attrs["pkglist"]), "bash\nkernel-5.14.0-1\n")
    stub.ok("genimage", "img")
    proc = stub.run("nodeset", "cn001", "osimage=img")
    assert "cn001: Error: No packed image for platform rocky8, architecture x86_64" in proc.stderr
    stub.ok("packimage", "img")
    out = stub.ok("nodeset", "cn001,cn002", "osimage=img")
    assert out == "cn001: netboot rocky8-x86_64-compute\ncn002: netboot rocky8-x86_64-compute\n"
    tftp = stub.state / "tftpboot" / "xcat" / "osimage" / "img"
    assert (tftp / "kernel").read_bytes() == b"xcatstub kernel 5.14.0-1\n"
    assert (tftp / "initrd-stateless.gz").read_bytes() == (
        destdir / "initrd-stateless.gz"
    ).read_bytes()
    assert read_bootparams(stub.state)["cn002"] == {
        "kernel": "xcat/osimage/img/kernel",
        "initrd": "xcat/osimage/img/initrd-stateless.gz",
        "kcmdline": f"imgurl=http://!myipfn!:80/{destdir}/rootimg.cpio.gz XCAT=!myipfn!:3001 "
        "NODE=cn002 FC=0 XCATHTTPPORT=80  selinux=0   console=ttyS0,115200n8 ",
    }
    node = read_nodes(stub.state)["cn001"]
    assert (node["provmethod"], node["os"], node["arch"], node["profile"]) == (
        "img",
        "rocky8",
        "x86_64",
        "compute",
    )
    assert node["currstate"] == "netboot rocky8-x86_64-compute"
    proc = stub.run("nodeset", "cn003", "osimage=img")
    assert (proc.returncode, proc.stderr) == (
        1,
        "cn003: Error: No MAC address available for this node\n",
    )
    proc = stub.run("nodeset", "cn009", "osimage=img")
    assert proc.stderr == "Error: Invalid nodes and/or groups in noderange: cn009\n"
    proc = stub.run("nodeset", "compute", "osimage=nope")
    assert proc.stderr == "Error: Cannot find the OS image nope in the osimage table.\n"


def test_nodeset_follows_a_new_kernel_and_the_node_provmethod(stub: Stub) -> None:
    """genimage.pm lines 407-431 already copy a new kernel to the tftp dir; nodeset
    (`osimage` without a name: destiny.pm lines 334-414 take each node's provmethod)
    copies it again and rewrites the boot parameters, e.g. for a changed addkcmdline."""
    destdir = bootable(stub, "img")
    add_nodes(stub.state, {"cn1": {"groups": "g", "mac": "m", "provmethod": "img"}})
    stub.ok("nodeset", "cn1", "osimage")
    write(Path(str(destdir).replace("netboot/img", "custom/img.pkglist")), "kernel-6.1.0\n")
    stub.ok("genimage", "img")
    tftp = stub.state / "tftpboot" / "xcat" / "osimage" / "img"
    assert (tftp / "kernel").read_bytes() == b"xcatstub kernel 6.1.0\n"
    stub.ok("chdef", "-t", "osimage", "-o", "img", "addkcmdline=rd.break")
    assert "rd.break" not in read_bootparams(stub.state)["cn1"]["kcmdline"]
    stub.ok("packimage", "img")
    assert stub.ok("nodeset", "cn1", "osimage") == "cn1: netboot rocky8-x86_64-compute\n"
    assert read_bootparams(stub.state)["cn1"]["kcmdline"].endswith(" rd.break ")


def test_nodeset_statelite_boots_the_nfs_root_or_the_ramdisk(stub: Stub) -> None:
    """anaconda.pm mknetboot for statelite: initrd-statelite.gz and an NFS root built from
    rootimgdir (lines 619-648, SvrUtils.pm build_statelite_nfsroot_parameter: `ro` first,
    then osimage.nfsrootopts) with STATEMNT= and MNTOPTS= (lines 648, 872-881); with
    rootfstype=ramdisk the packed rootimg-statelite.gz is needed and initrd-stateless.gz
    boots (lines 469-474, 531-536, 858-866)."""
    destdir = bootable(stub, "lite", "statelite", rootfstype="nfs", nfsrootopts="vers=4")
    add_nodes(stub.state, {"sl1": {"groups": "g", "mac": "m"}})
    assert stub.ok("nodeset", "sl1", "osimage=lite") == "sl1: statelite rocky8-x86_64-compute\n"
    assert read_bootparams(stub.state)["sl1"] == {
        "kernel": "xcat/osimage/lite/kernel",
        "initrd": "xcat/osimage/lite/initrd-statelite.gz",
        "kcmdline": f"root=nfs:!myipfn!:{destdir}/rootimg:ro,vers=4 STATEMNT= "
        "XCAT=!myipfn!:3001 NODE=sl1 XCATHTTPPORT=80  selinux=0  MNTOPTS=",
    }
    tftp = stub.state / "tftpboot" / "xcat" / "osimage" / "lite"
    assert (tftp / "initrd-statelite.gz").read_bytes() == (
        destdir / "initrd-statelite.gz"
    ).read_bytes()
    stub.ok("chdef", "-t", "osimage", "-o", "lite", "rootfstype=ramdisk")
    proc = stub.run("nodeset", "sl1", "osimage=lite")
    assert 'please run "liteimg" to create it.' in proc.stderr


# ---------------------------------------------------------------------------- power and boot

IPMI = {"groups": "compute", "mac": "aa:bb:cc:dd:ee:01", "mgt": "ipmi"}
STATUSTIME = re.compile(r"\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2}")


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll check() until it holds or timeout seconds passed; its last answer."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return check()
        time.sleep(0.1)
    return True


def node_status(stub: Stub, node: str) -> str:
    """status and statustime through `lsdef -i status,statustime -c`, which settles boots."""
    out = stub.ok("lsdef", "-t", "node", "-o", node, "-i", "status,statustime", "-c")
    return out


def booted(stub: Stub, node: str) -> bool:
    return f"{node}: status=booted\n" in node_status(stub, node)


def parse_statustime(text: str) -> datetime:
    """monitorctrl.pm setNodeStatusAttributes: MM-DD-YYYY HH:MM:SS, local time."""
    assert STATUSTIME.fullmatch(text), text
    return datetime.strptime(text, "%m-%d-%Y %H:%M:%S")


def test_rpower_answers_like_the_ipmi_and_kvm_plugins(stub: Stub) -> None:
    """ipmi.pm power_with_context/power_response (lines 2835-2978): boot prints the action
    it sent, `reset` for a node that was on and `on` for one that was off; stat prints the
    state; on of an on node and reset/off of an off node print the state and do nothing.
    kvm.pm power (lines 3216-3325) prints the old state first for boot: `on reset`,
    `off on`.  on/boot/reset set status powering-on and off powering-off, with statustime
    in monitorctrl.pm's MM-DD-YYYY HH:MM:SS local time (lines 694-705)."""
    kvm = dict(IPMI, mgt="kvm")
    add_nodes(stub.state, {"cn1": IPMI, "cn2": IPMI, "vm1": kvm, "vm2": kvm})
    for node in ("cn1", "cn2", "vm1", "vm2"):
        set_node_boot(stub.state, node, delay=600)  # no boot completes during the test
    assert stub.ok("rpower", "compute", "stat") == "cn1: on\ncn2: on\nvm1: on\nvm2: on\n"
    assert stub.ok("rpower", "cn2,vm2", "off") == "cn2: off\nvm2: off\n"
    assert stub.ok("rpower", "cn2,vm2", "off") == "cn2: off\nvm2: off\n"
    assert stub.ok("rpower", "cn2", "reset") == "cn2: off\n"
    status = stub.ok("lsdef", "-t", "node", "-o", "cn2", "-i", "status", "-c")
    assert status == "cn2: status=powering-off\n"
    before = datetime.now()
    proc = stub.run("rpower", "compute", "boot")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == "cn1: reset\ncn2: on\nvm1: on reset\nvm2: off on\n"
    out = stub.ok("lsdef", "-t", "node", "-o", "cn1,vm2", "-i", "status,statustime", "-c")
    lines = out.splitlines()
    assert [line.split("=")[0] for line in lines] == [
        "cn1: status",
        "cn1: statustime",
        "vm2: status",
        "vm2: statustime",
    ]
    assert lines[0] == "cn1: status=powering-on"
    when = parse_statustime(lines[1].split("=", 1)[1])
    assert before - timedelta(seconds=2) <= when <= datetime.now() + timedelta(seconds=1)
    assert stub.ok("rpower", "cn1", "on") == "cn1: on\n"
    assert stub.ok("rpower", "cn1", "state") == "cn1: on\n"
    assert stub.ok("nodestat", "compute") == "cn1: noping\ncn2: noping\nvm1: noping\nvm2: noping\n"


def test_a_boot_completes_after_its_delay_with_what_the_firmware_fetched(stub: Stub) -> None:
    """The boot rpower starts completes `delay` seconds later: status booted (the node's
    `installstatus booted`, xcatdsklspost lines 1047-1066, through updatenode.pm
    updatenodestat) with the completion time, nodestat sshd, and running.json records the
    boot files and kernel command line nodeset had set up when rpower ran, and the real
    path of the (symlinked) image directory the kernel command line serves the root from."""
    gen1 = bootable(stub, "img")
    current = stub.root / "netboot" / "current"
    current.symlink_to(gen1)
    stub.ok("chdef", "-t", "osimage", "-o", "img", f"rootimgdir={current}")
    add_nodes(stub.state, {"cn1": IPMI, "cn2": IPMI})
    stub.ok("nodeset", "cn1,cn2", "osimage=img")
    params = read_bootparams(stub.state)["cn1"]
    assert f"imgurl=http://!myipfn!:80/{current}/rootimg.cpio.gz " in params["kcmdline"]
    set_node_boot(stub.state, "cn1", delay=600)
    set_node_boot(stub.state, "cn2", delay=600)
    assert stub.ok("rpower", "cn1,cn2", "boot") == "cn1: reset\ncn2: reset\n"
    # what nodeset sets up now is not what the firmware already fetched
    stub.ok("chdef", "-t", "osimage", "-o", "img", "addkcmdline=rd.break")
    stub.ok("nodeset", "cn1", "osimage=img")
    assert "cn1: status=powering-on\n" in node_status(stub, "cn1")
    set_node_boot(stub.state, "cn1", delay=0.3)  # the pending boot's delay, read now
    assert wait_for(lambda: booted(stub, "cn1"))
    assert "cn2: status=powering-on\n" in node_status(stub, "cn2")
    assert stub.ok("nodestat", "cn1,cn2") == "cn1: sshd\ncn2: noping\n"
    running = read_running(stub.state)
    assert sorted(running) == ["cn1"]
    record = running["cn1"]
    assert {k: v for k, v in record.items() if k != "time"} == {
        "image": "img",
        "provmethod": "img",
        "kernel": "xcat/osimage/img/kernel",
        "initrd": "xcat/osimage/img/initrd-stateless.gz",
        "kcmdline": params["kcmdline"],
        "rootimgdir": os.path.realpath(gen1),
    }
    lines = node_status(stub, "cn1").splitlines()
    assert lines[1] == f"cn1: statustime={record['time']}"
    assert parse_statustime(record["time"]) <= datetime.now()
    # a new generation behind the symlink: the next boot runs it
    gen2 = stub.root / "netboot" / "img-gen2"
    shutil.copytree(gen1, gen2, symlinks=True)
    current.unlink()
    current.symlink_to(gen2)
    set_node_boot(stub.state, "cn1", delay=0)
    assert stub.ok("rpower", "cn1", "boot") == "cn1: reset\n"
    assert wait_for(lambda: booted(stub, "cn1"))
    record = read_running(stub.state)["cn1"]
    assert record["rootimgdir"] == os.path.realpath(gen2)
    assert record["kcmdline"].endswith(" rd.break ")


def test_faults_never_rpower_error_and_down(stub: Stub) -> None:
    """Per-node faults: a node that never boots stays powering-on and noping while the
    others boot; an rpower error prints `<node>: Error: <text>` on stderr (Client.pm
    handle_response) and exit 1, the other nodes proceeding (ipmi.pm sendmsg per node);
    a down node is noping and `off`, keeps its status, and rpower boot powers it on."""
    bootable(stub, "img")
    add_nodes(
        stub.state,
        {
            "cn1": IPMI,
            "cn2": IPMI,
            "cn3": IPMI,
            "cn4": dict(IPMI, status="powering-off", statustime="01-02-2025 03:04:05"),
        },
    )
    stub.ok("nodeset", "compute", "osimage=img")
    set_node_boot(stub.state, "cn2", never=True)
    set_node_boot(stub.state, "cn3", rpower_error="Unable to establish IPMI v2 / RMCP+ session")
    set_node_boot(stub.state, "cn4", down=True)
    assert stub.ok("nodestat", "compute") == "cn1: sshd\ncn2: sshd\ncn3: sshd\ncn4: noping\n"
    proc = stub.run("rpower", "compute", "stat")
    assert proc.returncode == 1
    assert proc.stdout == "cn1: on\ncn2: on\ncn4: off\n"
    assert proc.stderr == "cn3: Error: Unable to establish IPMI v2 / RMCP+ session\n"
    assert "cn4: status=powering-off\n" in node_status(stub, "cn4")
    proc = stub.run("rpower", "compute", "boot")
    assert proc.returncode == 1
    assert proc.stdout == "cn1: reset\ncn2: reset\ncn4: on\n"
    assert proc.stderr == "cn3: Error: Unable to establish IPMI v2 / RMCP+ session\n"
    assert read_node_faults(stub.state)["cn4"]["down"] is False
    assert wait_for(lambda: booted(stub, "cn1") and booted(stub, "cn4"))
    assert "cn2: status=powering-on\n" in node_status(stub, "cn2")
    assert node_status(stub, "cn3") == "cn3: status=\ncn3: statustime=\n"
    assert stub.ok("nodestat", "compute") == "cn1: sshd\ncn2: noping\ncn3: sshd\ncn4: sshd\n"
    assert sorted(read_running(stub.state)) == ["cn1", "cn4"]
    assert read_power(stub.state)["cn2"]["boot"]["offline"] is False
    # going down loses a pending boot; the next boot without faults completes
    set_node_boot(stub.state, "cn1", delay=600)
    stub.ok("rpower", "cn1", "boot")
    set_node_boot(stub.state, "cn1", down=True)
    assert stub.ok("rpower", "cn1", "stat") == "cn1: off\n"
    assert read_power(stub.state)["cn1"]["boot"] is None
    clear_node_boot(stub.state, "cn1")  # still off: only rpower powers it on
    assert stub.ok("nodestat", "cn1,cn2") == "cn1: noping\ncn2: noping\n"
    assert stub.ok("rpower", "cn1", "boot") == "cn1: on\n"
    clear_node_boot(stub.state)  # cn2's pending boot is no longer held back
    assert read_node_faults(stub.state) == {}
    assert wait_for(lambda: booted(stub, "cn1") and booted(stub, "cn2"))
    assert stub.ok("nodestat", "cn1,cn2") == "cn1: sshd\ncn2: sshd\n"


def test_rpower_and_nodestat_refusals(stub: Stub) -> None:
    """xcatd plugin_command refuses an unknown node or group before any plugin runs
    (lines 1726-1733); a node without mgt has no plugin (xcatd lines 1866-1890, the message
    restapi.pl line 2371 quotes); ipmi.pm refuses an unknown action (lines 8338-8348);
    a node without boot parameters has nothing to netboot and never reports booted."""
    add_nodes(stub.state, {"cn1": IPMI, "cn2": {"groups": "compute"}})
    for command, args in (("rpower", ["cn1,cn9,nogroup", "boot"]), ("nodestat", ["cn9"])):
        proc = stub.run(command, *args)
        assert (proc.returncode, proc.stdout) == (1, "")
        missed = "cn9,nogroup" if command == "rpower" else "cn9"
        assert proc.stderr == f"Error: Invalid nodes and/or groups in noderange: {missed}\n"
    assert read_power(stub.state) == {}
    proc = stub.run("rpower", "compute", "boot")
    assert (proc.returncode, proc.stdout) == (1, "cn1: reset\n")
    assert proc.stderr == (
        "cn2: Error: Unable to identify plugin for this command, check relevant tables: "
        "nodehm.power,mgt;nodehm.mgt\n"
    )
    proc = stub.run("rpower", "cn1", "bogus")
    assert (proc.returncode, proc.stderr) == (1, "")
    assert proc.stdout == "cn1: Error: Unsupported command: rpower bogus when using mgt=ipmi.\n"
    assert "xcatstub: rpower cycle is not implemented" in stub.run("rpower", "cn1", "cycle").stderr
    proc = stub.run("nodestat")
    assert (proc.returncode, proc.stdout.splitlines()[0]) == (1, "Usage:")
    # cn1 has no boot parameters: powered on (no delay), it never boots
    assert "cn1: status=powering-on\n" in node_status(stub, "cn1")
    assert stub.ok("nodestat", "compute") == "cn1: noping\ncn2: sshd\n"
    assert read_power(stub.state)["cn1"]["boot"]["offline"] is True


def test_rpower_and_nodestat_honour_injections_and_are_recorded(stub: Stub) -> None:
    add_nodes(stub.state, {"cn1": IPMI, "cn2": IPMI})
    inject_failure(stub.state, "rpower", "cn2", once=True)
    inject_failure(stub.state, "nodestat", "cn1", once=True)
    assert stub.run("rpower", "cn1,cn2", "boot").stderr == "Error: injected failure\n"
    assert read_power(stub.state) == {}
    assert stub.run("nodestat", "compute").stderr == "Error: injected failure\n"
    assert stub.ok("rpower", "cn2", "off") == "cn2: off\n"
    assert stub.ok("rpower", "cn1", "off") == "cn1: off\n"
    assert stub.ok("nodestat", "compute") == "cn1: noping\ncn2: noping\n"
    assert [(c["cmd"], c["args"], c["rc"]) for c in read_calls(stub.state)] == [
        ("rpower", ["cn1,cn2", "boot"], 1),
        ("nodestat", ["compute"], 1),
        ("rpower", ["cn2", "off"], 0),
        ("rpower", ["cn1", "off"], 0),
        ("nodestat", ["compute"], 0),
    ]


def test_lsdef_lists_status_with_the_other_node_attributes(stub: Stub) -> None:
    """defls (DBobjectdefs.pm lines 4129-4200): -i attributes in sorted order, one
    `node: attr=value` line each with -c, unset ones empty."""
    bootable(stub, "img")
    add_nodes(stub.state, {"cn1": IPMI, "cn2": dict(IPMI, provmethod="img")})
    stub.ok("nodeset", "cn1", "osimage=img")
    stub.ok("rpower", "cn1", "boot")
    assert wait_for(lambda: booted(stub, "cn1"))
    assert stub.ok("lsdef", "-t", "node", "-i", "provmethod,status,groups", "-c") == (
        "cn1: groups=compute\ncn1: provmethod=img\ncn1: status=booted\n"
        "cn2: groups=compute\ncn2: provmethod=img\ncn2: status=\n"
    )
    with pytest.raises(ValueError, match="no node 'cn9'"):
        set_node_boot(stub.state, "cn9", never=True)
    with pytest.raises(ValueError, match="invalid node name"):
        set_node_boot(stub.state, "cn1.x", never=True)


# ---------------------------------------------------------------------------- genimage


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "rocky8", "img"], "-o, -p and -a options are not allowed when a image name"),
        (["-p", "compute", "img"], "-o, -p and -a options are not allowed when a image name"),
        (["-a", "x86_64", "img"], "-o, -p and -a options are not allowed when a image name"),
        (["-n", "igb", "img"], "xcatstub: genimage -n with an image name makes xCAT write"),
        (["--kerneldir", "/k", "img"], "xcatstub: genimage --kerneldir with an image name"),
        (["img", "other"], "xcatstub: genimage takes one image name"),
        ([], "xcatstub: genimage without an image name is interactive"),
        (["-o", "rocky8", "-p", "compute"], "xcatstub: genimage without an image name"),
        (["unknown"], "Cannot find image 'unknown' from the osimage table."),
    ],
)
def test_genimage_refuses_bad_usage(stub: Stub, args: list[str], message: str) -> None:
    define(stub, "img")
    proc = stub.run("genimage", *args)
    assert proc.returncode == 1
    assert f"Error: {message}" in proc.stderr
    assert not (stub.root / "netboot" / "img" / "rootimg").exists()


def test_genimage_checks_the_definition(stub: Stub) -> None:
    attrs = define(stub, "img")
    Path(attrs["otherpkglist"]).unlink()
    proc = stub.run("genimage", "img")
    assert proc.returncode == 1
    assert f"The otherpkglist specified '{attrs['otherpkglist']}' does not exist!" in proc.stderr
    stub.ok("chdef", "-t", "osimage", "-o", "img", "pkglist=")
    proc = stub.run("genimage", "img")
    assert "A .pkglist file must be specified for image 'img'" in proc.stderr
    stub.ok("chdef", "-t", "osimage", "-o", "img", "provmethod=install", "pkglist=/x")
    proc = stub.run("genimage", "img")
    assert "'img' cannot be used to build diskless image." in proc.stderr


def test_genimage_builds_the_image_from_the_lists(stub: Stub) -> None:
    attrs = define(stub, "img")
    out = stub.ok("genimage", "img")
    assert "the image is generated in" in out
    destdir = Path(attrs["rootimgdir"])
    rootimg = destdir / "rootimg"
    # comments and '-name' entries dropped, includes expanded, 'a,b' split, paths dropped
    assert (rootimg / "etc" / "imagespec-stub-build").read_text() == (
        "bash\nchrony\nvim-minimal\nkernel\nopenssh-server\n@core\n"
    )
    assert (rootimg / "etc" / "imagespec-stub-otherpkgs").read_text() == (
        "slurm\nxcat/xcat-core/xCATsn\n--dracut-network\n"
    )
    assert (destdir / "kernel").is_file()
    assert gzip.decompress((destdir / "initrd-stateless.gz").read_bytes()).startswith(b"xcatstub")
    assert (destdir / "initrd-statelite.gz").is_file()


def test_genimage_runs_postinstall_scripts_with_args_and_env(stub: Stub) -> None:
    log = stub.root / "post.log"
    script = write(
        stub.root / "custom" / "postinstall" / "10-record",
        "#!/bin/sh\n"
        f'echo "args=$*" >> {log}\n'
        f"env | grep ^IMG_ | sort >> {log}\n"
        'touch "$1/etc/postinstall-ran"\n'
        "echo postinstall-output\n",
        mode=0o755,
    )
    attrs = define(stub, "img", postinstall=f"{script} hugepages 2,{script}", kernelver="5.14")
    out = stub.ok("genimage", "img")
    assert "postinstall-output" in out
    rootimg = Path(attrs["rootimgdir"]) / "rootimg"
    assert (rootimg / "etc" / "postinstall-ran").exists()
    lines = log.read_text().splitlines()
    assert lines[0] == f"args={rootimg} rocky8 x86_64 compute hugepages 2"
    env = dict(line.split("=", 1) for line in lines[1:11])
    assert env == {
        "IMG_ARCH": "x86_64",
        "IMG_KERNELVERSION": "5.14",
        "IMG_NAME": "img",
        "IMG_OSVER": "rocky8",
        "IMG_OTHERPKGDIR": attrs["otherpkgdir"],
        "IMG_OTHERPKGLIST": attrs["otherpkglist"],
        "IMG_PKGDIR": attrs["pkgdir"],
        "IMG_PKGLIST": attrs["pkglist"],
        "IMG_PROFILE": "compute",
        "IMG_ROOTIMGDIR": str(rootimg),
    }
    assert lines[11] == f"args={rootimg} rocky8 x86_64 compute"


def test_genimage_fails_with_a_failing_or_unrunnable_postinstall(stub: Stub) -> None:
    """rh/genimage lines 862-871: a postinstall script that is not executable or exits
    non-zero stops genimage with 1 (printed on stdout); genimage.pm line 404 reports it."""
    bad = write(stub.root / "bad", "#!/bin/sh\necho about to fail\nexit 3\n", mode=0o755)
    define(stub, "img", postinstall=str(bad))
    proc = stub.run("genimage", "img")
    assert proc.returncode == 1
    assert f"about to fail\npostinstall script {bad} failed\n" in proc.stdout
    assert proc.stderr == "Error: genimage command failed with rc 1.\n"
    bad.chmod(0o644)  # rendered without mode 0755
    proc = stub.run("genimage", "img")
    assert proc.returncode == 1
    assert f"postinstall script {bad} is not executable\n" in proc.stdout
    assert "about to fail" not in proc.stdout


def test_genimage_installs_into_the_existing_root_and_never_clears_it(stub: Stub) -> None:
    """rh/genimage only creates the root (line 366, `mkpath "$rootimg_dir"`) and installs
    into it (line 504 for the pkglist, lines 611/634/657 for the otherpkglist): nothing of
    an earlier build is removed unless an otherpkglist '-name'/'--name' line erases it."""
    attrs = define(stub, "img")
    stub.ok("genimage", "img")
    rootimg = Path(attrs["rootimgdir"]) / "rootimg"
    first = read_packages(rootimg)
    assert set(first) == {
        "bash",
        "chrony",
        "vim-minimal",
        "kernel",
        "openssh-server",
        "@core",
        "slurm",
        "xCATsn",
    }
    base = stub.root / "custom" / "base.pkglist"
    assert first["chrony"] == f"pkglist {base}:4 chrony"  # the included file's own line
    assert first["@core"] == f"pkglist {attrs['pkglist']}:8 @core"
    assert first["xCATsn"] == f"otherpkglist {attrs['otherpkglist']}:2 xcat/xcat-core/xCATsn"
    (rootimg / "etc" / "left-by-hand").write_text("x\n")
    write(base, "bash\nhtop\n")  # chrony and vim-minimal no longer listed
    write(Path(attrs["otherpkglist"]), "-slurm\nmunge\n--xCATsn\n")
    stub.ok("genimage", "img")
    second = read_packages(rootimg)
    assert set(second) == {
        "bash",
        "chrony",
        "vim-minimal",
        "htop",
        "kernel",
        "openssh-server",
        "@core",
        "munge",
    }
    assert second["chrony"] == first["chrony"]  # still there, still from the first build
    assert (rootimg / "etc" / "left-by-hand").read_text() == "x\n"
    # this run's base list only
    assert (rootimg / "etc" / "imagespec-stub-build").read_text() == (
        "bash\nhtop\nkernel\nopenssh-server\n@core\n"
    )
    assert (rootimg / "etc" / "fstab").read_text().count("#Dummy fstab") == 2  # appended


def test_genimage_passes_package_names_through_the_shell(stub: Stub) -> None:
    """rh/genimage line 504 runs `system("$envlist $yumcmd install $pkgnames")`: names are
    unquoted shell words, so $VAR/${VAR} expand and globs match files of genimage's working
    directory (genimage.pm line 311: `cd $profDir; ./genimage`, the netboot/<family> dir
    holding the file `genimage`).  A glob matching nothing stays literal and dnf finds no
    such package, so genimage fails (lines 505-508)."""
    attrs = define(stub, "img", environvar="PKGVAR=htop")
    write(Path(attrs["pkglist"]), "$PKGVAR\n${PKGVAR}-devel\ngen*\n$UNSET_VAR\n")
    stub.ok("genimage", "img")
    rootimg = Path(attrs["rootimgdir"]) / "rootimg"
    packages = read_packages(rootimg)
    assert {"htop", "htop-devel", "genimage"} <= set(packages)
    assert packages["genimage"] == f"pkglist {attrs['pkglist']}:3 gen*"
    write(Path(attrs["pkglist"]), "bash\nnomatch-*\n")
    proc = stub.run("genimage", "img")
    assert proc.returncode == 1
    assert "No match for argument: nomatch-*" in proc.stdout
    assert "RPM package manager invocation failed" in proc.stdout
    assert "bash" not in read_packages(rootimg)  # the whole transaction failed


def test_env_directives_reach_their_pass_and_environvar_reaches_everything(stub: Stub) -> None:
    """imgutils.pm lines 174-182 collect `#ENV:NAME=value#` per install pass (ENVLIST);
    rh/genimage lines 499-504 and 599-611 put them before that pass's package manager
    command only, so they neither reach other passes nor the postinstall scripts, and a
    name in the same command is expanded before the assignment takes effect.
    osimage.environvar is set in genimage's own environment (lines 438-442), so it reaches
    every package command and the postinstall scripts (lines 846-866)."""
    log = stub.root / "post.env"
    script = write(
        stub.root / "post",
        f'#!/bin/sh\necho "FOO=${{FOO-unset}} BAR=${{BAR-unset}} BAZ=$BAZ" > {log}\n',
        mode=0o755,
    )
    attrs = define(stub, "img", environvar="BAZ=three", postinstall=str(script))
    write(Path(attrs["pkglist"]), "#ENV:FOO=one#\nbash\n$FOO\n#NEW_INSTALL_LIST#\nvim\n")
    write(Path(attrs["otherpkglist"]), "#ENV:BAR=two#\n-old\nslurm\n")
    stub.ok("genimage", "img")
    runs = [
        (t["list"], t["pass"], t["action"], t["packages"], t["env"])
        for t in read_transactions(stub.state)
    ]
    assert runs == [
        ("pkglist", 1, "install", ["bash"], {"BAZ": "three", "FOO": "one"}),
        ("pkglist", 2, "install", ["vim"], {"BAZ": "three"}),
        ("otherpkglist", 1, "erase", ["old"], {"BAR": "two", "BAZ": "three"}),
        ("otherpkglist", 1, "install", ["slurm"], {"BAR": "two", "BAZ": "three"}),
    ]
    assert log.read_text() == "FOO=unset BAR=unset BAZ=three\n"


def test_genimage_writes_attributes_back_into_the_definition(stub: Stub) -> None:
    """rh/genimage collects %updates (permission defaulting to 755 at lines 238-239,
    pkgdir defaulting to /install/<osver>/<arch> at lines 247-248, rootimgdir 254, pkglist
    425, otherpkglist 519, postinstall 844, netdrivers 308-309) and prints them to the
    --tempfile (lines 886-896) after the postinstall scripts ran; genimage.pm
    save_image_data (lines 438-510) writes them into the linuximage table."""
    script = write(stub.root / "post", "#!/bin/sh\nexit 0\n", mode=0o755)
    attrs = define(stub, "img", postinstall=str(script), netdrivers="igb,ixgbe")
    del attrs["pkgdir"]
    stub.ok("chdef", "-t", "osimage", "-o", "img", "pkgdir=")
    before = read_osimages(stub.state)["img"]
    assert "permission" not in before and "pkgdir" not in before
    stub.ok("genimage", "img")
    after = read_osimages(stub.state)["img"]
    assert {k: v for k, v in after.items() if before.get(k) != v} == {
        "permission": "755",
        "pkgdir": "/install/rocky8/x86_64",
    }
    for attr in ("rootimgdir", "pkglist", "otherpkglist", "postinstall", "netdrivers"):
        assert after[attr] == attrs[attr]
    stanza_text = stub.ok("lsdef", "-t", "osimage", "-o", "img", "-z")
    assert "    permission=755\n" in stanza_text
    # a genimage that fails before the end writes nothing back
    define(stub, "bad", postinstall=str(write(stub.root / "fail", "#!/bin/sh\nexit 1\n", 0o755)))
    stub.ok("chdef", "-t", "osimage", "-o", "bad", "pkgdir=")
    assert stub.run("genimage", "bad").returncode == 1
    assert "permission" not in read_osimages(stub.state)["bad"]


def test_kernel_and_initrds_follow_the_kernel_of_the_image(stub: Stub) -> None:
    """rh/genimage lines 712-744: kernelver when set (the pkglist's `kernel` entry then
    becomes kernel-<kernelver>, lines 462-482), else the last boot/vmlinuz-* of the root
    in glob order, is copied to <rootimgdir>/kernel; the initrds are built for it and
    IMG_KERNELVERSION names it (line 851).  genimage.pm lines 407-431 then copy kernel and
    initrds to <tftpdir>/xcat/osimage/<image>/.  The stand-in's kernel file is
    b"xcatstub kernel <version>\\n" ("default" where genimage would use `uname -r`)."""
    attrs = define(stub, "img")
    destdir = Path(attrs["rootimgdir"])
    tftp = stub.state / "tftpboot" / "xcat" / "osimage" / "img"

    def kernel_after_genimage() -> bytes:
        stub.ok("genimage", "img")
        for name in ("kernel", "initrd-stateless.gz", "initrd-statelite.gz"):
            assert (tftp / name).read_bytes() == (destdir / name).read_bytes()
        return (destdir / "kernel").read_bytes()

    write(Path(attrs["pkglist"]), "bash\nkernel-5.14.0-1\n")
    assert kernel_after_genimage() == b"xcatstub kernel 5.14.0-1\n"
    initrd = gzip.decompress((destdir / "initrd-stateless.gz").read_bytes())
    assert initrd == b"xcatstub stateless initrd 5.14.0-1\n"
    write(Path(attrs["pkglist"]), "bash\nkernel-5.14.0-2\n")
    assert kernel_after_genimage() == b"xcatstub kernel 5.14.0-2\n"
    # the root keeps both kernels, and glob order picks the newer one again
    write(Path(attrs["pkglist"]), "bash\nkernel-5.14.0-1\n")
    assert kernel_after_genimage() == b"xcatstub kernel 5.14.0-2\n"
    stub.ok("chdef", "-t", "osimage", "-o", "img", "kernelver=6.1.0", "netdrivers=igb")
    write(Path(attrs["pkglist"]), "bash\nkernel\n")
    assert kernel_after_genimage() == b"xcatstub kernel 6.1.0\n"
    assert "kernel-6.1.0" in read_packages(destdir / "rootimg")
    initrd = gzip.decompress((destdir / "initrd-statelite.gz").read_bytes())
    assert initrd == b"xcatstub statelite initrd 6.1.0\nnetdrivers igb\n"
    other = define(stub, "nokernel")
    write(Path(other["pkglist"]), "bash\n")
    stub.ok("genimage", "nokernel")
    assert (Path(other["rootimgdir"]) / "kernel").read_bytes() == b"xcatstub kernel default\n"


def test_genimage_include_cycle_is_bounded(stub: Stub) -> None:
    attrs = define(stub, "img")
    write(Path(attrs["pkglist"]), "#INCLUDE:img.pkglist#\nbash\n")
    proc = stub.run("genimage", "img")
    assert proc.returncode == 1
    assert "include cycle" in proc.stderr


# ---------------------------------------------------------------------------- packimage


def test_packimage_writes_the_archive_named_by_method_and_compression(stub: Stub) -> None:
    attrs = define(stub, "img")
    destdir = Path(attrs["rootimgdir"])
    proc = stub.run("packimage", "img")
    assert proc.returncode == 1
    assert f"{destdir}/rootimg does not exist, run genimage" in proc.stderr
    stub.ok("genimage", "img")
    stub.ok("packimage", "img")
    manifest = gzip.decompress((destdir / "rootimg.cpio.gz").read_bytes()).decode()
    assert f"exlist={attrs['exlist']} sha256=" in manifest
    assert "exclude ./usr/share/doc*\nexclude +./usr/share/doc/bash*\n" in manifest
    assert f"synclist={attrs['synclists']} sha256=" in manifest
    assert "sync /etc/motd sha256=" in manifest
    assert "(n1)" not in manifest and "/etc/a" not in manifest  # noderange lines skipped
    assert "\npackage bash\npackage chrony\n" in manifest  # what genimage left in the root
    stub.ok("packimage", "-m", "tar", "-c", "xz", "img")
    assert "method=tar" in lzma.decompress((destdir / "rootimg.tar.xz").read_bytes()).decode()
    assert not (destdir / "rootimg.cpio.gz").exists()  # packimage removes the other archives
    stub.ok("packimage", "-m", "squashfs", "img")
    assert sorted(p.name for p in destdir.glob("rootimg.*")) == ["rootimg.sfs"]
    stub.ok("packimage", "--method=cpio", "--compress=xz", "img")
    assert (destdir / "rootimg.cpio.xz").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-c", "bzip2", "img"], "Invalid compress method 'bzip2' requested"),
        (["-m", "zip", "img"], "Invalid archive method 'zip' requested"),
        (["-o", "rocky8", "img"], "-o, -p and -a options are obsoleted"),
        (["-c", "xz"], "An image name is required, use 'packimage <osimage name>'."),
        (["img", "img2"], "xcatstub: packimage takes one image name"),
        (["nope"], "Cannot find image 'nope' from the osimage table."),
    ],
)
def test_packimage_refuses_bad_usage(stub: Stub, args: list[str], message: str) -> None:
    define(stub, "img")
    stub.ok("genimage", "img")
    proc = stub.run("packimage", *args)
    assert proc.returncode == 1
    assert f"Error: {message}" in proc.stderr


def test_packimage_without_arguments_prints_usage_like_xcat(stub: Stub) -> None:
    proc = stub.run("packimage")
    assert proc.returncode == 0
    assert proc.stdout.startswith("Usage:")


def test_packimage_refuses_statelite_and_missing_lists(stub: Stub) -> None:
    define(stub, "lite", provmethod="statelite")
    stub.ok("genimage", "lite")
    proc = stub.run("packimage", "lite")
    assert proc.returncode == 1
    assert "'lite' cannot be used to build diskless image. Make sure osimage.provmethod" in (
        proc.stderr
    )
    attrs = define(stub, "img")
    stub.ok("genimage", "img")
    Path(attrs["synclists"]).unlink()
    proc = stub.run("packimage", "img")
    assert proc.returncode == 1
    assert f"the synclist file {attrs['synclists']} of 'img' does not exist" in proc.stderr
    stub.ok("packimage", "--nosyncfiles", "img")


# ---------------------------------------------------------------------------- liteimg and tables


def litefile_csv(stub: Stub, name: str, body: str) -> Path:
    return write(stub.root / "csv" / name, "#image,file,options,comments,disable\n" + body)


def test_liteimg_writes_the_litefile_rows_of_the_image(stub: Stub) -> None:
    """statelite.pm: the rows come from `ilitefile <image>` (line 269), whose lines are
    `<image>: <options padded to 13> <file>` sorted by file (litetree.pm lines 257-268),
    with an /etc/mtab link row even when no row is listed (lines 414-417), so liteimg
    runs without rows; tmpfs,rw becomes link (line 279) and the lines are saved in
    .statelite/litefile.save (lines 462-467)."""
    attrs = define(stub, "lite", provmethod="statelite")
    proc = stub.run("liteimg", "lite")
    assert proc.returncode == 1 and "rootimg does not exist" in proc.stderr
    stub.ok("genimage", "lite")
    stub.ok("liteimg", "lite")
    destdir = Path(attrs["rootimgdir"])
    save = destdir / "rootimg" / ".statelite" / "litefile.save"
    assert save.read_text() == "lite: link          /etc/mtab\n"
    golden = (GOLDEN / "rocky8-lite.litefile.csv").read_text().replace("rocky8-lite", "lite")
    stub.ok("tabrestore", "-a", str(litefile_csv(stub, "litefile.csv", golden.split("\n", 1)[1])))
    stub.ok("tabrestore", "-a", str(litefile_csv(stub, "litefile.other.csv", '"other","/x",,,\n')))
    stub.ok("liteimg", "lite")
    assert save.read_text() == (
        "lite: link          /etc/adjtime\n"
        "lite: link          /etc/mtab\n"
        "lite: link      /etc/ntp.conf\n"
        "lite: persistent    /var/log/\n"
    )
    rootimg = destdir / "rootimg"
    assert os.readlink(rootimg / "etc" / "ntp.conf") == "../.statelite/tmpfs/etc/ntp.conf"
    assert os.readlink(rootimg / ".statelite" / "tmpfs" / "etc" / "ntp.conf") == (
        "../../../.default/etc/ntp.conf"
    )
    assert (rootimg / ".default" / "var" / "log").is_dir()
    assert gzip.decompress((destdir / "rootimg-statelite.gz").read_bytes()).startswith(b"# xcat")
    proc = stub.run("liteimg", "-o", "rocky8", "lite")
    assert "-o, -p and -a options are not allowed when a image name is specified." in proc.stderr


def test_liteimg_takes_the_rows_of_the_image_its_groups_all_and_null(stub: Stub) -> None:
    """litetree.pm getNodeData (lines 340-360): rows whose image is the osimage's whole
    `groups` value, then rows with no image (getAttribs({image => ''}) asks `image is
    NULL`, Table.pm lines 3846-3852, so a quoted empty "" image is not one), then ALL, then
    the image itself; mergeArrays keeps the last row per file (lines 380-420) and
    getAttribs skips disabled rows (Table.pm lines 3855-3857)."""
    attrs = define(stub, "lite", provmethod="statelite", groups="lite-grp")
    stub.ok("genimage", "lite")
    body = (
        '"lite","/etc/own","link",,\n'
        '"lite","/etc/shared","persistent",,\n'
        '"ALL","/etc/shared","link",,\n'
        '"ALL","/etc/all",,,\n'
        ',"/etc/null","link",,\n'
        '"","/etc/quoted-empty","link",,\n'
        '"lite-grp","/etc/group-row","link",,\n'
        '"other","/etc/other","link",,\n'
        '"lite","/etc/disabled","link",,"1"\n'
        '"lite","/etc/enabled","link",,"no"\n'
    )
    stub.ok("tabrestore", str(litefile_csv(stub, "litefile.csv", body)))
    stub.ok("liteimg", "lite")
    save = Path(attrs["rootimgdir"]) / "rootimg" / ".statelite" / "litefile.save"
    assert save.read_text() == (
        "lite: link      /etc/all\n"
        "lite: link          /etc/enabled\n"
        "lite: link          /etc/group-row\n"
        "lite: link          /etc/mtab\n"
        "lite: link          /etc/null\n"
        "lite: link          /etc/own\n"
        "lite: persistent    /etc/shared\n"
    )


def test_liteimg_adds_etc_mtab_and_rewrites_tmpfs_rw_before_checking(stub: Stub) -> None:
    """litetree.pm lines 397-417: /etc/mtab is always a row (forced to tmpfs,rw when
    listed, added as link otherwise), so it is checked as a child of a listed /etc/;
    statelite.pm line 279 turns tmpfs,rw into link before the checks (lines 311-350)."""
    define(stub, "lite", provmethod="statelite")
    stub.ok("genimage", "lite")
    stub.ok(
        "tabrestore", str(litefile_csv(stub, "litefile.csv", '"lite","/etc/","persistent",,\n'))
    )
    proc = stub.run("liteimg", "lite")
    assert proc.returncode == 1
    assert proc.stderr.endswith("\nError: /etc/mtab should have persistent option like /etc/ \n")
    body = '"lite","/data/","tmpfs,rw",,\n"lite","/data/x","link,ro",,\n'
    stub.ok("tabrestore", str(litefile_csv(stub, "litefile.csv", body)))
    proc = stub.run("liteimg", "lite")
    assert proc.stderr.splitlines()[-1] == (
        'Error: Based on the option of /data/, /data/x should not use "link,ro" as its option'
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # the nearest LISTED ancestor of /a/b/c is /a/ (/a/b/ is not a row)
        (
            '"lite","/a/","link",,\n"lite","/a/b/c","persistent",,\n',
            'Based on the option of /a/, /a/b/c can only use "link"-based options',
        ),
        ('"lite","/a/","ro",,\n"lite","/a/b/c/d","rw",,\n', 'the directory "/a/" should not be'),
        ('"lite","/a/","con",,\n', ' /a/ is directory, don\'t use "con" as its option '),
        ('"lite","/a/","tmpfs,ro",,\n', " /a/ has invalid option. The valid options:"),
        ('"lite","a/b","link",,\n', " a/b is not one absolute path. "),
        # a link child of a non-link directory passes: the check uses Perl's numeric !=
        ('"lite","/s/","persistent",,\n"lite","/s/x","link,persistent",,\n', ""),
    ],
)
def test_liteimg_checks_nesting_against_the_nearest_listed_ancestor(
    stub: Stub, body: str, message: str
) -> None:
    """statelite.pm parseLiteFiles (lines 719-766) files each row under the nearest
    ancestor directory that is itself a row (walking dirname up until exactly one row
    ends with it); the option checks (lines 283-301, 311-350) then compare a directory
    with those rows."""
    define(stub, "lite", provmethod="statelite")
    stub.ok("genimage", "lite")
    stub.ok("tabrestore", str(litefile_csv(stub, "litefile.csv", body)))
    proc = stub.run("liteimg", "lite")
    if message:
        assert proc.returncode == 1
        assert proc.stderr.splitlines()[-1].startswith(f"Error: {message}")
    else:
        assert proc.returncode == 0, proc.stderr


def test_liteimg_and_packimage_copy_plain_synclist_entries_into_the_root(stub: Stub) -> None:
    """statelite.pm lines 235-243 and packimage.pm lines 433-452 run `xdcp -i <rootimg> -F
    <synclist>` (DSHCLI.pm rsync_to_image, lines 4975-5085): plain entries are copied into
    the root, `src -> (noderange) dest` lines are skipped and the first clause header
    ends the list; packimage also substitutes $VAR from environvar (XCAT_OSIMAGE_ENV)."""
    src = stub.root / "files"
    write(src / "motd", "welcome\n")
    write(src / "site.conf", "x=1\n")
    synclist = write(
        stub.root / "sync" / "lite.synclist",
        f"{src}/motd -> /etc/motd\n"
        f"{src}/site.conf -> (n1) /etc/only-n1.conf\n"
        f"{src}/site.conf -> /etc/$SITE/site.conf\n"
        "APPEND:\n"
        f"{src}/motd -> /etc/issue\n",
    )
    attrs = define(stub, "lite", provmethod="statelite", synclists=str(synclist))
    stub.ok("genimage", "lite")
    stub.ok("liteimg", "lite")
    rootimg = Path(attrs["rootimgdir"]) / "rootimg"
    assert (rootimg / "etc" / "motd").read_text() == "welcome\n"
    assert not (rootimg / "etc" / "only-n1.conf").exists()
    assert not (rootimg / "etc" / "issue").exists()
    assert (rootimg / "etc" / "$SITE" / "site.conf").is_file()  # liteimg passes no env
    img = define(stub, "img", synclists=str(synclist), environvar="SITE=cascade")
    stub.ok("genimage", "img")
    stub.ok("packimage", "img")
    root = Path(img["rootimgdir"]) / "rootimg"
    assert (root / "etc" / "cascade" / "site.conf").read_text() == "x=1\n"
    assert (root / "etc" / "motd").read_text() == "welcome\n"


def test_liteimg_recovers_files_of_removed_or_changed_rows(stub: Stub) -> None:
    """statelite.pm lines 366-460: for each row of the previous run's litefile.save that
    is gone or whose option changed, recoverFiles (lines 771-817) deletes the path (any
    option but link*: rm -rf) or, for a link*, puts the .default copy back.  A directory
    changed from persistent to link is deleted, then linked by liteItem (lines 823-900)
    to the .default copy of the FIRST liteimg: what a later build put there is lost."""
    attrs = define(stub, "lite", provmethod="statelite")
    stub.ok("genimage", "lite")
    rootimg = Path(attrs["rootimgdir"]) / "rootimg"
    write(rootimg / "etc" / "ssh" / "sshd_config", "Port 22\n")
    write(rootimg / "var" / "log" / "messages", "boot\n")
    write(rootimg / "etc" / "adjtime", "0.0 0 0.0\n")
    body = (
        '"lite","/etc/ssh/","persistent",,\n'
        '"lite","/var/log/","persistent",,\n'
        '"lite","/etc/adjtime","link",,\n'
    )
    stub.ok("tabrestore", str(litefile_csv(stub, "litefile.csv", body)))
    stub.ok("liteimg", "lite")
    assert (rootimg / "etc" / "adjtime").is_symlink()
    assert (rootimg / "etc" / "ssh" / "sshd_config").read_text() == "Port 22\n"
    write(rootimg / "var" / "log" / "dnf.log", "from the next build\n")
    body = '"lite","/var/log/","tmpfs,rw",,\n'  # /etc/ssh/ and /etc/adjtime rows removed
    stub.ok("tabrestore", str(litefile_csv(stub, "litefile.csv", body)))
    stub.ok("liteimg", "lite")
    assert not (rootimg / "etc" / "ssh").exists()  # gone
    assert (rootimg / "var" / "log").is_symlink()
    assert os.listdir(rootimg / "var" / "log") == ["messages"]  # dnf.log lost
    adjtime = rootimg / "etc" / "adjtime"
    assert not adjtime.is_symlink() and adjtime.read_text() == "0.0 0 0.0\n"  # restored
    assert not (rootimg / ".statelite" / "tmpfs" / "etc" / "adjtime").exists()


def test_packimage_and_liteimg_fall_back_to_legacy_synclists(tmp_path: Path) -> None:
    """SvrUtils.pm getsynclistfile (lines 421-448): without osimage.synclists, packimage
    (packimage.pm line 435) and liteimg (statelite.pm line 235) use the first readable
    <installdir>/custom/netboot/<platform>/<profile>.<os>.<arch>.synclist,
    <profile>.<os>.synclist, then the same for each get_os_search_list entry (rocky8.6,
    rocky8.5 ... rocky8.0, rocky8), then <profile>.<arch>.synclist, <profile>.synclist
    (get_file_name, lines 560-592).  liteimg also copies <installdir>/postscripts into
    /xcatpost (statelite.pm lines 177-183)."""
    install = tmp_path / "install"
    stub = Stub(
        install_stub(tmp_path / "bin", tmp_path / "state", installdir=install),
        tmp_path / "state",
        tmp_path,
    )
    files = tmp_path / "files"
    write(files / "legacy", "legacy\n")
    write(files / "generic", "generic\n")
    custom = install / "custom" / "netboot" / "rocky"
    write(custom / "compute.rocky8.2.synclist", f"{files}/legacy -> /etc/legacy\n")
    write(custom / "compute.synclist", f"{files}/generic -> /etc/generic\n")
    write(install / "postscripts" / "syslog", "#!/bin/sh\n")
    lite = define(stub, "lite", provmethod="statelite", osvers="rocky8.6")
    stub.ok("genimage", "lite")
    proc = stub.run("liteimg", "lite")
    assert (proc.returncode, proc.stderr) == (0, "")
    rootimg = Path(lite["rootimgdir"]) / "rootimg"
    assert (rootimg / "etc" / "legacy").read_text() == "legacy\n"
    assert not (rootimg / "etc" / "generic").exists()
    assert (rootimg / "xcatpost" / "syslog").is_file()
    img = define(stub, "img", synclists="")  # rocky8: only compute.synclist matches
    stub.ok("genimage", "img")
    stub.ok("packimage", "img")
    assert (Path(img["rootimgdir"]) / "rootimg" / "etc" / "generic").read_text() == "generic\n"
    manifest = gzip.decompress((Path(img["rootimgdir"]) / "rootimg.cpio.gz").read_bytes())
    assert f"synclist={custom}/compute.synclist sha256=".encode() in manifest


def test_without_installdir_the_fallback_is_skipped_with_a_warning(stub: Stub) -> None:
    """Without install_stub(installdir=...) the stub cannot know <installdir>, so the
    legacy synclist lookup of SvrUtils.pm getsynclistfile is skipped, said on stderr."""
    define(stub, "lite", provmethod="statelite")
    stub.ok("genimage", "lite")
    proc = stub.run("liteimg", "lite")
    assert proc.returncode == 0
    assert proc.stderr.startswith("Warning: xcatstub: 'lite' has no synclists")


def test_liteimg_refuses_netboot_images_and_bad_litefile_trees(stub: Stub) -> None:
    define(stub, "img")
    proc = stub.run("liteimg", "img")
    assert proc.returncode == 1
    assert "osimage.provmethod is set to statelite" in proc.stderr
    define(stub, "lite", provmethod="statelite")
    stub.ok("genimage", "lite")
    csv = litefile_csv(stub, "litefile.csv", '"lite","/etc/","ro",,\n"lite","/etc/x","rw",,\n')
    stub.ok("tabrestore", str(csv))
    proc = stub.run("liteimg", "lite")
    assert proc.returncode == 1
    assert 'the directory "/etc/" should not be with "ro" or "con"' in proc.stderr


def test_tabrestore_takes_the_table_name_from_the_file_name(stub: Stub) -> None:
    # xCAT's tabrestore strips the basename from the FIRST dot: rocky8-lite.litefile.csv
    # names the table "rocky8-lite".
    proc = stub.run("tabrestore", "-a", str(GOLDEN / "rocky8-lite.litefile.csv"))
    assert proc.returncode == 4
    assert "Error: Unable to open rocky8-lite" in proc.stderr
    proc = stub.run("tabrestore", "-a", str(litefile_csv(stub, "site.csv", "")))
    assert proc.returncode == 1 and "only the litefile table is implemented" in proc.stderr
    assert stub.run("tabrestore").returncode == 2


def test_tabrestore_tabch_tabdump_cycle(stub: Stub) -> None:
    golden = (GOLDEN / "rocky8-lite.litefile.csv").read_text()
    csv = write(stub.root / "in" / "litefile.csv", golden)
    stub.ok("tabrestore", "-a", str(csv))
    stub.ok("tabrestore", "-a", str(litefile_csv(stub, "litefile.csv", '"b","/x","ro",,\n')))
    stub.ok("tabrestore", "-a", str(csv))  # identical rows are kept once
    assert stub.ok("tabdump", "litefile") == golden + '"b","/x","ro",,\n'
    # -a with a changed row of the same (image, file) fails like the SQL primary key
    changed = litefile_csv(stub, "litefile.csv", '"b","/x","rw",,\n"b","/y",,,\n')
    proc = stub.run("tabrestore", "-a", str(changed))
    assert proc.returncode == 4 and "UNIQUE constraint failed" in proc.stderr
    assert len(read_litefile(stub.state)) == 4  # rolled back
    stub.ok("tabch", "-d", "image=rocky8-lite", "litefile")
    assert (
        stub.ok("tabdump", "litefile") == '#image,file,options,comments,disable\n"b","/x","ro",,\n'
    )
    stub.ok("tabrestore", str(changed))  # without -a the table is replaced
    assert [r["file"] for r in read_litefile(stub.state)] == ["/x", "/y"]
    assert read_litefile(stub.state)[1]["options"] is None
    proc = stub.run("tabrestore", str(litefile_csv(stub, "litefile.csv", '"a",b"c",,,\n')))
    assert proc.returncode == 4 and "CSV missing opening" in proc.stderr
    bad_header = write(stub.root / "h" / "litefile.csv", "#image,path\n")
    proc = stub.run("tabrestore", str(bad_header))
    assert "column 'path' should exist, which is not defined in the schema" in proc.stderr


def test_tabrestore_parses_quoted_cells_like_xcat(stub: Stub) -> None:
    body = '"img","/etc/a,b","link",\'x\',"say ""hi"""\n"img","/multi\nline",,,\n'
    stub.ok("tabrestore", str(litefile_csv(stub, "litefile.csv", body)))
    rows = read_litefile(stub.state)
    assert rows[0] == {
        "image": "img",
        "file": "/etc/a,b",
        "options": "link",
        "comments": "'x'",
        "disable": 'say "hi"',
    }
    assert rows[1]["file"] == "/multi\nline"
    dumped = stub.ok("tabdump", "litefile").splitlines()
    assert dumped[1] == '"img","/etc/a,b","link","\'x\'","say ""hi"""'


# ---------------------------------------------------------------------------- boot-time sync


def test_boot_time_sync_refuses_merge_with_a_noderange(stub: Stub) -> None:
    """DSHCLI.pm parse_rsync_input_file_on_MN (lines 5143-5365), as xdcp/updatenode -F
    use it at boot: a `(noderange)` limits a plain line to those nodes, but under MERGE:
    (header at line 5169) bld_and_run_merge takes everything right of `->` as the file
    (line 6204), so `(n1) /etc/passwd` is not one of the four mergeable files and the
    merge is refused for every node (lines 6205-6213)."""
    add_nodes(stub.state, {"n1": {"groups": "g"}, "n2": {"groups": "g"}})
    synclist = write(
        stub.root / "boot.synclist",
        "/s/a -> /etc/a\n/s/b -> (n1) /etc/b\nMERGE:\n/s/passwd -> (n1) /etc/passwd\n",
    )
    proc = stub.run("xdcp", "g", "-F", str(synclist))
    assert proc.returncode == 1
    assert proc.stdout == (
        "n1: rsync /s/a -> /etc/a\nn1: rsync /s/b -> /etc/b\nn2: rsync /s/a -> /etc/a\n"
    )
    assert proc.stderr == (
        "Error: (n1) /etc/passwd is not either /etc/passwd, /etc/group, /etc/gshadow or "
        "/etc/shadow. Those are the only supported files for MERGE\n"
    )
    write(synclist, "MERGE:\n/s/passwd -> /etc/passwd\n")
    assert stub.run("xdcp", "n1", "-F", str(synclist)).returncode == 0


def test_boot_time_sync_runs_append_everywhere_with_garbled_arguments(stub: Stub) -> None:
    """APPEND: bld_and_run_append (DSHCLI.pm lines 6038-6130) builds one parameter
    string of `<file>:<everything right of ->> ` (lines 6049, 6095) and runs
    xdcpappend.sh with it on every node of the command (line 6128), whatever node range
    a line names; on the node the unquoted `(n1)` is a shell syntax error.  Without a
    range, xdcpappend.sh appends <nodesyncfiledir>/append<file> to the target."""
    add_nodes(stub.state, {"n1": {"groups": "g"}, "n2": {"groups": "g"}})
    synclist = write(stub.root / "boot.synclist", "APPEND:\n/s/hosts.add -> (n1) /etc/hosts\n")
    lines = stub.ok("xdcp", "n1,n2", "-F", str(synclist)).splitlines()
    script = "/var/xcat/node/syncfiles/append/opt/xcat/share/xcat/scripts/xdcpappend.sh"
    assert lines[2] == f"n2: xdsh {script} /var/xcat/node/syncfiles /s/hosts.add:(n1) /etc/hosts"
    assert lines[3].startswith("n2: sh: ") and "rror" in lines[3]  # n2 is not even in (n1)
    write(synclist, "APPEND:\n/s/hosts.add -> /etc/hosts\n")
    assert stub.ok("xdcp", "n2", "-F", str(synclist)).splitlines()[1:] == [
        "n2: append /var/xcat/node/syncfiles/append/s/hosts.add >> /etc/hosts"
    ]


# ---------------------------------------------------------------------------- injection, calls


def test_failure_injection(stub: Stub) -> None:
    define(stub, "img")
    define(stub, "img2")
    inject_failure(stub.state, "genimage", "img")
    proc = stub.run("genimage", "img")
    assert (proc.returncode, proc.stderr) == (1, "Error: injected failure\n")
    stub.ok("genimage", "img2")
    inject_failure(stub.state, "packimage", "*", once=True)
    assert stub.run("packimage", "img2").stderr == "Error: injected failure\n"
    stub.ok("packimage", "img2")  # consumed
    clear_failures(stub.state)
    stub.ok("genimage", "img")


def test_calls_are_recorded(stub: Stub) -> None:
    text = stanza("img", {"profile": "p"})
    stub.ok("mkdef", "-z", input=text)
    stub.run("lsdef", "-t", "osimage", "-o", "nope")
    stub.run("genimage", "-o", "x", "img")
    assert read_calls(stub.state) == [
        {"cmd": "mkdef", "args": ["-z"], "stdin": text, "rc": 0},
        {"cmd": "lsdef", "args": ["-t", "osimage", "-o", "nope"], "rc": 1},
        {"cmd": "genimage", "args": ["-o", "x", "img"], "rc": 1},
    ]
