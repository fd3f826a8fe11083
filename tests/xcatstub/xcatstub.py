#!/usr/bin/env python3
"""xcatstub: a stand-in for the xCAT commands imagespec drives on a director.

Usage: xcatstub.py COMMAND [ARGS...]   with XCATSTUB_STATE=<state dir> in the environment.

COMMAND is one of mkdef, chdef, lsdef, rmdef, genimage, packimage, liteimg,
tabrestore, tabch, tabdump, nodeset, xdcp, rpower, nodestat.  The state directory holds
the stub's database:

    osimage.json   {name: {attr: value}}   (objtype is implied)
    node.json      {name: {attr: value}}   (node objects: groups, mac, provmethod, ...)
    bootparams.json {node: {kernel, initrd, kcmdline}}   what nodeset set up to boot
    power.json     {node: {power, boot}}   power state and the boot rpower started
    running.json   {node: {image, provmethod, kernel, initrd, kcmdline, rootimgdir, time}}
                   each node's last completed boot
    nodefaults.json {node: {delay, never, rpower_error, down}}   faults tests set
    litefile.json  [{image, file, options, comments, disable}]   (null for unset cells)
    calls.jsonl    one line per call: {"cmd", "args", "stdin" (when read), "rc"}
    transactions.jsonl  one line per package manager run of genimage
    fail           optional failure injection: lines "COMMAND [NAME|*] [once]"
    tftpboot/      the fake tftp directory unless XCATSTUB_TFTPDIR names another
    xcatroot/      genimage's working directory (share/xcat/netboot/<family>)

genimage installs into the existing <rootimgdir>/rootimg: each package becomes a marker
file rootimg/var/lib/xcatstub/packages/<name> naming the list line that installed it.
packimage and liteimg copy the synclist entries into the root (falling back to
<XCATSTUB_INSTALLDIR>/custom/netboot/<platform>/... without a synclists attribute);
liteimg links, copies and recovers files exactly as statelite.pm does.  `xdcp -i ROOT -F
SYNCLIST` copies into an image; `xdcp NODERANGE -F SYNCLIST` prints what boot-time sync
would do on each node (nothing runs).

`rpower NODERANGE on|off|reset|boot|stat` answers as the ipmi (or, with mgt=kvm, the
kvm) plugin does and starts a boot on on/boot/reset; the boot completes `delay` seconds
later (status booted, running.json), settled lazily by whichever command runs next.
`nodestat NODERANGE` prints sshd for a node that is up and noping for one that is off or
still booting.  Faults per node (delay, never, rpower_error, down) come from
nodefaults.json, read at every call.

Arguments are checked the way xCAT 2.19 (xcat-core HEAD) checks them (DBobjectdefs.pm, genimage.pm,
packimage.pm, statelite.pm, tabutils.pm and the xCAT-client front ends); where the
real command would do something a test can never want (prompt on a terminal, write
outside the test's directories, rewrite a definition behind imagespec's back) the
stub refuses with an "Error: xcatstub: ..." message instead.  Python 3.9+, stdlib only.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import select
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

COMMANDS = (
    "mkdef",
    "chdef",
    "lsdef",
    "rmdef",
    "genimage",
    "packimage",
    "liteimg",
    "tabrestore",
    "tabch",
    "tabdump",
    "nodeset",
    "xdcp",
    "rpower",
    "nodestat",
)
INTERNAL_COMMANDS = ("_pkgmgr",)

# osimage attributes known to xCAT's schema (linuximage, osimage and the AIX/NIM ones),
# so that a typo in a rendered stanza is refused as xCAT refuses it.
OSIMAGE_ATTRS = frozenset(
    [
        "addkcmdline",
        "boottarget",
        "bosinst_data",
        "cfmdir",
        "configdump",
        "crashkernelsize",
        "description",
        "driverupdatesrc",
        "dump",
        "environvar",
        "exlist",
        "fb_script",
        "groups",
        "home",
        "image_data",
        "imagetype",
        "installp_bundle",
        "installto",
        "isdeletable",
        "kerneldir",
        "kernelver",
        "kitcomponents",
        "krpmver",
        "lpp_source",
        "mksysb",
        "netdrivers",
        "nimmethod",
        "nimtype",
        "nfsrootopts",
        "nodebootif",
        "osarch",
        "osdistroname",
        "osname",
        "osupdatename",
        "osvers",
        "otherifce",
        "otherpkgdir",
        "otherpkglist",
        "otherpkgs",
        "paging",
        "partitionfile",
        "permission",
        "pkgdir",
        "pkglist",
        "postbootscripts",
        "postinstall",
        "postscripts",
        "profile",
        "provmethod",
        "res_group",
        "resolv_conf",
        "root",
        "rootfstype",
        "rootimgdir",
        "script",
        "serverrole",
        "shared_home",
        "shared_root",
        "spot",
        "synclists",
        "template",
        "tmp",
        "usercomment",
        "winpepath",
    ]
)

# node attributes of xCAT::Schema (the nodelist part and @nodeattrs), without the key.
NODE_ATTRS = frozenset(
    [
        "addkcmdline",
        "appstatus",
        "appstatustime",
        "arch",
        "authdomain",
        "authkey",
        "authtype",
        "bmc",
        "bmcpassword",
        "bmcport",
        "bmcusername",
        "bmcvlantag",
        "cfgmgr",
        "cfgmgtroles",
        "cfgserver",
        "chain",
        "chassis",
        "cmdmapping",
        "community",
        "cons",
        "conserver",
        "consoleenabled",
        "consoleondemand",
        "consport",
        "cpucount",
        "cputype",
        "currchain",
        "currstate",
        "dhcpinterfaces",
        "disksize",
        "displayname",
        "domainadminpassword",
        "domainadminuser",
        "domaintype",
        "getmac",
        "groups",
        "hcp",
        "height",
        "hidden",
        "hostcluster",
        "hostinterface",
        "hostmanager",
        "hostnames",
        "hosttype",
        "hwtype",
        "id",
        "initrd",
        "installnic",
        "interface",
        "ip",
        "iscsipassword",
        "iscsiserver",
        "iscsitarget",
        "iscsiuserid",
        "kcmdline",
        "kernel",
        "linkports",
        "mac",
        "memory",
        "mgt",
        "micbridge",
        "michost",
        "micid",
        "miconboot",
        "micpowermgt",
        "micvlog",
        "migrationdest",
        "monserver",
        "mpa",
        "mtm",
        "nameservers",
        "netboot",
        "nfsdir",
        "nfsserver",
        "nicaliases",
        "niccustomscripts",
        "nicdevices",
        "nicextraparams",
        "nichostnameprefixes",
        "nichostnamesuffixes",
        "nicips",
        "nicnetworks",
        "nicsadapter",
        "nictypes",
        "nimserver",
        "nodetype",
        "ondiscover",
        "os",
        "osvolume",
        "otherinterfaces",
        "ou",
        "outlet",
        "parent",
        "passwd.HMC",
        "passwd.admin",
        "passwd.celogin",
        "passwd.general",
        "passwd.hscroot",
        "password",
        "pdu",
        "pdutype",
        "postbootscripts",
        "postscripts",
        "power",
        "pprofile",
        "prescripts-begin",
        "prescripts-end",
        "primarynic",
        "primarysn",
        "privkey",
        "privtype",
        "productkey",
        "profile",
        "protocol",
        "provmethod",
        "rack",
        "room",
        "routenames",
        "seclevel",
        "serial",
        "serialflow",
        "serialport",
        "serialspeed",
        "servicenode",
        "setupconserver",
        "setupdhcp",
        "setupftp",
        "setupipforward",
        "setupldap",
        "setupmonserver",
        "setupnameserver",
        "setupnfs",
        "setupnim",
        "setupntp",
        "setupproxydhcp",
        "setuptftp",
        "sfp",
        "side",
        "slot",
        "slotid",
        "slots",
        "snmpauth",
        "snmppassword",
        "snmpprivacy",
        "snmpuser",
        "snmpusername",
        "snmpversion",
        "status",
        "statustime",
        "storagcontroller",
        "storagetype",
        "supernode",
        "supportedarchs",
        "supportproxydhcp",
        "switch",
        "switchinterface",
        "switchport",
        "switchtype",
        "switchvlan",
        "syslog",
        "termport",
        "termserver",
        "tftpdir",
        "tftpserver",
        "unit",
        "updatestatus",
        "updatestatustime",
        "urlpath",
        "usercomment",
        "userid",
        "username",
        "vmbeacon",
        "vmbootorder",
        "vmcfgstore",
        "vmcluster",
        "vmcpus",
        "vmhost",
        "vmmanager",
        "vmmaster",
        "vmmemory",
        "vmnicnicmodel",
        "vmnics",
        "vmothersetting",
        "vmphyslots",
        "vmstorage",
        "vmstoragecache",
        "vmstorageformat",
        "vmstoragemodel",
        "vmtextconsole",
        "vmvirtflags",
        "vmvncport",
        "webport",
        "xcatmaster",
        "zonename",
    ]
)

# Object types xCAT knows; the stub implements osimage and node.
XCAT_OBJTYPES = frozenset(
    [
        "auditlog",
        "boottarget",
        "eventlog",
        "firmware",
        "group",
        "kit",
        "kitcomponent",
        "kitrepo",
        "monitoring",
        "network",
        "node",
        "notification",
        "osdistro",
        "osdistroupdate",
        "osimage",
        "pdu",
        "policy",
        "rack",
        "route",
        "site",
        "taskstate",
        "zone",
        "zvmivp",
    ]
)

LITEFILE_COLS = ("image", "file", "options", "comments", "disable")
LITEFILE_KEYS = ("image", "file")
# A few real xCAT table names, so that a wrong table gets "not implemented" and not
# "no such table".
XCAT_TABLES = frozenset(
    [
        "bootparams",
        "litefile",
        "litetree",
        "linuximage",
        "networks",
        "nodelist",
        "noderes",
        "nodetype",
        "osimage",
        "passwd",
        "policy",
        "postscripts",
        "site",
        "statelite",
    ]
)

STANZA_HEADER = "# <xCAT data object stanza file>"
MAX_INCLUDE_DEPTH = 64


class XcatError(Exception):
    """A failure reported the xCAT way: 'Error: ' lines on stderr and an exit code."""

    def __init__(self, *lines: str, rc: int = 1) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines
        self.rc = rc


class Usage(Exception):
    """Print a usage text and exit with rc (xCAT prints usage for several mistakes)."""

    def __init__(self, text: str, rc: int, stream: str = "stdout") -> None:
        super().__init__(text)
        self.text = text
        self.rc = rc
        self.stream = stream


def stub_error(message: str) -> XcatError:
    return XcatError(f"xcatstub: {message}")


# ---------------------------------------------------------------------------- state


class State:
    """The stub's database in XCATSTUB_STATE, guarded by a file lock."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with open(self.root / ".lock", "a+") as handle:
            deadline = time.monotonic() + 60
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise stub_error(
                            f"state lock {self.root / '.lock'} held for 60 s"
                        ) from None
                    time.sleep(0.02)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _load(self, name: str, default: Any) -> Any:
        path = self.root / name
        if not path.exists():
            return default
        return json.loads(path.read_text(encoding="utf-8"))

    def _save(self, name: str, data: Any) -> None:
        write_atomic(
            self.root / name,
            (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"),
        )

    def objects(self, objtype: str) -> dict[str, dict[str, str]]:
        """The objects of one type: {name: {attr: value}} (osimage.json, node.json)."""
        data: dict[str, dict[str, str]] = self._load(f"{objtype}.json", {})
        return data

    def save_objects(self, objtype: str, data: dict[str, dict[str, str]]) -> None:
        self._save(f"{objtype}.json", data)

    def osimages(self) -> dict[str, dict[str, str]]:
        return self.objects("osimage")

    def save_osimages(self, data: dict[str, dict[str, str]]) -> None:
        self.save_objects("osimage", data)

    def bootparams(self) -> dict[str, dict[str, str]]:
        """What nodeset recorded for each node: {node: {kernel, initrd, kcmdline}}."""
        data: dict[str, dict[str, str]] = self._load("bootparams.json", {})
        return data

    def save_bootparams(self, data: dict[str, dict[str, str]]) -> None:
        self._save("bootparams.json", data)

    def litefile(self) -> list[dict[str, Optional[str]]]:
        data: list[dict[str, Optional[str]]] = self._load("litefile.json", [])
        return data

    def save_litefile(self, rows: list[dict[str, Optional[str]]]) -> None:
        self._save("litefile.json", rows)

    def record(self, entry: dict[str, Any]) -> None:
        self.record_to("calls.jsonl", entry)

    def record_to(self, name: str, entry: dict[str, Any]) -> None:
        """Append one JSON line to a log file of the state directory."""
        line = json.dumps(entry, sort_keys=True) + "\n"
        with open(self.root / name, "a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write(line)
            fcntl.flock(handle, fcntl.LOCK_UN)

    def injected(self, command: str, names: list[str]) -> None:
        """Raise 'injected failure' when the fail file names this command (and image)."""
        path = self.root / "fail"
        if not path.exists():
            return
        with self.locked():
            lines = path.read_text(encoding="utf-8").splitlines()
            for index, raw in enumerate(lines):
                words = raw.split("#", 1)[0].split()
                if not words or words[0] != command:
                    continue
                once = words[-1] == "once"
                target = [w for w in words[1:] if w != "once"]
                if target and target[0] != "*" and target[0] not in names:
                    continue
                if once:
                    del lines[index]
                    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
                raise XcatError("injected failure")


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------- options


class Option:
    def __init__(self, spec: str, takes_arg: bool = False, multi: bool = False) -> None:
        self.names = tuple(spec.split("|"))
        self.key = self.names[0]
        self.takes_arg = takes_arg
        self.multi = multi


def getopts(
    args: list[str], spec: list[Option], *, bundling: bool, pass_through: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """Parse options like Perl's Getopt::Long (permute; bundling as configured).

    Unknown options raise XcatError("Invalid option: ...") unless pass_through, which
    leaves them among the operands as Getopt::Long's pass_through does.
    """
    by_name = {name: opt for opt in spec for name in opt.names}
    found: dict[str, Any] = {}
    operands: list[str] = []

    def store(opt: Option, value: Any) -> None:
        if opt.multi:
            found.setdefault(opt.key, []).append(value)
        else:
            found[opt.key] = value

    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            operands.extend(args[i:])
            break
        if not arg.startswith("-") or arg == "-":
            operands.append(arg)
            continue
        if bundling and not arg.startswith("--"):
            chars = arg[1:]
            j = 0
            while j < len(chars):
                opt = by_name.get(chars[j])
                if opt is None:
                    if pass_through:
                        operands.append(arg)
                        break
                    raise XcatError(f"Invalid option: -{chars[j]}")
                if opt.takes_arg:
                    rest = chars[j + 1 :]
                    if rest:
                        store(opt, rest)
                    elif i < len(args):
                        store(opt, args[i])
                        i += 1
                    else:
                        raise XcatError(f"Option {chars[j]} requires an argument")
                    break
                store(opt, True)
                j += 1
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        opt = by_name.get(name)
        if opt is None:
            if pass_through:
                operands.append(arg)
                continue
            raise XcatError(f"Invalid option: {arg}")
        if opt.takes_arg:
            if eq:
                store(opt, value)
            elif i < len(args):
                store(opt, args[i])
                i += 1
            else:
                raise XcatError(f"Option {name} requires an argument")
        elif eq:
            raise XcatError(f"Option {name} does not take an argument")
        else:
            store(opt, True)
    return found, operands


# ---------------------------------------------------------------------------- stdin


def read_stdin(timeout: float = 30.0) -> Optional[str]:
    """Read standard input the way xCAT's DB command front end (xcatDBcmds) does.

    Without TERM (as over a non-tty ssh session) data is read only if some arrives within
    one second; with TERM set, only when stdin is a pipe.  Returns None when nothing is
    read.  Bounded: gives up after `timeout` seconds of a writer that never closes.
    """
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError, AttributeError):
        return None
    if os.environ.get("TERM"):
        if not stat.S_ISFIFO(mode):
            return None
    else:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            return None
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise stub_error(f"standard input was not closed within {timeout:.0f} s")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    data = b"".join(chunks).decode("utf-8", errors="replace")
    return data or None


# ---------------------------------------------------------------------------- stanzas


def parse_stanzas(text: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    """Parse a stanza file as xCAT's DBobjUtils::readFileInput does (lines 1684-1780).

    Returns (object names in file order, {name: {attr: value}}).  Faithful to xCAT's
    quirks: a line ending in ':' is a header (even `attr=value:`; such an invalid header
    and any other unparsable line make the following attribute lines be ignored until
    the next valid header); only `default-<type>:` is a defaults stanza (line 1727); a
    stanza named `default` gets no attributes; values lose surrounding spaces and
    double quotes.
    """
    names: list[str] = []
    attrs: dict[str, dict[str, str]] = {}
    defaults: dict[str, dict[str, str]] = {}
    look_for_colon = True
    objectname = ""
    default_type = ""
    for line in text.split("\n"):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if re.search(r":\s*$", line):
            look_for_colon = False
            header = line.rstrip()[:-1]
            if "=" in header:
                look_for_colon = True
                continue
            objectname = header.strip()
            match = re.fullmatch(r"default-([^-]+)", objectname)
            if match:
                default_type, objectname = match.group(1), "default"
                continue
            names.append(objectname)
            continue
        match = re.match(r"^\s*(.*?)\s*=\s*(.*)", line)
        if match and not look_for_colon:
            attr, value = match.group(1).strip(), match.group(2).strip()
            value = re.sub(r'^\s*"\s*', "", value)
            value = re.sub(r'\s*"\s*$', "", value)
            if objectname == "default":
                defaults.setdefault(default_type, {})[attr] = value
                continue
            entry = attrs.setdefault(objectname, {})
            entry[attr] = value
            if attr == "objtype":
                entry.update(defaults.get(value, {}))
            continue
        look_for_colon = True
    return names, attrs


# ---------------------------------------------------------------------------- node ranges


def group_members(nodes: dict[str, dict[str, str]], group: str) -> list[str]:
    return [n for n in sorted(nodes) if group in nodes[n].get("groups", "").split(",")]


def expand_range(element: str) -> list[str]:
    """xCAT::NodeRange ranges: cn[001-004] (zero padded as written) and cn001-cn004."""
    match = re.fullmatch(r"(.*?)\[(\d+)-(\d+)\](.*)", element)
    if match:
        first, last, width = int(match.group(2)), int(match.group(3)), len(match.group(2))
        return [f"{match.group(1)}{i:0{width}d}{match.group(4)}" for i in range(first, last + 1)]
    match = re.fullmatch(r"([^\d,]*?)(\d+)-\1(\d+)", element)
    if match:
        first, last, width = int(match.group(2)), int(match.group(3)), len(match.group(2))
        return [f"{match.group(1)}{i:0{width}d}" for i in range(first, last + 1)]
    return [element]


def noderange(
    text: str, nodes: dict[str, dict[str, str]], verify: bool
) -> tuple[list[str], list[str]]:
    """Expand a noderange: comma lists, ranges and group names (xCAT::NodeRange).

    Returns (nodes, missed); with verify, names that are neither nodes nor groups are
    missed instead of returned.
    """
    found: list[str] = []
    missed: list[str] = []
    for element in (e for e in text.split(",") if e):
        members = group_members(nodes, element) if element not in nodes else []
        for name in members or expand_range(element):
            if verify and name not in nodes:
                missed.append(name)
            elif name not in found:
                found.append(name)
    return found, missed


# ---------------------------------------------------------------------------- DB commands

DB_SPEC = [
    Option("all|a"),
    Option("compress|c"),
    Option("dynamic|d"),
    Option("f|force"),
    Option("i", takes_arg=True),
    Option("help|h|?"),
    Option("long|l"),
    Option("short|s"),
    Option("m|minus"),
    Option("n", takes_arg=True),
    Option("o", takes_arg=True),
    Option("p|plus"),
    Option("t", takes_arg=True),
    Option("verbose|V"),
    Option("version|v"),
    Option("w", takes_arg=True, multi=True),
    Option("xml|x"),
    Option("z|stanza"),
    Option("nocache"),
    Option("S"),
    Option("osimage"),
    Option("nics"),
    Option("u"),
    Option("template", takes_arg=True),
    Option("C|cleanup"),
]

DB_USAGE = {
    "mkdef": "Usage: mkdef - Create xCAT data object definitions.\n"
    "  mkdef [-h | --help ] [-t object-types]\n"
    "  mkdef [-V | --verbose] [-t object-types] [-o object-names] [-z|--stanza ]\n"
    "      [-d | --dynamic] [-w attr==val [-w attr=~val] ... ]\n"
    "      [-f | --force] [noderange] [attr=val [attr=val...]]",
    "chdef": "Usage: chdef - Change xCAT data object definitions.\n"
    "  chdef [-h | --help ] [-t object-types]\n"
    "  chdef [-t object-types] [-o object-names] [-n new-name] [node]\n"
    "  chdef [-V | --verbose] [-t object-types] [-o object-names] [-d | --dynamic]\n"
    "      [-z | --stanza] [-m | --minus] [-p | --plus]\n"
    "      [-w attr==val [-w attr=~val] ... ] [noderange] [attr=val [attr=val...]]",
    "lsdef": "Usage: lsdef - List xCAT data object definitions.\n"
    "  lsdef [-h | --help ] [-t object-types]\n"
    "  lsdef [-V | --verbose] [-t object-types] [-o object-names]\n"
    "      [ -l | --long] [-s | --short] [-a | --all] [-z | --stanza ]\n"
    "      [-i attr-list] [-w attr==val [-w attr=~val] ...] [noderange]",
    "rmdef": "Usage: rmdef - Remove xCAT data object definitions.\n"
    "  rmdef [-h | --help ] [-t object-types]\n"
    "  rmdef [-V | --verbose] [-t object-types] [-a | --all] [-o object-names]\n"
    "      [-f | --force] [noderange]",
}

# The object types the stand-in keeps, with their attribute names (xCAT::Schema defspec).
TYPE_ATTRS = {"osimage": OSIMAGE_ATTRS, "node": NODE_ATTRS}
NOT_IMPLEMENTED = {
    "a": "all",
    "d": "dynamic",
    "x": "xml",
    "u": "u",
    "n": "n",
    "template": "template",
    "osimage": "osimage",
    "nics": "nics",
    "nocache": "nocache",
    "C": "C",
    "S": "S",
}
SUMMARY_ERROR = (
    "One or more errors occured when attempting to create or modify xCAT object definitions."
)


class Messages:
    """xCAT's callback messages, printed as the client prints them, with its exit code."""

    def __init__(self) -> None:
        self.rc = 0

    def error(self, *lines: str) -> None:
        sys.stdout.flush()
        for line in lines:
            print(f"Error: {line}", file=sys.stderr)
        self.rc = 1

    def warning(self, *lines: str) -> None:
        sys.stdout.flush()
        for line in lines:
            print(f"Warning: {line}", file=sys.stderr)

    def info(self, *lines: str) -> None:
        for line in lines:
            print(line)

    def node_error(self, node: str, message: str) -> None:
        """MsgUtils report_node_error as the client prints it (Client.pm handle_response)."""
        sys.stdout.flush()
        print(f"{node}: Error: {message}", file=sys.stderr)
        self.rc = 1


class DbRequest:
    """The parsed command line of mkdef/chdef/lsdef/rmdef (DBobjectdefs.pm processArgs,
    lines 411-1500): options, attr=val pairs, the object type and the object names."""

    def __init__(self, state: State, command: str, args: list[str], stdin: Optional[str]):
        self.command = command
        if not args and command == "lsdef":
            args = ["-t", "node", "-s"]  # lines 417-421
        try:
            self.opts, operands = getopts(args, DB_SPEC, bundling=True)
        except XcatError:
            raise XcatError("Invalid option..") from None
        self.check_options()
        self.attrs: dict[str, str] = {}
        positional: list[str] = []
        for operand in operands:
            if "=" in operand:
                match = re.match(r"^\s*(.*?)\s*=\s*(\S*.*)$", operand)  # line 795
                assert match is not None
                self.attrs[match.group(1)] = match.group(2)
            elif positional:
                raise XcatError("noderange can not contain spaces.")
            else:
                positional.append(operand)
        self.stanza_data = stdin if self.opts.get("z") else None
        if stdin is not None and not self.opts.get("z"):
            raise stub_error(
                f"{command}: data on standard input without -z; xCAT would read it as a stanza file"
            )
        self.types = self.object_types()
        self.stanza_names: list[str] = []
        self.stanza_attrs: dict[str, dict[str, str]] = {}
        if self.stanza_data:
            self.stanza_names, self.stanza_attrs = parse_stanzas(self.stanza_data)
        self.names = self.object_names(state, positional)

    def check_options(self) -> None:
        opts, command = self.opts, self.command
        for flag, key in NOT_IMPLEMENTED.items():
            if opts.get(key):
                raise stub_error(f"{command}: option -{flag} is not implemented by the stub")
        if opts.get("w") and command != "lsdef":
            raise stub_error(f"{command}: option -w is only implemented for lsdef")
        if opts.get("help"):
            raise Usage(DB_USAGE[command], 0)
        if opts.get("version"):
            raise Usage(f"{command} - Version 2.19.0 (xcatstub)", 0)
        if opts.get("long") and opts.get("short"):
            raise XcatError("The flags '-l' and '-s' cannot be used together.")
        if opts.get("i") and opts.get("short"):
            raise XcatError("The flags '-i' and '-s' cannot be used together.")
        if opts.get("compress") and not opts.get("i"):
            raise XcatError("The flags '-c' and '-i' must be used together.")
        if command == "rmdef" and any(
            opts.get(k) for k in ("dynamic", "i", "long", "m", "p", "w", "z", "short")
        ):
            raise XcatError("Invalid flag specified, see rmdef manpage for details.")
        if opts.get("i") and command != "lsdef":
            raise XcatError("The '-i' option is only valid for the lsdef command.")

    def object_types(self) -> list[str]:
        """-t (default node when neither -t nor a stanza file is given, line 1017)."""
        value = self.opts.get("t")
        if value is None:
            return [] if self.stanza_data else ["node"]
        types = value.split(",")
        if len(types) > 1 and self.attrs:
            raise XcatError(
                "Cannot combine multiple types with 'att=val' pairs on the command line."
            )
        for objtype in types:
            if objtype not in XCAT_OBJTYPES:
                raise XcatError(f"\nType '{objtype}' is not a valid xCAT object type.")
            if objtype not in TYPE_ATTRS:
                raise stub_error(f"{self.command}: -t {objtype} is not implemented by the stub")
        return types

    def object_names(self, state: State, positional: list[str]) -> list[str]:
        """Names from -o or the noderange (expanded for nodes), else every object of the
        type for lsdef (lines 1154-1260)."""
        objtype = self.types[0] if self.types else ""
        text = self.opts.get("o") or (positional[0] if positional else "")
        self.from_cli = bool(text)
        if text and objtype == "node":
            names, _ = noderange(text, state.objects("node"), verify=False)
            return names
        if text:
            return text.split(",")
        if self.opts.get("t") and self.stanza_data is None:
            if self.command in ("rmdef", "chdef"):
                raise XcatError("No object names were provided.")
            if self.command == "lsdef":
                names = []
                for objtype in self.types:
                    found = sorted(state.objects(objtype))
                    if not found:
                        raise XcatError(f"Could not get objects of type '{objtype}'.")
                    names += found
                return names
        return []


def check_node_names(names: list[str], msgs: Messages, command: str) -> list[str]:
    """mkdef/chdef node name rules (lines 1573-1612 and 3013-3026): no '.', only
    [a-zA-Z0-9-_] (isobjnamevalid, line 4934); capitals only warn."""
    dotted = [n for n in names if "." in n]
    invalid = [n for n in names if n not in dotted and not re.fullmatch(r"[a-zA-Z0-9_-]+", n)]
    if dotted:
        msgs.error(f"The object name '{','.join(dotted)}' is invalid, Cannot use '.' in node name.")
    if invalid:
        msgs.error(
            f"The object name '{','.join(invalid)}' is invalid, please refer to \"man xcatdb\" "
            'for the valid "xCAT Object Name Format"'
        )
    capitals = [n for n in names if re.search(r"[A-Z]", n)]
    if capitals and command == "mkdef" and not (dotted or invalid):
        msgs.warning(
            f"The node name '{','.join(capitals)}' contains capital letters which may not be "
            "resolved correctly by the dns server."
        )
    return [n for n in names if n not in dotted and n not in invalid]


def cli_objects(req: DbRequest, msgs: Messages) -> dict[str, dict[str, str]]:
    """attr=val pairs for each named object, checked against the type (lines 1614-1672)."""
    if not req.attrs:
        return {}
    objtype = req.types[0]
    valid: dict[str, str] = {}
    for attr, value in req.attrs.items():
        if attr not in TYPE_ATTRS[objtype]:
            msgs.error(
                f"'{attr}' is not a valid attribute name for an object type of '{objtype}'.",
                "Skipping to the next attribute.",
            )
            continue
        valid[attr] = value
    return {name: dict(valid, objtype=objtype) for name in req.names}


def file_objects(req: DbRequest, msgs: Messages) -> tuple[dict[str, dict[str, str]], bool]:
    """setFINALattrs for a stanza file (lines 3161-3250): objtype required, attributes
    checked against it.  Returns the objects and whether an error was reported."""
    final: dict[str, dict[str, str]] = {}
    failed = False
    for name in req.stanza_names:
        attrs = req.stanza_attrs.get(name, {})
        objtype = attrs.get("objtype", "")
        if not objtype:
            msgs.error(
                f"\nNo objtype value was specified for '{name}'. Cannot create object definition."
            )
            failed = True
            continue
        if objtype in XCAT_OBJTYPES and objtype not in TYPE_ATTRS:
            raise stub_error(f"objtype={objtype} of '{name}' is not implemented by the stub")
        known = TYPE_ATTRS.get(objtype, frozenset())
        entry = final.setdefault(name, {"objtype": objtype})
        for attr, value in attrs.items():
            if attr != "objtype" and attr not in known:
                # the message names $::objtype, which is unset for stanza input
                msgs.error(f"'{attr}' is not a valid attribute name for an object type of ''.")
                failed = True
            elif attr != "objtype":
                entry[attr] = value
    return final, failed


def check_z_usage(req: DbRequest) -> None:
    """mkdef and chdef refusals about where objects come from (lines 1545-1572)."""
    opts = req.opts
    if opts.get("t") and opts.get("z"):
        raise XcatError("Cannot combine '-t' and '-a', '-z', or '-x' options.")
    if opts.get("z") and req.from_cli:
        raise XcatError(
            "Cannot use '-z' with '-o' or a noderange.",
            f"Example of -z usage:\n\t'cat stanzafile | {req.command} -z'",
        )
    if not req.names and not req.stanza_names:
        raise XcatError("No object names were provided.")


def nfsrootopts_error(attrs: dict[str, str]) -> Optional[str]:
    """SvrUtils.pm _parse_statelite_nfsroot_options (lines 2418-2440), used by mkdef/chdef."""
    if "nfsrootopts" not in attrs or attrs["nfsrootopts"] == "":
        return None
    for option in attrs["nfsrootopts"].split(","):
        if option == "" or re.search(r"\s", option):
            return "nfsrootopts must be a comma-separated list without whitespace or empty options"
        name = option.split("=", 1)[0].lower()
        if name in ("rw", "defaults"):
            return f"nfsrootopts cannot contain '{name}'; statelite NFS roots are always read-only"
    return None


def set_attrs(
    current: dict[str, str], name: str, attrs: dict[str, str], mode: str, msgs: Messages
) -> tuple[bool, bool]:
    """DBobjUtils setobjdefs (lines 1180-1245) for one object: replace, or -p add / -m
    remove list items.  Returns (updated, failed)."""
    updated = failed = False
    for attr, value in attrs.items():
        if attr == "objtype":
            continue
        old = current.get(attr, "")
        if mode == "plus" and old:
            items = old.split(",")
            for item in value.split(","):
                if item not in items:
                    items.append(item)
            value = ",".join(items)
        elif mode == "minus":
            if not old:
                msgs.error(f"No value got for attribute '{attr}' for the '{name}' definition.")
                continue
            missing = [i for i in value.split(",") if i not in old.split(",")]
            if missing:
                msgs.error(
                    *(
                        f"{i} is not in the attribute of '{attr}' for the '{name}' definition."
                        for i in missing
                    )
                )
                failed = True
                continue
            value = ",".join(i for i in old.split(",") if i not in value.split(","))
        if value == "":
            current.pop(attr, None)  # an empty value unsets: lsdef shows only set ones
        else:
            current[attr] = value
        updated = True
    return updated, failed


def cmd_mkdef(state: State, args: list[str], stdin: Optional[str]) -> int:
    """DBobjectdefs.pm defmk (lines 1504-2244)."""
    req = DbRequest(state, "mkdef", args, stdin)
    if req.opts.get("p") or req.opts.get("m"):
        raise XcatError("The '-p' and '-m' options are not valid for the mkdef command.")
    check_z_usage(req)
    msgs = Messages()
    nodes = [n for n in req.names if "node" in req.types] + [
        n for n in req.stanza_names if req.stanza_attrs.get(n, {}).get("objtype", "node") == "node"
    ]
    check_node_names(nodes, msgs, "mkdef")
    if msgs.rc:
        return 1  # lines 1597-1610: return before anything is written
    final = cli_objects(req, msgs)
    from_file, failed = file_objects(req, msgs)
    final.update(from_file)
    if msgs.rc or failed:
        return 1  # lines 1689-1697: any attribute error and nothing is written
    if not final:
        msgs.error(no_attributes_message(req))
        return 1
    state.injected("mkdef", sorted(final))
    error, written = False, 0
    with state.locked():
        dbs = {t: state.objects(t) for t in TYPE_ATTRS}
        for name, attrs in final.items():
            objtype = attrs["objtype"]
            exists = name in dbs.get(objtype, {})
            if exists and not req.opts.get("f"):
                msgs.warning(
                    f"A definition for '{name}' already exists. No changes will be made.  "
                    "Run again with '-f' option to force replace."
                )
                continue
            if objtype == "node" and not attrs.get("groups"):
                msgs.error(
                    f"Attribute 'groups' is not specified for node '{name}', skipping to the "
                    "next node."
                )
                error = True
                continue
            problem = nfsrootopts_error(attrs) if objtype == "osimage" else None
            if problem:
                msgs.error(problem)
                error = True
                continue
            # -f: the old object is removed first (lines 1908-1925), every attribute with it
            new: dict[str, str] = {}
            updated, _ = set_attrs(new, name, attrs, "replace", msgs)
            if updated:
                dbs[objtype][name] = new
                written += 1
            elif exists:
                del dbs[objtype][name]
        for objtype, db in dbs.items():
            state.save_objects(objtype, db)
    if error:
        msgs.error(SUMMARY_ERROR)
        return 1
    if written:
        msgs.info(f"{written} object definitions have been created or modified.")
        return msgs.rc
    msgs.error(f"{written} object definitions have been created or modified.")
    return 1


def no_attributes_message(req: DbRequest) -> str:
    text = "No object definitions have been created or modified: no attributes were specified."
    if "node" in req.types:
        text = text[:-1] + (". The 'groups' attribute is required when creating node definitions.")
    return text


def cmd_chdef(state: State, args: list[str], stdin: Optional[str]) -> int:
    """DBobjectdefs.pm defch (lines 2245-3160)."""
    req = DbRequest(state, "chdef", args, stdin)
    if req.opts.get("f"):
        raise XcatError("The '-f' option is not valid for the chdef command.")
    check_z_usage(req)
    msgs = Messages()
    final = cli_objects(req, msgs)
    from_file, failed = file_objects(req, msgs)
    final.update(from_file)
    error = bool(msgs.rc or failed)
    mode = "plus" if req.opts.get("p") else "minus" if req.opts.get("m") else "replace"
    state.injected("chdef", sorted(final))
    updated_count, created, object_failed = 0, [], False
    with state.locked():
        dbs = {t: state.objects(t) for t in TYPE_ATTRS}
        if "node" in {a["objtype"] for a in final.values()}:
            nodes = [n for n, a in final.items() if a["objtype"] == "node"]
            keep = check_node_names(nodes, msgs, "chdef")
            final = {n: a for n, a in final.items() if a["objtype"] != "node" or n in keep}
        for name, attrs in final.items():
            objtype = attrs["objtype"]
            exists = name in dbs[objtype]
            problem = nfsrootopts_error(attrs) if objtype == "osimage" and mode != "minus" else None
            if problem:
                msgs.error(problem)
                error = True
                continue
            if not exists and objtype == "node" and not attrs.get("groups"):
                msgs.error(
                    f"Attribute 'groups' is not specified for node '{name}', skipping to the "
                    "next node."
                )
                error = True
                continue
            if not exists and mode == "minus":
                msgs.error(
                    f"The '-m' option is not valid since the '{name}' definition does not exist."
                )
                error = True
                continue
            if not exists and objtype == "osimage" and "imagetype" not in attrs:
                attrs = dict(attrs, imagetype="NIM")  # lines 3001-3004
            current = dict(dbs[objtype].get(name, {}))
            updated, bad = set_attrs(current, name, attrs, mode, msgs)
            object_failed = object_failed or bad
            if updated:
                dbs[objtype][name] = current
                updated_count += 1
                if not exists:
                    created.append(name)
        for objtype, db in dbs.items():
            state.save_objects(objtype, db)
    if error:
        msgs.error(SUMMARY_ERROR)
        return 1
    if updated_count:
        msgs.info(f"{updated_count} object definitions have been created or modified.")
    else:
        msgs.info("No object definitions have been created or modified.")
    if created:
        msgs.info(f"New object definitions '{','.join(created)}' have been created.")
    return 1 if object_failed or msgs.rc else 0


def parse_where(values: list[str]) -> list[tuple[str, str, str]]:
    """xCAT::Utils parse_selection_string: attr==val, attr=~re, attr!=val, attr!~re, attr=val."""
    where = []
    for text in values:
        for pattern, kind in (
            (r"^([^=]*)==(.*)$", "match"),
            (r"^([^=]*)=~(.*)$", "regex"),
            (r"^([^=]*)!=(.*)$", "natch"),
            (r"^([^=]*?)!~(.*)$", "negex"),
            (r"^([^=]*)=([^=]+)$", "match"),
        ):
            match = re.match(pattern, text, re.S)
            if match:
                value = match.group(2)
                if kind in ("regex", "negex"):
                    value = re.sub(r"^/|/$", "", value)
                where.append((match.group(1), kind, value))
                break
        else:
            raise XcatError("Incorrect selection string specified with -w flag.")
    return where


def where_matches(attrs: dict[str, str], where: list[tuple[str, str, str]]) -> bool:
    """xCAT::Utils selection_string_match: every condition on a set attribute holds."""
    for attr, kind, value in where:
        if attr not in attrs:
            return False
        have = attrs[attr]
        if (kind == "match" and have != value) or (kind == "natch" and have == value):
            return False
        if kind == "regex" and not re.search(value, have):
            return False
        if kind == "negex" and re.search(value, have):
            return False
    return True


def lsdef_lines(
    req: DbRequest, objtype: str, name: str, attrs: dict[str, str], only: list[str]
) -> list[str]:
    """One object in lsdef's output (defls lines 4103-4280)."""
    opts = req.opts
    if opts.get("z"):
        out = [f"\n{name}:", f"    objtype={objtype}"]
    elif len(req.types) > 1:
        out = [f"Object name: {name}  ({objtype})"]
    elif not opts.get("compress"):
        out = [f"Object name: {name}"]
    else:
        out = []
    for attr in sorted(only or attrs):
        value = attrs.get(attr, "")
        if only and opts.get("compress"):
            out.append(f"{name}: {attr}={value}")
        elif only or value:
            out.append(f"    {attr}={value}")
    return out


def lsdef_attrs(value: str, objtype: str, msgs: Messages) -> list[str]:
    """The -i attributes valid for the type (defls lines 4026-4050)."""
    only: list[str] = []
    for attr in (a for a in value.split(",") if a):
        if attr not in TYPE_ATTRS[objtype]:
            msgs.error(f"'{attr}' is not a valid attribute name for an object type of '{objtype}'.")
        elif attr not in only:
            only.append(attr)
    return only


def lsdef_long(req: DbRequest) -> bool:
    """defls lines 3403-3414: attributes are listed with -l, -i, -z or named objects."""
    opts = req.opts
    named = req.from_cli
    return bool(opts.get("long") or named or opts.get("i") or opts.get("z")) and not opts.get(
        "short"
    )


def cmd_lsdef(state: State, args: list[str], stdin: Optional[str]) -> int:
    """DBobjectdefs.pm defls (lines 3369-4338)."""
    req = DbRequest(state, "lsdef", args, stdin)
    if req.stanza_data is not None:
        raise stub_error("lsdef: reading object names from a stanza file is not implemented")
    opts, msgs = req.opts, Messages()
    where = parse_where(opts.get("w", []))
    long_form = lsdef_long(req)
    out: list[str] = [STANZA_HEADER] if opts.get("z") else []
    total = 0
    for objtype in req.types:
        with state.locked():
            db = state.objects(objtype)
        only = lsdef_attrs(opts.get("i") or "", objtype, msgs)
        if not db:
            msgs.info(f"Could not find any objects of type '{objtype}'.")
            continue
        for name in sorted(set(req.names)):
            if name not in db:
                if req.from_cli:
                    msgs.error(f"Could not find an object named '{name}' of type '{objtype}'.")
                continue
            total += 1
            if where and not where_matches(db[name], where):
                continue
            if long_form:
                out.extend(lsdef_lines(req, objtype, name, db[name], only))
            elif opts.get("z"):
                out.append(f"\n{name}:")
            else:
                out.append(f"{name}  ({objtype})")
    if out:
        print("\n".join(out))
    elif total:
        msgs.info("No object definitions have been found")
    return msgs.rc


def cmd_rmdef(state: State, args: list[str], stdin: Optional[str]) -> int:
    """DBobjectdefs.pm defrm: remove the named objects."""
    req = DbRequest(state, "rmdef", args, stdin)
    if not req.names:
        raise XcatError("No object names were provided.")
    objtype = req.types[0]
    state.injected("rmdef", req.names)
    msgs = Messages()
    removed = 0
    with state.locked():
        db = state.objects(objtype)
        for name in req.names:
            if name in db:
                del db[name]
                removed += 1
            else:
                msgs.error(f"Could not find an object named '{name}' of type '{objtype}'.")
        state.save_objects(objtype, db)
    if removed:
        msgs.info(f"{removed} object definitions have been removed.")
    else:
        msgs.info("No objects have been removed from the xCAT database.")
    return msgs.rc


# ---------------------------------------------------------------------------- package lists

# The special keys of imgutils::get_package_names; every other key is a directory part.
SPECIAL_KEYS = ("PRE_REMOVE", "POST_REMOVE", "ENVLIST", "INCLUDEBAD")
DIRECTIVE_LINE = re.compile(r"^\s*#(INCLUDE:[^#^\n]+#|NEW_INSTALL_LIST#|ENV:[^#^\n]+#)")


class PkgEntry:
    """One package name of a list, with the list line it came from."""

    def __init__(self, name: str, origin: str, raw: str) -> None:
        self.name = name  # after the '-'/'--' prefix and the directory part are dropped
        self.origin = origin  # "path:line"
        self.raw = raw  # the item as split from the joined list text


# {pass: {key: [PkgEntry]}} for package keys, plus ENVLIST/INCLUDEBAD as lists of str
PassTable = dict[int, dict[str, list[Any]]]


def perl_basename(path: str) -> str:
    """File::Basename::basename: trailing slashes are ignored ('a/b/' -> 'b')."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/" if path else ""
    return stripped.rsplit("/", 1)[-1]


def perl_dirname(path: str) -> str:
    """File::Basename::dirname on Unix, which behaves like dirname(1)."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/" if path.startswith("/") else "."
    if "/" not in stripped:
        return "."
    return stripped.rsplit("/", 1)[0].rstrip("/") or "/"


def varsubinline(line: str, env: dict[str, str]) -> str:
    """imgutils.pm varsubinline (lines 14-30): $VAR and ${VAR} replaced when VAR is set."""
    for var in re.findall(r"\$\{?(\w+)\}?", line):
        if var in env:
            line = line.replace("${" + var + "}", env[var]).replace("$" + var, env[var])
    return line


def list_lines(path: str) -> list[tuple[str, int]]:
    """The lines imgutils.pm keeps (lines 135-143): no blanks, no comments but directives."""
    kept = []
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.split("\n"), 1):
        line = line.rstrip()
        if not line.strip():
            continue
        if re.match(r"^\s*#", line) and not DIRECTIVE_LINE.match(line):
            continue
        kept.append((line, number))
    return kept


class Traced:
    """Text with the origin ("path:line") of every character, so includes keep provenance."""

    def __init__(self) -> None:
        self.chars: list[str] = []
        self.origins: list[str] = []

    def add(self, text: str, origin: str) -> None:
        self.chars.extend(text)
        self.origins.extend([origin] * len(text))

    def extend(self, other: Traced) -> None:
        self.chars.extend(other.chars)
        self.origins.extend(other.origins)

    def text(self) -> str:
        return "".join(self.chars)

    def slice(self, start: int, end: int) -> Traced:
        part = Traced()
        part.chars, part.origins = self.chars[start:end], self.origins[start:end]
        return part


def join_lines(lines: list[tuple[str, str]]) -> Traced:
    """The lines joined with ',' as imgutils.pm does (line 147 and include_file)."""
    out = Traced()
    for index, (line, origin) in enumerate(lines):
        if index:
            out.add(",", origin)
        out.add(line, origin)
    return out


def include_text(target: str, idir: str, origin: str, env: dict[str, str]) -> Traced:
    """imgutils.pm include_file (lines 90-118): variables expanded, relative to idir."""
    target = varsubinline(target, env)
    if not target.startswith("/"):
        target = idir + "/" + target
    try:
        lines = list_lines(target)
    except OSError:
        bad = Traced()
        bad.add(f"#INCLUDEBAD:cannot open {target}#", origin)
        return bad
    return join_lines([(line, f"{target}:{number}") for line, number in lines])


def expand_includes(text: Traced, idir: str, top: str, env: dict[str, str]) -> Traced:
    """The #INCLUDE: loop of imgutils.pm (lines 150-158); xCAT never stops on a cycle."""
    pattern = re.compile(r"#INCLUDE:([^#^\n]+)#")
    for _ in range(MAX_INCLUDE_DEPTH):
        plain = text.text()
        if not pattern.search(plain):
            return text
        out, last = Traced(), 0
        for match in pattern.finditer(plain):
            out.extend(text.slice(last, match.start()))
            out.extend(include_text(match.group(1), idir, text.origins[match.start()], env))
            last = match.end()
        out.extend(text.slice(last, len(plain)))
        text = out
    raise stub_error(
        f"#INCLUDE# nesting deeper than {MAX_INCLUDE_DEPTH} from {top} "
        "(xCAT loops forever on an include cycle)"
    )


def split_items(text: Traced) -> list[tuple[str, str]]:
    """split(',', ...) of the joined text: (item, origin of its first character)."""
    items, start = [], 0
    plain = text.text()
    for index, char in enumerate([*plain, ","]):
        if char == ",":
            if index > start:
                items.append((plain[start:index], text.origins[start]))
            start = index + 1
    return items


def classify(items: list[tuple[str, str]], table: PassTable) -> None:
    """imgutils.pm get_package_names (lines 160-205): passes, erase prefixes, directives."""
    number = 1
    for raw, origin in items:
        item = raw
        if item.startswith("--"):
            key, item = "POST_REMOVE", item[2:]
        elif item.startswith("-"):
            key, item = "PRE_REMOVE", item[1:]
        elif item.startswith("#NEW_INSTALL_LIST#"):
            number += 1
            continue
        elif re.match(r"^#(ENV|INCLUDEBAD):([^#^\n]+)#", item):
            match = re.match(r"^#(ENV|INCLUDEBAD):([^#^\n]+)#", item)
            assert match is not None
            kind = "ENVLIST" if match.group(1) == "ENV" else "INCLUDEBAD"
            table.setdefault(number, {}).setdefault(kind, []).append(match.group(2))
            continue
        elif item.startswith("#"):
            continue
        else:
            key = perl_dirname(item)
        entry = PkgEntry(perl_basename(item), origin, raw)
        table.setdefault(number, {}).setdefault(key, []).append(entry)


def package_table(value: str, env: dict[str, str]) -> PassTable:
    """All list files of a pkglist/otherpkglist attribute, as genimage receives them."""
    table: PassTable = {}
    for top in value.split(","):
        if not top or not os.access(top, os.R_OK):
            continue  # imgutils.pm line 131: unreadable files are skipped silently
        lines = [(line, f"{top}:{number}") for line, number in list_lines(top)]
        if lines:
            text = expand_includes(join_lines(lines), perl_dirname(top), top, env)
            classify(split_items(text), table)
    return table


def package_keys(passes: dict[str, list[Any]]) -> list[str]:
    return [key for key in passes if key not in SPECIAL_KEYS]


# ---------------------------------------------------------------------------- image helpers


def lookup_image(state: State, name: str) -> dict[str, str]:
    with state.locked():
        db = state.osimages()
    if name not in db:
        raise XcatError(f"Cannot find image '{name}' from the osimage table.")
    return dict(db[name])


def require_basics(name: str, image: dict[str, str]) -> None:
    if not all(image.get(k) for k in ("osvers", "osarch", "profile", "provmethod")):
        raise XcatError(
            "osimage.osvers, osimage.osarch, osimage.profile and osimage.provmethod must be "
            f"specified for the image {name} in the database."
        )


def image_dir(name: str, image: dict[str, str]) -> Path:
    rootimgdir = image.get("rootimgdir", "")
    if not rootimgdir:
        raise stub_error(
            f"osimage '{name}' has no rootimgdir; xCAT would build under "
            f"<installdir>/netboot/{image.get('osvers')}/{image.get('osarch')}/"
            f"{image.get('profile')}, which the stub refuses to write"
        )
    if not os.path.isabs(rootimgdir):
        raise stub_error(f"rootimgdir '{rootimgdir}' of '{name}' is not an absolute path")
    return Path(rootimgdir)


def split_files(value: str) -> list[str]:
    return [f for f in value.split(",") if f.strip()]


def sha256_file(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def parse_exlist(path: str) -> list[str]:
    """exlist patterns as packimage reads them (inline comments stripped, includes expanded)."""
    base = Path(path).parent
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    for _ in range(MAX_INCLUDE_DEPTH):
        match = re.search(r"#INCLUDE:([^#\n]+)#", text)
        if not match:
            break
        target = match.group(1)
        resolved = Path(target) if os.path.isabs(target) else base / target
        try:
            body = "\n".join(
                line.rstrip()
                for line in resolved.read_text(encoding="utf-8").splitlines()
                if line.strip()
            )
        except OSError:
            body = ""  # xCAT silently drops a missing exlist include
        text = text[: match.start()] + body + text[match.end() :]
    patterns = []
    for line in text.splitlines():
        line = re.sub(r"\s*#.*", "", line)
        if line.strip():
            patterns.append(line)
    return patterns


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as handle:
        handle.write(data)
    return buf.getvalue()


# ---------------------------------------------------------------------------- genimage

GENIMAGE_SPEC = [
    Option("a", takes_arg=True),
    Option("p", takes_arg=True),
    Option("o", takes_arg=True),
    Option("n", takes_arg=True),
    Option("i", takes_arg=True),
    Option("r", takes_arg=True),
    Option("l", takes_arg=True),
    Option("t", takes_arg=True),
    Option("k", takes_arg=True),
    Option("g", takes_arg=True),
    Option("m", takes_arg=True),
    Option("permission", takes_arg=True),
    Option("kerneldir", takes_arg=True),
    Option("interactive"),
    Option("onlyinitrd"),
    Option("dryrun"),
    Option("ignorekernelchk"),
    Option("noupdate"),
    Option("help|h"),
    Option("version|v"),
]

GENIMAGE_USAGE = (
    "Usage:\n    genimage\n\n    genimage --dryrun\n\n"
    "    genimage [-o <osver>] [-a <arch>] [-p <profile>] [-i <nodebootif>] "
    "[-n <nodenetdrivers>] [--onlyinitrd] [-r <otherifaces>] [-k <kernelver>] "
    "[-g <krpmver>] [-m statelite] [-l rootlimitsize] [-t tmplimitsize] "
    "[--permission <permission>] [--interactive] [--dryrun] [--noupdate] <imagename>\n"
)

# Options genimage accepts with an image name but writes back into the definition.
GENIMAGE_WRITEBACK = {
    "n": "netdrivers",
    "i": "nodebootif",
    "r": "otherifce",
    "k": "kernelver",
    "g": "krpmver",
    "permission": "permission",
    "kerneldir": "kerneldir",
    "l": "rootlimit",
    "t": "tmplimit",
    "m": "mode",
}

POSTINSTALL_TIMEOUT = float(os.environ.get("XCATSTUB_POSTINSTALL_TIMEOUT", "300"))
PACKAGES_DIR = "var/lib/xcatstub/packages"
# Names of files in xCAT's share/xcat/netboot/<family> directory, genimage's working
# directory, so that a glob in a package name can match them as it would on a director.
NETBOOT_DIR_FILES = ("genimage", "compute.pkglist", "compute.exlist", "service.pkglist")
SHELL_SPECIALS = re.compile(r"[\s'\"\\$`;&|<>(){}*?\[\]~]")


class Genimage:
    """One genimage run: the image, its directories and the environment genimage builds."""

    def __init__(self, state: State, name: str, image: dict[str, str]) -> None:
        self.state = state
        self.name = name
        self.image = image
        self.destdir = image_dir(name, image)
        self.rootimg = self.destdir / "rootimg"
        self.osvers, self.osarch = image["osvers"], image["osarch"]
        self.profile = image["profile"]
        # rh/genimage line 51 hard-codes /install; lines 247-248 default pkgdir from it
        self.pkgdir = image.get("pkgdir") or f"/install/{self.osvers}/{self.osarch}"
        self.otherpkgdir = (
            image.get("otherpkgdir") or f"/install/post/otherpkgs/{self.osvers}/{self.osarch}"
        )
        self.environvar = environvar_pairs(name, image.get("environvar", ""))
        self.env = dict(os.environ, **self.environvar)
        self.kernelver = image.get("kernelver", "")

    def family(self) -> str:
        """genimage.pm lines 276-281: the netboot/<family> directory genimage runs in."""
        family = re.sub(r"[\d.]", "", self.osvers)
        return "rh" if "rh" in family else family

    def workdir(self) -> Path:
        """genimage's working directory (genimage.pm line 311 `cd $profDir`), in the state."""
        path = self.state.root / "xcatroot" / "share" / "xcat" / "netboot" / self.family()
        path.mkdir(parents=True, exist_ok=True)
        for name in NETBOOT_DIR_FILES:
            (path / name).touch()
        return path


def environvar_pairs(name: str, value: str) -> dict[str, str]:
    """osimage.environvar as rh/genimage parses `--env` (lines 438-442): KEY=VALUE,...

    genimage.pm line 328 passes the value unquoted through a shell; the stub refuses what
    that shell would change instead of guessing.
    """
    if SHELL_SPECIALS.search(value):
        raise stub_error(
            f"environvar of '{name}' is {value!r}: genimage.pm passes it unquoted through a "
            "shell (`--env $envar`), which would split or expand it"
        )
    pairs = {}
    for entry in value.split(","):
        fields = entry.split("=")
        key, val = fields[0].strip(), (fields[1].strip() if len(fields) > 1 else "")
        if key:
            pairs[key] = val  # split('=') keeps only the first two fields: A=b=c is A=b
    return pairs


def el_major(osvers: str) -> Optional[int]:
    """rh/genimage el_major_version (lines 95-105)."""
    match = re.match(r"^(?:rhels?|centos|rocky|alma(?:linux)?|ol)\D*(\d+)", osvers)
    return int(match.group(1)) if match else None


def pkgmgr_command(run: Genimage, internal: bool) -> str:
    """rh/genimage rpm_installroot_command (lines 107-125) plus the --enablerepo options.

    The internal form runs the stub's package manager; the other is what genimage prints.
    """
    major = el_major(run.osvers)
    manager = "dnf" if major is not None and major > 7 else "yum"
    if internal:
        interpreter = shlex.quote(sys.executable or "python3")
        manager = f"{interpreter} -I -S {shlex.quote(str(Path(__file__).resolve()))} _pkgmgr"
    # the root path is not quoted, as in genimage
    cmd = (
        f"{manager} -y -c /tmp/genimage.{os.getpid()}.yum.conf --installroot={run.rootimg}/ "
        "--disablerepo=* "
    )
    if major is not None and major > 7:
        cmd += f"--releasever={major} --setopt=module_platform_id=platform:el{major} "
    return cmd + f"--enablerepo={run.osvers}-{run.osarch}-0 "


def run_pkgmgr(
    run: Genimage,
    kind: str,
    number: int,
    action: str,
    words: list[tuple[str, PkgEntry]],
    envlist: list[str],
    extra: str = "",
) -> int:
    """Run one package manager transaction through sh, exactly as genimage builds it.

    genimage joins the names unquoted into a shell command (rh/genimage line 504 for the
    pkglist, lines 611, 634 and 657 for the otherpkglist), so names go through word
    splitting, $VAR expansion and globbing in genimage's working directory, and the
    `#ENV:` assignments of the pass prefix the command: they reach that command only.
    Each entry is preceded by an origin token so the stand-in can tell which line put a
    package there; the printed command leaves the tokens out.
    """
    env_prefix = " ".join(envlist)
    shown = " ".join(word for word, _ in words)
    print(f"{env_prefix} {pkgmgr_command(run, False)}{extra}{action} {shown}", flush=True)
    origins, tokens = [], []
    for word, entry in words:
        tokens += [f"--xcatstub-origin={len(origins)}", word]
        origins.append(f"{kind} {entry.origin} {entry.raw.strip()}")
    context = run.state.root / f".pkgctx.{os.getpid()}.json"
    report = sorted(set(run.environvar) | {e.split("=", 1)[0] for e in envlist})
    body = {
        "image": run.name,
        "kind": kind,
        "pass": number,
        "origins": origins,
        "report_env": report,
    }
    write_atomic(context, json.dumps(body).encode("utf-8"))
    cmd = f"{env_prefix} {pkgmgr_command(run, True)}{extra}{action} {' '.join(tokens)}"
    env = dict(run.env, XCATSTUB_PKGCTX=str(context))
    try:
        proc = subprocess.run(
            ["/bin/sh", "-c", cmd],
            cwd=str(run.workdir()),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=POSTINSTALL_TIMEOUT,
        )
    finally:
        context.unlink(missing_ok=True)
    sys.stdout.write(proc.stdout.decode("utf-8", errors="replace"))
    sys.stdout.flush()
    return proc.returncode


def install_words(run: Genimage, passes: dict[str, list[Any]], base: bool) -> list[Any]:
    """The words genimage puts after `install` for one pass (rh/genimage lines 452-497)."""
    words = []
    krpmver = run.image.get("krpmver", "")
    for key in package_keys(passes):
        for entry in passes[key]:
            word = entry.name
            if (
                base
                and run.kernelver
                and re.fullmatch(r"kernel(-headers|-devel|-bootwrapper|-tools)?", word)
            ):
                word = f"{word}-{krpmver or run.kernelver}"  # line 466-470
            elif base and word.startswith("@"):
                word = f'"{word}"'  # line 490: groups are quoted in the base pkglist only
            words.append((word, entry))
    return words


def fail_includebad(passes: dict[str, list[Any]]) -> None:
    if "INCLUDEBAD" in passes:
        print("Unable to open the following pkglist files:\n" + "\n".join(passes["INCLUDEBAD"]))
        raise XcatError("genimage command failed with rc 1.")


def install_pkglist(run: Genimage) -> list[str]:
    """The base pkglist passes (rh/genimage lines 446-510); '-name' entries are ignored."""
    table = package_table(run.image["pkglist"], run.env)
    names = []
    for number in sorted(table):
        passes = table[number]
        fail_includebad(passes)
        words = install_words(run, passes, base=True)
        names += [entry.name for _, entry in words]
        if run_pkgmgr(run, "pkglist", number, "install", words, passes.get("ENVLIST", [])):
            print("RPM package manager invocation failed")
            raise XcatError("genimage command failed with rc 1.")
    return names


def install_otherpkglist(run: Genimage) -> list[str]:
    """The otherpkglist passes (rh/genimage lines 513-680): erase, install, erase."""
    table = package_table(run.image.get("otherpkglist", ""), run.env)
    if not table:
        return []
    local = [d for d in run.otherpkgdir.split(",") if not re.match(r"^(https?|ftp):", d)]
    if len(local) > 1:
        print("genimage: at most only 1 local dir in otherpkgdir is supported.")
        raise XcatError("genimage command failed with rc 1.")
    for number in sorted(table):
        fail_includebad(table[number])  # checked for every pass before anything runs
    raw = []
    for number in sorted(table):
        passes = table[number]
        envlist = passes.get("ENVLIST", [])
        for key, action in (
            ("PRE_REMOVE", "erase"),
            ("install", "install"),
            ("POST_REMOVE", "erase"),
        ):
            if key == "install":
                words = install_words(run, passes, base=False)
                raw += [entry.raw for _, entry in words]
                if not words:
                    print("No Packages marked for install")
                    continue
                if run_pkgmgr(run, "otherpkglist", number, action, words, envlist):
                    print("RPM package manager invocation failed")
                    raise XcatError("genimage command failed with rc 1.")
            elif passes.get(key):
                words = [(entry.name, entry) for entry in passes[key]]
                raw += [entry.raw for entry in passes[key]]
                run_pkgmgr(run, "otherpkglist", number, action, words, envlist)  # rc ignored
    return raw


def detect_kernel(run: Genimage) -> str:
    """The kernel version genimage uses (rh/genimage lines 712-729).

    kernelver if set, else the last `boot/vmlinuz-*` of the root in glob order, else the
    last `lib/modules/*`; where genimage falls back to `uname -r` the stand-in says
    "default".  The root is never cleared, so kernels of earlier builds count too.
    """
    if run.kernelver:
        return run.kernelver
    boot = [p.name[len("vmlinuz-") :] for p in (run.rootimg / "boot").glob("vmlinuz-*")]
    if not boot and (run.rootimg / "lib" / "modules").is_dir():
        boot = [p.name for p in (run.rootimg / "lib" / "modules").iterdir()]
    return sorted(boot, key=lambda s: (s.lower(), s))[-1] if boot else "default"


def kernel_bytes(version: str) -> bytes:
    return f"xcatstub kernel {version}\n".encode()


def copy_kernel(run: Genimage, version: str) -> None:
    """rh/genimage lines 733-744: the root's kernel file becomes <rootimgdir>/kernel."""
    for candidate in (
        f"boot/vmlinux-{version}",
        f"boot/vmlinuz-{version}",
        f"boot/image-{version}",
        f"lib/modules/{version}/vmlinuz",
    ):
        if (run.rootimg / candidate).is_file():
            write_atomic(run.destdir / "kernel", (run.rootimg / candidate).read_bytes())
            return
    # xCAT dies here ("couldn't find the kernel file matched"); the stand-in writes one
    write_atomic(run.destdir / "kernel", kernel_bytes(version))


def postinstall_env(run: Genimage, version: str) -> dict[str, str]:
    """rh/genimage lines 846-857: IMG_* variables, each only when not empty."""
    env = dict(run.env)
    values = {
        "IMG_NAME": run.name,
        "IMG_ARCH": run.osarch,
        "IMG_OSVER": run.osvers,
        "IMG_KERNELVERSION": version,
        "IMG_PROFILE": run.profile,
        "IMG_PKGLIST": run.image.get("pkglist", ""),
        "IMG_PKGDIR": run.pkgdir,
        "IMG_OTHERPKGLIST": run.image.get("otherpkglist", ""),
        "IMG_OTHERPKGDIR": run.otherpkgdir,
        "IMG_ROOTIMGDIR": str(run.rootimg),
    }
    env.update({k: v for k, v in values.items() if v})
    return env


def run_postinstall(run: Genimage, version: str) -> None:
    """rh/genimage lines 860-874: each script must be executable; a failure stops genimage."""
    env = postinstall_env(run, version)
    for raw in run.image.get("postinstall", "").split(","):
        words = raw.split()
        if not words:
            continue
        if not os.access(words[0], os.X_OK):
            print(f"postinstall script {words[0]} is not executable", flush=True)
            raise XcatError("genimage command failed with rc 1.")
        argv = [words[0], str(run.rootimg), run.osvers, run.osarch, run.profile, *words[1:]]
        try:
            proc = subprocess.run(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=POSTINSTALL_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise stub_error(
                f"postinstall script {words[0]} did not finish within {POSTINSTALL_TIMEOUT:.0f} s"
            ) from None
        sys.stdout.write(proc.stdout.decode("utf-8", errors="replace"))
        if proc.returncode != 0:
            print(f"postinstall script {words[0]} failed", flush=True)
            raise XcatError("genimage command failed with rc 1.")
    sys.stdout.flush()


def writeback_values(run: Genimage) -> dict[str, str]:
    """What rh/genimage reports for the linuximage table (%updates, lines 234-309, 425,
    519, 844) and genimage.pm save_image_data (lines 438-510) writes back."""
    updates = {
        "permission": run.image.get("permission") or "755",  # lines 238-239
        "pkgdir": run.pkgdir,  # line 248
        "rootimgdir": str(run.destdir),  # line 254
        "pkglist": run.image["pkglist"],  # line 425
    }
    for attr in ("otherpkglist", "postinstall", "netdrivers"):  # lines 519, 844, 308-309
        if run.image.get(attr):
            updates[attr] = run.image[attr]
    # the values travel as one 'k::v::k::v' line (lines 886-896) and are split on '::'
    line = "::".join(part for pair in updates.items() for part in pair)
    fields = line.split("::")
    return {fields[i]: fields[i + 1] for i in range(0, len(fields) - 1, 2)}


def save_writeback(run: Genimage) -> None:
    updates = writeback_values(run)
    with run.state.locked():
        db = run.state.osimages()
        entry = db.setdefault(run.name, {})
        entry.update({k: v for k, v in updates.items() if v})
        run.state.save_osimages(db)


def write_statelite_dirs(rootimg: Path) -> None:
    """rh/genimage lines 945-962: statelite mount points and the rc scripts."""
    for sub in (".statelite", ".sllocal/localmnt", ".sllocal/log", "etc/init.d"):
        (rootimg / sub).mkdir(parents=True, exist_ok=True)
    for script in ("statelite", "localdisk"):
        (rootimg / "etc" / "init.d" / script).write_text(f"# xcatstub rc.{script}\n")


def write_boot_files(run: Genimage, version: str) -> None:
    """The initrds genimage builds (rh/genimage lines 1013-1018), from the kernel version."""
    drivers = run.image.get("netdrivers", "")
    for flavour in ("stateless", "statelite"):
        body = f"xcatstub {flavour} initrd {version}\n"
        if drivers:
            body += f"netdrivers {drivers}\n"
        write_atomic(run.destdir / f"initrd-{flavour}.gz", gzip_bytes(body.encode()))


def tftp_dir(state: State) -> Path:
    return Path(os.environ.get("XCATSTUB_TFTPDIR") or state.root / "tftpboot")


def copy_to_tftp(run: Genimage) -> None:
    """genimage.pm lines 407-431: after a good genimage the initrds and the kernel go to
    <tftpdir>/xcat/osimage/<image>/, so nodes booting that image get them."""
    target = tftp_dir(run.state) / "xcat" / "osimage" / run.name
    target.mkdir(parents=True, exist_ok=True)
    for name in ("initrd-stateless.gz", "initrd-statelite.gz", "kernel"):
        if (run.destdir / name).is_file():
            write_atomic(target / name, (run.destdir / name).read_bytes())


def check_genimage_args(opts: dict[str, Any], operands: list[str]) -> str:
    """genimage's refusals before the image is read; returns the image name."""
    if opts.get("help"):
        raise Usage(GENIMAGE_USAGE, 0)
    if opts.get("version"):
        raise Usage("Version 2.19.0 (xcatstub)", 0)
    if not operands:
        if any(opts.get(k) for k in ("o", "p", "a")):
            raise stub_error(
                "genimage without an image name (the old -o/-p/-a form) is not implemented"
            )
        raise stub_error(
            "genimage without an image name is interactive in xCAT (it would wait for answers "
            "on standard input)"
        )
    if len(operands) > 1:
        raise stub_error(
            f"genimage takes one image name, got {' '.join(operands)} (xCAT would silently "
            "ignore all but the first)"
        )
    if any(opts.get(k) for k in ("o", "p", "a")):
        raise XcatError("-o, -p and -a options are not allowed when a image name is specified.")
    for flag, attr in GENIMAGE_WRITEBACK.items():
        if opts.get(flag) is not None:
            dash = "--" if len(flag) > 1 else "-"
            raise stub_error(
                f"genimage {dash}{flag} with an image name makes xCAT write {attr} back into "
                "the osimage definition; imagespec must define the image instead"
            )
    if opts.get("interactive"):
        raise stub_error("genimage --interactive would wait on a terminal")
    return operands[0]


def check_genimage_image(name: str, image: dict[str, str]) -> None:
    """genimage.pm lines 142-206: the definition checks made before genimage runs."""
    require_basics(name, image)
    if image["provmethod"] not in ("netboot", "statelite"):
        raise XcatError(
            f"'{name}' cannot be used to build diskless image. Make sure osimage.provmethod "
            "is 'netboot'."
        )
    if not image.get("pkglist"):
        raise XcatError(
            f"A .pkglist file must be specified for image '{name}' in the linuximage table."
        )
    for attr in ("pkglist", "otherpkglist"):
        for path in split_files(image.get(attr, "")):
            if not os.access(path, os.R_OK):
                raise XcatError(f"The {attr} specified '{path}' does not exist!")
    for raw in image.get("postinstall", "").split(","):
        words = raw.split()
        if words and not os.access(words[0], os.R_OK):
            raise XcatError(f"The postinstall_filename specified '{words[0]}' does not exist!")


def install_packages(run: Genimage) -> None:
    """The package part of genimage (rh/genimage lines 366-690): into the existing root.

    genimage only creates the root (mkpath, line 366) and never empties it, so packages
    of earlier runs stay whether or not they are still listed.
    """
    run.rootimg.mkdir(parents=True, exist_ok=True)
    (run.rootimg / "etc").mkdir(exist_ok=True)
    with open(run.rootimg / "etc" / "fstab", "a", encoding="utf-8") as handle:
        handle.write("#Dummy fstab for rpm postscripts to see\n")  # lines 401-404
    (run.rootimg / "var" / "lib" / "yum").mkdir(parents=True, exist_ok=True)
    names = install_pkglist(run)
    others = install_otherpkglist(run)
    # this run's lists, for tests that want them (the packages are in PACKAGES_DIR)
    (run.rootimg / "etc" / "imagespec-stub-build").write_text("".join(n + "\n" for n in names))
    (run.rootimg / "etc" / "imagespec-stub-otherpkgs").write_text(
        "".join(r.strip() + "\n" for r in others)
    )


def cmd_genimage(state: State, args: list[str]) -> int:
    try:
        opts, operands = getopts(args, GENIMAGE_SPEC, bundling=False)
    except XcatError:
        raise Usage(GENIMAGE_USAGE, 1) from None
    name = check_genimage_args(opts, operands)
    image = lookup_image(state, name)
    check_genimage_image(name, image)
    run = Genimage(state, name, image)
    print(
        f"cd /opt/xcat/share/xcat/netboot/{run.family()}; ./genimage -a {run.osarch} "
        f"-o {run.osvers} -p {run.profile} --pkglist {image['pkglist']} "
        f"--rootimgdir {run.destdir} {name}",
        flush=True,
    )
    if opts.get("dryrun"):
        return 0
    state.injected("genimage", [name])
    if opts.get("onlyinitrd"):
        if not run.rootimg.is_dir():
            print(
                f'the root image directory "{run.rootimg}"does not exist, please run '
                f'"genimage {name}" to generate the root image directory first!'
            )
            raise XcatError("genimage command failed with rc 1.")
    else:
        install_packages(run)
    version = detect_kernel(run)
    copy_kernel(run, version)
    run_postinstall(run, version)
    save_writeback(run)
    write_statelite_dirs(run.rootimg)
    write_boot_files(run, version)
    copy_to_tftp(run)
    print(f"the image is generated in {run.rootimg} (kernel {version})")
    return 0


# ---------------------------------------------------------------------------- package manager


def pkgmgr_args(args: list[str]) -> tuple[dict[str, str], str, list[tuple[str, int]]]:
    """Split the stand-in package manager's command line: options, action, names+origin."""
    options: dict[str, str] = {}
    action, names, origin, i = "", [], -1, 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg.startswith("--xcatstub-origin="):
            origin = int(arg.split("=", 1)[1])
        elif arg == "-c":
            i += 1
        elif arg.startswith("-"):
            known = (
                "-y",
                "--installroot=",
                "--disablerepo=",
                "--enablerepo=",
                "--releasever=",
                "--setopt=",
                "--exclude=",
            )
            if not any(arg == k or (k.endswith("=") and arg.startswith(k)) for k in known):
                raise XcatError(f"dnf: error: unrecognized arguments: {arg}")
            key, _, value = arg.partition("=")
            options[key] = value
        elif not action:
            action = arg
        else:
            names.append((arg, origin))
    return options, action, names


PACKAGE_SPEC = re.compile(r"^@?[A-Za-z0-9_+][A-Za-z0-9_.+:~^-]*$")
KERNEL_PACKAGE = re.compile(r"^kernel(?:-(\d[A-Za-z0-9_.+~^-]*))?$")


def installed_packages(rootimg: Path) -> list[str]:
    """The packages genimage left in a root (its marker files), sorted."""
    marker_dir = rootimg / PACKAGES_DIR
    return sorted(p.name for p in marker_dir.iterdir()) if marker_dir.is_dir() else []


def kernel_version(name: str) -> Optional[str]:
    match = KERNEL_PACKAGE.match(name)
    if not match:
        return None
    return match.group(1) or "default"


def pkg_install(root: Path, names: list[tuple[str, str]]) -> int:
    """Install = a marker file per package (what put it there), added to those present."""
    bad = [name for name, _ in names if not PACKAGE_SPEC.match(name)]
    if not names:
        print("Error: Need to pass a list of pkgs to install")
        return 1
    if bad:
        for name in bad:
            print(f"No match for argument: {name}")
        print(f"Error: Unable to find a match: {' '.join(bad)}")
        return 1
    for name, origin in names:
        marker = root / PACKAGES_DIR / name
        if marker.exists():
            continue  # dnf leaves an installed package alone
        write_atomic(marker, (origin + "\n").encode("utf-8"))
        version = kernel_version(name)
        if version is not None:
            write_atomic(root / "boot" / f"vmlinuz-{version}", kernel_bytes(version))
            (root / "lib" / "modules" / version).mkdir(parents=True, exist_ok=True)
        print(f"Installed: {name}")
    return 0


def pkg_erase(root: Path, names: list[tuple[str, str]]) -> int:
    for name, _ in names:
        marker = root / PACKAGES_DIR / name
        if not marker.is_file():
            print(f"No match for argument: {name}")
            continue
        marker.unlink()
        version = kernel_version(name)
        if version is not None:
            (root / "boot" / f"vmlinuz-{version}").unlink(missing_ok=True)
        print(f"Removed: {name}")
    return 0


def cmd_pkgmgr(state: State, args: list[str]) -> int:
    """The package manager genimage runs: `install`/`erase` on marker files in the root."""
    context = json.loads(Path(os.environ["XCATSTUB_PKGCTX"]).read_text(encoding="utf-8"))
    options, action, raw = pkgmgr_args(args)
    root = Path(options.get("--installroot", "")).resolve()
    names = [(n, context["origins"][o] if o >= 0 else "unknown") for n, o in raw]
    record = {
        "image": context["image"],
        "list": context["kind"],
        "pass": context["pass"],
        "action": action,
        "packages": [n for n, _ in names],
        "env": {k: os.environ.get(k) for k in context["report_env"]},
    }
    if action == "install":
        rc = pkg_install(root, names)
    elif action == "erase":
        rc = pkg_erase(root, names)
    else:
        raise stub_error(f"the stand-in package manager does not implement '{action}'")
    state.record_to("transactions.jsonl", dict(record, rc=rc))
    return rc


# ---------------------------------------------------------------------------- packimage


def sync_into_root(name: str, image: dict[str, str], rootimg: Path, skip: bool) -> list[str]:
    """packimage.pm lines 433-452: the synclist files (or the legacy fallback) are copied
    into the root with `xdcp -i`, XCAT_OSIMAGE_ENV set from environvar.  Returns the
    manifest lines describing them."""
    lines: list[str] = []
    for path in [] if skip else synclist_files(name, image):
        if not os.path.isfile(path):
            continue
        lines.append(f"synclist={path} sha256={sha256_file(path)}")
        for src, dest in rsync_to_image(rootimg, path, osimage_env(image.get("environvar", ""))):
            digest = sha256_file(src) if os.path.isfile(src) else "missing"
            lines.append(f"sync {src} sha256={digest} -> {dest}")
    return lines


PACKIMAGE_SPEC = [
    Option("profile|p", takes_arg=True),
    Option("arch|a", takes_arg=True),
    Option("osver|o", takes_arg=True),
    Option("method|m", takes_arg=True),
    Option("compress|c", takes_arg=True),
    Option("tracker", takes_arg=True),
    Option("nosyncfiles"),
    Option("help|h"),
    Option("version|v"),
]

PACKIMAGE_USAGE = (
    "Usage:\n   packimage [-m| --method=cpio|tar] [-c| --compress=gzip|pigz|xz] "
    "[--nosyncfiles] <imagename>\n   packimage [-h| --help]\n   packimage [-v| --version]"
)


def cmd_packimage(state: State, args: list[str]) -> int:
    if not args:
        raise Usage(PACKIMAGE_USAGE, 0)
    opts, operands = getopts(args, PACKIMAGE_SPEC, bundling=True, pass_through=True)
    if any(opts.get(k) for k in ("profile", "arch", "osver")):
        raise XcatError(
            "-o, -p and -a options are obsoleted, please use 'packimage <osimage name>' instead."
        )
    if opts.get("version"):
        raise Usage("Version 2.19.0 (xcatstub)", 0)
    if opts.get("help"):
        raise Usage(PACKIMAGE_USAGE, 0)
    if not operands:
        raise XcatError("An image name is required, use 'packimage <osimage name>'.")
    if len(operands) > 1:
        raise stub_error(
            f"packimage takes one image name, got {' '.join(operands)} (xCAT would silently "
            "ignore all but the first)"
        )
    if opts.get("tracker"):
        raise stub_error("packimage --tracker is not implemented")
    name = operands[0]
    image = lookup_image(state, name)
    require_basics(name, image)
    if image["provmethod"] != "netboot":
        raise XcatError(
            f"'{name}' cannot be used to build diskless image. Make sure osimage.provmethod "
            "is 'netboot'."
        )
    destdir = image_dir(name, image)
    rootimg = destdir / "rootimg"
    state.injected("packimage", [name])
    exlists = split_files(image.get("exlist", ""))
    explicit = [] if opts.get("nosyncfiles") else split_files(image.get("synclists", ""))
    for kind, files in (("exlist", exlists), ("synclist", explicit)):
        for path in files:
            if not os.path.isfile(path):
                raise stub_error(
                    f"the {kind} file {path} of '{name}' does not exist (xCAT would pack "
                    "without it)"
                )
    if not rootimg.is_dir():
        raise XcatError(
            f"{rootimg} does not exist, run genimage -o {image['osvers']} -p "
            f"{image['profile']} on a server with matching architecture"
        )
    compress = opts.get("compress")
    if compress is None:
        compress, suffix = "pigz", "gz"
    elif compress in ("gzip", "pigz"):
        suffix = "gz"
    elif compress == "xz":
        suffix = "xz"
    else:
        raise XcatError(f"Invalid compress method '{compress}' requested")
    method = opts.get("method", "cpio")
    if method not in ("cpio", "tar", "squashfs"):
        raise XcatError(f"Invalid archive method '{method}' requested")
    print(f"Packing contents of {rootimg}")
    print(f"archive method:{method}")
    if method != "squashfs":
        print(f"compress method:{compress}")
    manifest = [
        "# xcatstub packimage manifest",
        f"image={name}",
        f"method={method}",
        f"compress={compress if method != 'squashfs' else ''}",
    ]
    for path in exlists:
        manifest.append(f"exlist={path} sha256={sha256_file(path)}")
        manifest.extend(f"exclude {pattern}" for pattern in parse_exlist(path))
    manifest.extend(sync_into_root(name, image, rootimg, bool(opts.get("nosyncfiles"))))
    build = rootimg / "etc" / "imagespec-stub-build"
    if build.is_file():
        manifest.append(f"build sha256={sha256_file(str(build))}")
    manifest.extend(f"package {pkg}" for pkg in installed_packages(rootimg))
    body = ("\n".join(manifest) + "\n").encode("utf-8")
    if method == "squashfs":
        target, data = "rootimg.sfs", body
    else:
        target = f"rootimg.{method}.{suffix}"
        data = gzip_bytes(body) if suffix == "gz" else lzma.compress(body, format=lzma.FORMAT_XZ)
    write_atomic(destdir / target, data)
    for old in destdir.glob("rootimg.*"):
        if old.name not in (target, f"{target}.metainfo") and old.is_file():
            old.unlink()
    return 0


# ---------------------------------------------------------------------------- synclists


def platform_of(osvers: str) -> str:
    """SvrUtils.pm getsynclistfile (lines 441-455): the custom/netboot/<platform> dir."""
    for pattern, platform in (
        (r"rh.*", "rh"),
        (r"centos.*", "centos"),
        (r"alma.*", "alma"),
        (r"rocky.*", "rocky"),
        (r"fedora.*", "fedora"),
        (r"sles.*", "sles"),
        (r"SL.*", "SL"),
        (r"ubuntu.*", "ubuntu"),
        (r"debian.*", "debian"),
        (r"AIX.*", "AIX"),
        (r"win", "windows"),
    ):
        if re.search(pattern, osvers):
            return platform
    return ""


def os_search_list(osvers: str) -> list[str]:
    """SvrUtils.pm get_os_search_list: rhels8.6 -> rhels8.6 ... rhels8.0, rhels8."""
    words = osvers.split("-")[0].split(".")
    found: list[str] = []
    while words and re.fullmatch(r"[0-9]+", words[-1]):
        last = words.pop()
        if re.fullmatch(r"0[0-9]+", last):
            return [*found, ".".join([*words, last])]
        number = int(last)
        while number >= 0:
            text = f"{number:0{len(last)}d}"
            found.append(".".join([*words, text]))
            if re.match(r"0[0-9]", text):
                found.append(".".join([*words, str(int(text))]))
            number -= 1
    found.append(".".join(words))
    if re.fullmatch(r"leap15(\..*)?", osvers.split("-")[0]):
        found.append("sle15")
    return found


def get_file_name(base: str, ext: str, profile: str, osvers: str, arch: str) -> Optional[str]:
    """SvrUtils.pm get_file_name: the first readable <profile>[.<os>][.<arch>].<ext>."""
    names = [f"{profile}.{osvers}.{arch}.{ext}", f"{profile}.{osvers}.{ext}"]
    for osbase in os_search_list(osvers):
        names += [f"{profile}.{osbase}.{arch}.{ext}", f"{profile}.{osbase}.{ext}"]
    names += [f"{profile}.{arch}.{ext}", f"{profile}.{ext}"]
    for name in names:
        if os.access(f"{base}/{name}", os.R_OK):
            return f"{base}/{name}"
    return None


def synclist_files(name: str, image: dict[str, str]) -> list[str]:
    """SvrUtils.pm getsynclistfile(undef, os, arch, profile, "netboot", image) (lines
    433-460): osimage.synclists when set, else the first of the legacy
    <installdir>/custom/netboot/<platform>/<profile>.<os>.<arch>.synclist names."""
    if image.get("synclists"):
        return image["synclists"].split(",")
    installdir = os.environ.get("XCATSTUB_INSTALLDIR")
    if not installdir:
        print(
            f"Warning: xcatstub: '{name}' has no synclists and XCATSTUB_INSTALLDIR is not set, "
            "so the <installdir>/custom/netboot fallback xCAT would use was skipped",
            file=sys.stderr,
        )
        return []
    base = f"{installdir}/custom/netboot/{platform_of(image.get('osvers', ''))}"
    found = get_file_name(
        base,
        "synclist",
        image.get("profile", ""),
        image.get("osvers", ""),
        image.get("osarch", ""),
    )
    return [found] if found else []


def rm_rf(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def cp_a(src: str, dest: str) -> None:
    """cp -r -a SRC DEST: into DEST when it is a directory, else as DEST."""
    if os.path.isdir(dest) and not os.path.islink(dest):
        dest = os.path.join(dest, perl_basename(src))
    if os.path.isdir(src) and not os.path.islink(src):
        shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True)
    else:
        if os.path.islink(dest):
            os.unlink(dest)
        shutil.copy2(src, dest, follow_symlinks=False)


def rsync_into(sources: list[str], dest: str) -> None:
    """rsync -Lprogtz SRC... DEST as rsync_to_image runs it (links followed, -r)."""
    into = dest.endswith("/") or os.path.isdir(dest) or len(sources) > 1
    for pattern in sources:
        matches = sorted(glob.glob(pattern)) if re.search(r"[*?\[]", pattern) else [pattern]
        for src in matches:
            if not os.path.exists(src):
                continue  # rsync reports it and copies the rest; xCAT ignores the rc
            if os.path.isdir(src):
                target = dest if src.endswith("/") else os.path.join(dest, perl_basename(src))
                shutil.copytree(src, target, dirs_exist_ok=True)
            else:
                target = os.path.join(dest, os.path.basename(src)) if into else dest
                os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
                shutil.copy2(src, target)


def rsync_to_image(rootimg: Path, synclist: str, env: dict[str, str]) -> list[tuple[str, str]]:
    """DSHCLI.pm rsync_to_image (lines 4975-5085), `xdcp -i <rootimg> -F <synclist>`:
    comments only at column 0, `src -> (noderange) dest` lines skipped (line 4999),
    $VAR from XCAT_OSIMAGE_ENV substituted, the first clause header stops everything
    (lines 5006-5012), dest is a directory when it is one on the director (line 5021)."""
    done = []
    text = Path(synclist).read_text(encoding="utf-8", errors="replace")
    for line in text.split("\n"):
        if line.startswith("#") or re.search(r".+ -> \(.+\) .+", line):
            continue
        line = varsubinline(line, env)
        if re.search(r"EXECUTE:|EXECUTEALWAYS:|APPEND:|MERGE:", line):
            break
        match = re.search(r"(.+) -> (.+)", line)
        if not match:
            continue
        src, dest = match.group(1), re.sub(r"[\s;]", "", match.group(2))
        if os.path.isdir(dest):
            updatedir = updatepath = f"{rootimg}{dest}"
        else:
            updatedir, updatepath = f"{rootimg}{perl_dirname(dest)}", f"{rootimg}{dest}"
        os.makedirs(updatedir, exist_ok=True)
        rsync_into(src.split(), updatepath)
        done += [(s, dest) for s in src.split()]
    return done


def osimage_env(value: str) -> dict[str, str]:
    """DSHCLI.pm lines 4983-4989: XCAT_OSIMAGE_ENV (packimage passes environvar)."""
    pairs = {}
    for item in value.split(","):
        match = re.search(r"\s*(\S+)\s*=\s*(\S+)\s*", item)
        if match:
            pairs[match.group(1)] = match.group(2)
    return pairs


# ---------------------------------------------------------------------------- xdcp

NODESYNCFILEDIR = "/var/xcat/node/syncfiles"  # DSHCLI.pm line 4704, site.nodesyncfiledir unset
MERGE_FILES = ("/etc/passwd", "/etc/group", "/etc/gshadow", "/etc/shadow")


def boot_sync_sections(synclist: str) -> tuple[list[str], dict[str, list[str]]]:
    """DSHCLI.pm parse_rsync_input_file_on_MN (lines 5143-5365): plain lines, then each
    header (found anywhere in a line) captures every following line until the next."""
    plain: list[str] = []
    clauses: dict[str, list[str]] = {}
    clause = ""
    for line in Path(synclist).read_text(encoding="utf-8", errors="replace").split("\n"):
        if line.startswith("#") or not line.strip():
            continue
        header = re.search(r"EXECUTEALWAYS:|EXECUTE:|APPEND:|MERGE:", line)
        if header:
            clause = header.group(0)
            continue
        (clauses.setdefault(clause, []) if clause else plain).append(line)
    return plain, clauses


def plain_plan(node: str, lines: list[str], nodes: dict[str, dict[str, str]]) -> list[str]:
    """The files rsync would send a node (lines 5237-5300): a (noderange) limits a line."""
    out = []
    for line in lines:
        ranged = re.search(r"(.+) -> +\((.+)\) +(.+)", line)
        match = ranged or re.search(r"(.+) -> (.+)", line)
        if not match:
            continue
        if ranged:
            allowed, _ = noderange(re.sub(r"\s", "", ranged.group(2)), nodes, verify=False)
            if node not in allowed:
                continue
        dest = re.sub(r"[\s;]", "", match.group(match.lastindex or 2))
        out.append(f"{node}: rsync {match.group(1).strip()} -> {dest}")
    return out


def append_plan(node: str, lines: list[str]) -> list[str]:
    """APPEND: bld_and_run_append (lines 6038-6130) joins `<file>:<target>` for every
    line, whatever node range it names, into one xdcpappend.sh command run on every node;
    xdcpappend.sh splits it on blanks and on ':' (share/xcat/scripts/xdcpappend.sh)."""
    params = NODESYNCFILEDIR + " "
    for line in lines:
        match = re.search(r"(.+) -> (.+)", line)
        if match:
            params += f"{match.group(1)}:{match.group(2)} "
    script = f"{NODESYNCFILEDIR}/append/opt/xcat/share/xcat/scripts/xdcpappend.sh"
    out = [f"{node}: xdsh {script} {params.rstrip()}"]
    check = subprocess.run(
        ["/bin/sh", "-n", "-c", f"{script} {params}"], capture_output=True, text=True
    )
    if check.returncode != 0:
        return [*out, f"{node}: sh: {check.stderr.strip()}"]
    words = subprocess.run(
        ["/bin/sh", "-c", f'set -- {params}; shift; for i in $*; do echo "$i"; done'],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    for word in words:
        fields = word.split(":")
        target = fields[1] if len(fields) > 1 else word  # cut -f2 prints lines without ':'
        out.append(f"{node}: append {NODESYNCFILEDIR}/append{fields[0]} >> {target}")
    return out


def merge_error(lines: list[str]) -> Optional[str]:
    """MERGE: bld_and_run_merge (lines 6179-6215) accepts only the four files as the
    whole right-hand side, so `src -> (noderange) /etc/passwd` is refused for every node."""
    for line in lines:
        match = re.search(r"(.+) -> (.+)", line)
        if match and match.group(2) not in MERGE_FILES:
            return (
                f"{match.group(2)} is not either /etc/passwd, /etc/group, /etc/gshadow or "
                "/etc/shadow. Those are the only supported files for MERGE"
            )
    return None


def cmd_xdcp(state: State, args: list[str]) -> int:
    """xdcp -i <rootimg> -F <synclist> copies into an image (rsync_to_image);
    xdcp <noderange> -F <synclist> prints what boot-time sync would do on each node:
    `node: rsync SRC -> DEST`, `node: xdsh ...`, `node: append FILE >> TARGET`."""
    opts, operands = getopts(
        args, [Option("F", takes_arg=True), Option("i", takes_arg=True)], bundling=True
    )
    if not opts.get("F"):
        raise stub_error("xdcp: only -F <synclist> is implemented")
    if opts.get("i"):
        rsync_to_image(
            Path(opts["i"]), opts["F"], osimage_env(os.environ.get("XCAT_OSIMAGE_ENV", ""))
        )
        return 0
    with state.locked():
        nodes = state.objects("node")
    names, missed = noderange(operands[0] if operands else "", nodes, verify=True)
    if missed or not names:
        raise XcatError(f"Invalid nodes and/or groups in noderange: {','.join(missed)}")
    plain, clauses = boot_sync_sections(opts["F"])
    for node in names:
        lines = plain_plan(node, plain, nodes)
        if clauses.get("APPEND:"):
            lines += append_plan(node, clauses["APPEND:"])
        if lines:
            print("\n".join(lines))
    problem = merge_error(clauses.get("MERGE:", []))
    if problem:
        raise XcatError(problem)
    return 0


# ---------------------------------------------------------------------------- liteimg

LITEIMG_SPEC = [
    Option("rootfstype|t", takes_arg=True),
    Option("profile|p", takes_arg=True),
    Option("arch|a", takes_arg=True),
    Option("osver|o", takes_arg=True),
    Option("help|h"),
    Option("tracker"),
    Option("version|v"),
    Option("verbose|V"),
]
LITE_OPTION_RE = re.compile(
    r"^(tmpfs|persistent|localdisk|rw|ro|con|link|tmpfs,rw|link,ro|link,persistent|link,con)$"
)
ENABLED_DISABLE = (None, "0", "no", "NO", "No", "nO")  # Table.pm getAttribs, lines 3855-3857


def ilitefile(state: State, name: str, image: dict[str, str]) -> list[str]:
    """`ilitefile <image>` (litetree.pm getNodeData lines 340-360, mergeArrays 380-420,
    showSync 257-268): rows whose image is the osimage's whole `groups` value, then NULL
    (getAttribs({image => ''}) asks `image is NULL`), then ALL, then the image, later
    ones winning per file; blank options are tmpfs,rw; an /etc/mtab row is forced to
    tmpfs,rw and added as `link` when missing.  Lines are `<image>: <options> <file>`."""
    with state.locked():
        rows = [r for r in state.litefile() if r.get("disable") in ENABLED_DISABLE]
    keys = ([image["groups"]] if image.get("groups") else []) + [None, "ALL", name]
    options: dict[str, str] = {}
    for key in keys:
        for row in rows:
            if row.get("image") == key and row.get("file"):
                file = row["file"] or ""
                options[file] = (
                    "tmpfs,rw" if file == "/etc/mtab" else row.get("options") or ("tmpfs,rw")
                )
    options.setdefault("/etc/mtab", "link")
    return [f"{name}: {options[f]:<13} {f}" for f in sorted(options)]


LiteTable = dict[str, Optional[list[str]]]


def parse_lite_files(lines: list[str]) -> LiteTable:
    """statelite.pm parseLiteFiles (lines 719-764): each entry under the NEAREST listed
    ancestor directory, found by walking up dirname() and taking the first level where
    exactly one line ends with `<dir>/`; entries without one are top-level keys."""
    table: LiteTable = {}
    for line in lines:
        fields = line.split()
        entry = "\t".join(fields[1:])
        file = fields[2] if len(fields) > 2 else ""
        file = file[:-1] if file.endswith("/") else file
        if entry in table:
            continue
        parent, found = perl_dirname(file), None
        while parent != "/":
            parent = parent if parent.endswith("/") else parent + "/"
            matches = [other for other in lines if other.endswith(parent)]
            if len(matches) == 1:
                found = matches[0]
                break
            parent = perl_dirname(parent)
        if found is None:
            table[entry] = None
        else:
            key = "\t".join(found.split()[1:])
            if table.get(key) is None:
                table[key] = []
            children = table[key]
            assert children is not None
            children.append(entry)
    return table


def check_lite_lines(lines: list[str]) -> None:
    """statelite.pm lines 282-301: options, absolute paths, no `con` on a directory."""
    for line in lines:
        fields = line.split()
        options, file = fields[1], fields[2] if len(fields) > 2 else ""
        if not LITE_OPTION_RE.match(options):
            raise XcatError(
                f" {file} has invalid option. The valid options: tmpfs persistent localdisk rw "
                "ro con link tmpfs,rw link,ro link,persistent link,con"
            )
        if not file.startswith("/"):
            raise XcatError(f" {file} is not one absolute path. ")
        if "con" in options and file.endswith("/"):
            raise XcatError(f' {file} is directory, don\'t use "con" as its option ')


def check_lite_nesting(table: LiteTable) -> None:
    """statelite.pm lines 308-350: a directory with children must not be ro/con; under a
    link* directory children must be link* but not link,ro; under a persistent one they
    must be persistent.  A link* child of another directory is never refused: the check
    compares paths with Perl's numeric != (line 337), which is always false."""
    for key, children in table.items():
        if not children:
            continue
        options, file = key.split("\t")
        if options.endswith("ro") or options.endswith("con"):
            raise XcatError(
                f'the directory "{file}" should not be with "ro" or "con" as its option'
            )
        for child in children:
            child_options, child_file = child.split("\t")
            if "link" in options:
                if child_options == "link,ro":
                    raise XcatError(
                        f'Based on the option of {file}, {child_file} should not use "link,ro" '
                        "as its option"
                    )
                if "link" not in child_options:
                    raise XcatError(
                        f'Based on the option of {file}, {child_file} can only use "link"-based '
                        "options"
                    )
            if "persistent" in options and "persistent" not in child_options:
                raise XcatError(f"{child_file} should have persistent option like {file} ")


def recover_files(rootimg: str, options: str, file: str) -> None:
    """statelite.pm recoverFiles (lines 771-817): undo an entry that was removed or whose
    option changed.  A link entry whose path links into .statelite/tmpfs is replaced by
    its .default copy (or an empty file/directory); any other entry is deleted, rm -rf."""
    if options.startswith("link"):
        target = rootimg + file
        if not os.path.islink(target):
            target = target[:-1]  # `chop`: the directory's trailing '/'
        if os.path.islink(target) and ".statelite/tmpfs" in os.readlink(target):
            rm_rf(target)
            default = f"{rootimg}/.default{file}"
            if os.path.exists(default):
                cp_a(default, target)
            elif file.endswith("/"):
                os.mkdir(target)
            else:
                Path(target).touch()
        rm_rf(f"{rootimg}/.statelite/tmpfs{file}")
    else:
        rm_rf(rootimg + file)


def entry_options(lines: list[str], file: str) -> Optional[str]:
    """`grep /\\s+$file$/` over the new lines (statelite.pm lines 373 and 444): the new
    options of a saved entry when exactly one line matches."""
    try:
        pattern = re.compile(r"\s+" + file + "$")
    except re.error:
        return None
    matches = [line for line in lines if pattern.search(line)]
    return matches[0].split()[1] if len(matches) == 1 else None


def backup_children(rootimg: str, file: str, children: list[str]) -> None:
    backup = f"{rootimg}/.statebackup{file}"
    if not os.path.isdir(backup):
        rm_rf(backup)
        os.makedirs(backup, exist_ok=True)
    for child in children:
        path = rootimg + child.split("\t")[1]
        if os.path.exists(path):
            cp_a(path, backup)


def restore_children(rootimg: str, children: list[str]) -> None:
    for child in children:
        name = child.split("\t")[1]
        dest, src = rootimg + name, f"{rootimg}/.statebackup{name}"
        rm_rf(dest)
        os.makedirs(perl_dirname(dest), exist_ok=True)
        if os.path.exists(src):
            cp_a(src, dest)


def recover_saved(rootimg: str, saved: LiteTable, new_lines: list[str]) -> None:
    """statelite.pm lines 366-460: for each saved entry whose option changed or which is
    gone, recoverFiles; its children are kept through .statebackup, then checked too."""
    for line, children in saved.items():
        old_options, file = line.split("\t")
        if children:
            backup_children(rootimg, file, children)
        if entry_options(new_lines, file) != old_options:
            recover_files(rootimg, old_options, file)
            if children:
                restore_children(rootimg, children)
        for child in children or []:
            child_options, child_file = child.split("\t")
            if entry_options(new_lines, child_file) != child_options:
                recover_files(rootimg, child_options, child_file)
    rm_rf(f"{rootimg}/.statebackup")


def get_rel_dir(file: str) -> str:
    """statelite.pm getRelDir (lines 638-653): '..' per directory level of the file."""
    parent = perl_dirname(file)
    if parent == "/":
        return "."
    return "/".join([".."] * (len(parent.split("/")) - 1))


def ln_sfn(target: str, link: str) -> None:
    if os.path.isdir(link) and not os.path.islink(link):
        link = os.path.join(link, perl_basename(target))
    if os.path.lexists(link):
        rm_rf(link)
    os.symlink(target, link)


def lite_link(rootimg: str, file: str) -> None:
    """liteItem for a top-level link entry (statelite.pm lines 855-948): the original
    goes to .default, the path becomes a link to .statelite/tmpfs, which links back."""
    rif, parent = rootimg + file, perl_dirname(file)
    if re.search(re.escape(rootimg) + r"/.default", os.path.realpath(rif)):
        return  # done by an earlier liteimg or by its parent
    if os.path.isfile(rif) or os.path.isdir(rif):
        if not os.path.islink(rif.rstrip("/")):
            os.makedirs(f"{rootimg}/.default{parent}", exist_ok=True)
            cp_a(rif, f"{rootimg}/.default{parent}")
            rm_rf(rif.rstrip("/"))
    else:
        os.makedirs(rootimg + parent, exist_ok=True)
        os.makedirs(f"{rootimg}/.default{parent}", exist_ok=True)
        if file.endswith("/"):
            os.makedirs(f"{rootimg}/.default{file}", exist_ok=True)
        else:
            Path(f"{rootimg}/.default{file}").touch()
    os.makedirs(f"{rootimg}/.statelite/tmpfs{parent}", exist_ok=True)
    file = file[:-1] if file.endswith("/") else file
    rel = get_rel_dir(file)
    ln_sfn(f"../../{rel}/.default{file}", f"{rootimg}/.statelite/tmpfs{file}")
    ln_sfn(f"{rel}/.statelite/tmpfs{file}", rootimg + file)


def lite_item(rootimg: str, item: str, is_child: bool) -> None:
    """statelite.pm liteItem (lines 823-995)."""
    options, file = item.split("\t")
    if "link" in options:
        if file == "/etc/mtab":
            mtab = f"{rootimg}/etc/mtab"
            if os.path.islink(mtab) and os.readlink(mtab) == "/proc/self/mounts":
                return
            is_child = False
        if not is_child:
            lite_link(rootimg, file)
        elif file.endswith("/"):
            if not os.path.isdir(f"{rootimg}/.default{file}"):
                rm_rf(f"{rootimg}/.default{file}")
                os.makedirs(f"{rootimg}/.default{file}", exist_ok=True)
        else:
            os.makedirs(f"{rootimg}/.default{perl_dirname(file)}", exist_ok=True)
            Path(f"{rootimg}/.default{file}").touch()
        return
    rif, parent = rootimg + file, perl_dirname(file)
    if not os.path.exists(rif):
        if file.endswith("/"):
            os.makedirs(rif, exist_ok=True)
        else:
            with contextlib.suppress(OSError):
                os.mkdir(rootimg + parent)  # one level only, as `mkdir($rifdir)`
            with contextlib.suppress(OSError):
                Path(rif).touch()
    os.makedirs(f"{rootimg}/.default{parent}", exist_ok=True)
    if os.path.exists(rif):
        cp_a(rif, f"{rootimg}/.default{parent}")


def lite_me(rootimg: str, table: LiteTable) -> None:
    """statelite.pm liteMe (lines 600-636)."""
    os.makedirs(f"{rootimg}/.statelite/tmpfs", exist_ok=True)
    for key, children in table.items():
        lite_item(rootimg, key, False)
        for child in children or []:
            lite_item(rootimg, child, True)


def prepare_lite_root(rootimg: Path, profile: str, arch: str) -> None:
    """The edits liteimg makes before the litefile rows (statelite.pm lines 177-207):
    /xcatpost from <installdir>/postscripts, fstab rw->ro for <profile>_<arch>, the
    root password line of /etc/shadow (no passwd table entry: 'cluster')."""
    rm_rf(f"{rootimg}/xcatpost")
    (rootimg / "xcatpost").mkdir(parents=True)
    installdir = os.environ.get("XCATSTUB_INSTALLDIR")
    postscripts = Path(installdir or "") / "postscripts"
    if installdir and postscripts.is_dir():
        for item in postscripts.iterdir():
            cp_a(str(item), str(rootimg / "xcatpost"))
    fstab = rootimg / "etc" / "fstab"
    if fstab.is_file():
        lines = fstab.read_text(encoding="utf-8").splitlines(keepends=True)
        fstab.write_text(
            "".join(
                re.sub(r"\brw\b", "ro", line, count=1)
                if line.startswith(f"{profile}_{arch}")
                else line
                for line in lines
            )
        )
    if (rootimg / "etc").is_dir():
        shadow = rootimg / "etc" / "shadow"
        old = shadow.read_text(encoding="utf-8").splitlines() if shadow.is_file() else []
        body = "root:cluster:13880:0:99999:7:::\n" + "".join(
            line + "\n" for line in old if not line.startswith("root:")
        )
        write_atomic(shadow, body.encode("utf-8"))
        shadow.chmod(0o600)


def cmd_liteimg(state: State, args: list[str]) -> int:
    """statelite.pm process_request (lines 36-598)."""
    if not args:
        raise Usage(
            "liteimg -h # this help message\nliteimg -v # version\nliteimg -V # verbose\n"
            "liteimg -p <profile> -a <architecture> -o <OS>\nliteimg imagename",
            0,
        )
    opts, operands = getopts(args, LITEIMG_SPEC, bundling=True, pass_through=True)
    if opts.get("version"):
        raise Usage("Version 2.19.0 (xcatstub)", 0)
    if opts.get("help"):
        raise Usage("liteimg -h # this help message\nliteimg -v # version\nliteimg imagename", 0)
    if not operands:
        if any(opts.get(k) for k in ("profile", "arch", "osver")):
            raise stub_error(
                "liteimg without an image name (the old -o/-p/-a form) is not implemented"
            )
        raise XcatError(
            "osimage.osvers, osimage.osarch, and osimage.profile and must be specified for the "
            "image  in the database, or you must specify -o os -p profile -a arch."
        )
    if len(operands) > 1:
        raise stub_error(f"liteimg takes one image name, got {' '.join(operands)}")
    if any(opts.get(k) for k in ("profile", "arch", "osver")):
        raise XcatError("-o, -p and -a options are not allowed when a image name is specified.")
    name = operands[0]
    image = lookup_image(state, name)
    if "statelite" not in image.get("provmethod", ""):
        raise XcatError(
            "Please make sure that osimage.provmethod is set to statelite before calling this "
            "command."
        )
    if not all(image.get(k) for k in ("osvers", "osarch", "profile")):
        raise XcatError(
            "osimage.osvers, osimage.osarch, and osimage.profile and must be specified for the "
            f"image {name} in the database, or you must specify -o os -p profile -a arch."
        )
    destdir = image_dir(name, image)
    rootimg = destdir / "rootimg"
    state.injected("liteimg", [name])
    if not rootimg.is_dir():
        raise stub_error(
            f"{rootimg} does not exist, run genimage {name} first (xCAT would go on and "
            "create a partial root)"
        )
    print(f"Modifying {rootimg} ...", flush=True)
    prepare_lite_root(rootimg, image["profile"], image["osarch"])
    for synclist in synclist_files(name, image):
        if os.path.isfile(synclist):  # statelite.pm lines 235-243
            rsync_to_image(rootimg, synclist, {})  # liteimg passes no XCAT_OSIMAGE_ENV
    save = rootimg / ".statelite" / "litefile.save"
    saved_lines = save.read_text(encoding="utf-8").splitlines() if save.is_file() else []
    saved = parse_lite_files(saved_lines)
    new_lines = [line.replace("tmpfs,rw", "link", 1) for line in ilitefile(state, name, image)]
    check_lite_lines(new_lines)
    table = parse_lite_files(new_lines)
    check_lite_nesting(table)
    for leftover in rootimg.glob("tmp/dracut.*"):
        rm_rf(str(leftover))
    recover_saved(str(rootimg), saved, new_lines)
    write_atomic(save, "".join(line + "\n" for line in new_lines).encode("utf-8"))
    lite_me(str(rootimg), table)
    (rootimg / "etc" / "init.d").mkdir(parents=True, exist_ok=True)
    (rootimg / "etc" / "init.d" / "statelite").write_text("# xcatstub rc.statelite\n")
    print(f"Modifying {rootimg} done.")
    if image.get("rootfstype") == "ramdisk":
        pack_statelite_ramdisk(name, image, destdir)
    return 0


def pack_statelite_ramdisk(name: str, image: dict[str, str], destdir: Path) -> None:
    """statelite.pm lines 483-596: with rootfstype=ramdisk the root is packed."""
    manifest = [f"# xcatstub liteimg ramdisk manifest\nimage={name}"]
    for path in split_files(image.get("exlist", "")):
        if not os.path.isfile(path):
            raise stub_error(f"the exlist file {path} of '{name}' does not exist")
        manifest.append(f"exlist={path} sha256={sha256_file(path)}")
        manifest.extend(f"exclude {pattern}" for pattern in parse_exlist(path))
    manifest.extend(f"package {p}" for p in installed_packages(destdir / "rootimg"))
    body = ("\n".join(manifest) + "\n").encode("utf-8")
    write_atomic(destdir / "rootimg-statelite.gz", gzip_bytes(body))


# ---------------------------------------------------------------------------- nodeset

NODESET_USAGE = (
    "Usage: nodeset <noderange> [boot|stat|iscsiboot|offline|runcmd=bmcsetup|"
    "osimage[=<imagename>]|shell|shutdown]"
)
XCATDPORT = "3001"  # anaconda.pm line 204, site.xcatdport unset
HTTPPORT = "80"  # anaconda.pm line 35, site.httpport unset


def compressed_rootimg(destdir: Path) -> Optional[str]:
    """SvrUtils.pm searchcompressedrootimg: the packed image mknetboot boots."""
    found = None
    for name in ("rootimg.sfs", "rootimg.gz"):
        if (destdir / name).is_file():
            found = name
            break
    for name in ("rootimg.cpio.gz", "rootimg.cpio.xz", "rootimg.tar.gz", "rootimg.tar.xz"):
        if (destdir / name).is_file():
            return name
    return found


class BootImage:
    """What mknetboot reads of the osimage (anaconda.pm lines 281-345)."""

    def __init__(self, name: str, image: dict[str, str]) -> None:
        self.name = name
        self.image = image
        self.statelite = image.get("provmethod") == "statelite"
        self.rootfstype = image.get("rootfstype", "")
        self.osvers, self.osarch = image.get("osvers", ""), image.get("osarch", "")
        self.profile = image.get("profile", "")
        rootimgdir = image.get("rootimgdir") or (
            f"/install/netboot/{self.osvers}/{self.osarch}/{self.profile}"
        )
        self.rootimgdir = Path(rootimgdir)

    def initrd(self) -> str:
        """anaconda.pm lines 531-536 and 858-866: statelite ramdisk boots the stateless one."""
        if self.statelite and self.rootfstype != "ramdisk":
            return "initrd-statelite.gz"
        return "initrd-stateless.gz"


def check_boot_files(boot: BootImage) -> Optional[str]:
    """mknetboot's refusals (anaconda.pm lines 450-499); None when the image can boot."""
    here, destdir = socket.gethostname(), boot.rootimgdir
    before = "liteimg" if boot.statelite else "packimage"
    if not os.access(destdir / "kernel", os.R_OK):
        return (
            f'Did you run "genimage" before running "{before}"? kernel cannot be found at '
            f"{destdir}/kernel on {here}"
        )
    flavour = "statelite" if boot.statelite else "stateless"
    if not os.access(destdir / f"initrd-{flavour}.gz", os.R_OK):
        if not os.access(destdir / "initrd.gz", os.R_OK):
            if boot.statelite:
                return (
                    f'Did you run "genimage" before running "liteimg"? initrd.gz or '
                    f"initrd-statelite.gz cannot be found at {destdir}/initrd.gz on {here}"
                )
            return (
                f'Did you run "genimage" before running "packimage"? kernel cannot be found at '
                f"{destdir}/kernel on {here}"
            )
        shutil.copyfile(destdir / "initrd.gz", destdir / f"initrd-{flavour}.gz")
    if boot.statelite and boot.rootfstype == "ramdisk":
        if not (destdir / "rootimg-statelite.gz").is_file():
            return (
                f"No packed image for platform {boot.osvers}, architecture {boot.osarch} and "
                f'profile {boot.profile}, please run "liteimg" to create it.'
            )
    elif not boot.statelite and compressed_rootimg(destdir) is None:
        return (
            f"No packed image for platform {boot.osvers}, architecture {boot.osarch}, and "
            f"profile {boot.profile} found at {destdir}/rootimg.gz or {destdir}/rootimg.sfs on "
            f"{here}, please run packimage (e.g.  packimage -o {boot.osvers} -p {boot.profile} "
            f"-a {boot.osarch}"
        )
    return None


def copy_boot_files(boot: BootImage, tftp: Path) -> None:
    """anaconda.pm lines 517-541: kernel and initrd to <tftpdir>/xcat/osimage/<image>/."""
    target = tftp / "xcat" / "osimage" / boot.name
    target.mkdir(parents=True, exist_ok=True)
    for name in ("kernel", boot.initrd()):
        write_atomic(target / name, (boot.rootimgdir / name).read_bytes())


def nfs_root(boot: BootImage, node: dict[str, str], server: str) -> str:
    """anaconda.pm lines 619-642 and SvrUtils build_statelite_nfsroot_parameter."""
    nfsdir = str(boot.rootimgdir)
    if node.get("nfsdir"):
        nfsdir = f"{node['nfsdir']}/netboot/{boot.osvers}/{boot.osarch}/{boot.profile}"
        if node["nfsdir"].startswith("//"):
            nfsdir = node["nfsdir"][1:]
    options = ["ro", *[o for o in boot.image.get("nfsrootopts", "").split(",") if o]]
    options = [o for i, o in enumerate(options) if i == 0 or o.lower() != "ro"]
    return f"root=nfs:{server}:{nfsdir}/rootimg:{','.join(options)}"


def volatile_kcmdline(text: str) -> str:
    """xCAT::Utils splitkcmdline: every word but the R:: (persistent) ones, each + ' '."""
    return "".join(f"{word} " for word in text.split(" ") if not word.startswith("R::"))


def kcmdline_for(boot: BootImage, node_name: str, node: dict[str, str]) -> str:
    """The kernel command line of mknetboot (anaconda.pm lines 614-835) plus the
    addkcmdline words the boot loader plugin appends (xnba.pm lines 174-230)."""
    master = node.get("xcatmaster") or "!myipfn!"
    server = master
    for attr in ("nfsserver", "tftpserver"):
        if node.get(attr) and node[attr] != "<xcatmaster>":
            server = node[attr]
            break
    base = f"http://{server}:{HTTPPORT}/{boot.rootimgdir}"
    if boot.statelite and boot.rootfstype != "ramdisk":
        line = f"{nfs_root(boot, node, server)} STATEMNT= "
    elif boot.statelite:
        line = f"imgurl={base}/rootimg-statelite.gz STATEMNT= "
    else:
        line = f"imgurl={base}/{compressed_rootimg(boot.rootimgdir)} "
    line += f"XCAT={master}:{XCATDPORT} NODE={node_name} "
    line += "" if boot.statelite else "FC=0 "
    line += f"XCATHTTPPORT={HTTPPORT} "
    nicname = node.get("installnic") or node.get("primarynic") or boot.image.get("nodebootif")
    if nicname and nicname.lower() != "mac":
        line += f"netdev={nicname} "
    if node.get("serialport"):
        line += f" console=tty0 console=ttyS{node['serialport']},{node.get('serialspeed', '')}"
        if re.search(r"hard|tcs|ctsrts", node.get("serialflow", "")):
            line += "n8r"
    if re.search(r"fedora12|fedora13|(?:rhels|ol|alma|rocky)(?:[7-9]|10)", boot.osvers):
        line += " selinux=0 "
    if boot.statelite:
        line += " MNTOPTS="
    extra = node.get("addkcmdline", "")
    if boot.image.get("addkcmdline"):
        extra = f"{extra} {boot.image['addkcmdline']}"
    if extra:
        line += " " + volatile_kcmdline(extra)
    return line


def nodeset_target(state: State, target: str) -> BootImage:
    """destiny.pm lines 294-306: the image must exist and have a provmethod."""
    with state.locked():
        db = state.osimages()
    if target not in db:
        raise XcatError(f"Cannot find the OS image {target} in the osimage table.")
    if not db[target].get("provmethod"):
        raise XcatError(f"osimage.provmethod for {target} must be set.")
    if db[target]["provmethod"] not in ("netboot", "statelite"):
        raise stub_error(f"nodeset for provmethod={db[target]['provmethod']} is not implemented")
    return BootImage(target, db[target])


def node_images(
    state: State, nodes: dict[str, dict[str, str]], names: list[str], target: str, msgs: Messages
) -> dict[str, BootImage]:
    """The image of each node: the one named (whose attributes destiny.pm lines 317-332
    write into every node first) or the node's provmethod (lines 334-414)."""
    if target:
        boot = nodeset_target(state, target)
        for name in names:
            nodes[name].update(
                provmethod=target, profile=boot.profile, os=boot.osvers, arch=boot.osarch
            )
        return {name: boot for name in names}
    images: dict[str, BootImage] = {}
    for name in names:
        image = nodes[name].get("provmethod", "")
        if image in ("", "install", "netboot", "statelite"):
            msgs.node_error(name, "OS image name must be specified in nodetype.provmethod")
            continue
        try:
            images[name] = nodeset_target(state, image)
        except XcatError:
            msgs.node_error(name, f"Cannot find the OS image {image} in the osimage table")
    return images


def mknetboot(
    state: State,
    nodes: dict[str, dict[str, str]],
    images: dict[str, BootImage],
    copy: bool,
    msgs: Messages,
) -> dict[str, dict[str, str]]:
    """anaconda.pm mknetboot for each node: checks, copy once per image, boot parameters."""
    params: dict[str, dict[str, str]] = {}
    copied: set[str] = set()
    for name, boot in images.items():
        if not nodes[name].get("mac"):
            msgs.node_error(name, "No MAC address available for this node")  # destiny.pm 426-440
            continue
        problem = check_boot_files(boot)
        if problem:
            msgs.node_error(name, problem)
            continue
        if copy and boot.name not in copied:
            copy_boot_files(boot, tftp_dir(state))
            copied.add(boot.name)
        relative = f"xcat/osimage/{boot.name}"
        params[name] = {
            "kernel": f"{relative}/kernel",
            "initrd": f"{relative}/{boot.initrd()}",
            "kcmdline": kcmdline_for(boot, name, nodes[name]),
        }
    return params


def parse_nodeset(args: list[str]) -> tuple[str, str, bool]:
    """nodeset <noderange> osimage[=<image>] [--noupdateinitrd]: (noderange, image, copy)."""
    opts, operands = getopts(
        args, [Option("noupdateinitrd"), Option("ignorekernelchk"), Option("V")], bundling=False
    )
    if len(operands) != 2:
        raise Usage(NODESET_USAGE, 1)
    noderange_text, state_arg = operands
    state_arg = state_arg.split(",", 1)[0]
    if state_arg in ("install", "netboot", "statelite") or re.match(
        r"^(install|netboot|statelite)=", state_arg
    ):
        raise XcatError(
            'The options "install", "netboot", and "statelite" have been deprecated, use '
            '"osimage=<osimage_name>" instead.'
        )
    if state_arg != "osimage" and not state_arg.startswith("osimage="):
        raise stub_error(f"nodeset {state_arg} is not implemented by the stub")
    target = state_arg.partition("=")[2].split(":", 1)[0]
    if state_arg.startswith("osimage=") and not target:
        raise XcatError(f'invalid argument: "{state_arg}"')
    return noderange_text, target, not opts.get("noupdateinitrd")


def cmd_nodeset(state: State, args: list[str]) -> int:
    """destiny.pm setdestiny for osimage[=<image>] and anaconda.pm mknetboot."""
    noderange_text, target, copy = parse_nodeset(args)
    with state.locked():
        nodes = state.objects("node")
    names, missed = noderange(noderange_text, nodes, verify=True)
    if missed:
        raise XcatError(f"Invalid nodes and/or groups in noderange: {','.join(missed)}")
    state.injected("nodeset", names)
    msgs = Messages()
    images = node_images(state, nodes, names, target, msgs)
    params = mknetboot(state, nodes, images, copy, msgs)
    for name in params:
        boot = images[name]
        kind = "statelite" if boot.statelite else "netboot"
        nodes[name]["currstate"] = f"{kind} {boot.osvers}-{boot.osarch}-{boot.profile}"
    with state.locked():
        stored = state.objects("node")
        for name in names:
            stored[name] = nodes[name]
        state.save_objects("node", stored)
        bootparams = state.bootparams()
        bootparams.update(params)
        state.save_bootparams(bootparams)
    for name in names:
        if name in params:
            print(f"{name}: {nodes[name]['currstate']}")
    return msgs.rc if params or msgs.rc else 1


# ---------------------------------------------------------------------------- power and boot
#
# The stand-in's nodes: power.json holds each node's power ("on"/"off") and the boot an
# rpower started ({"start", "offline", "record"}); a node without an entry is on.
# nodefaults.json holds the faults tests set per node (tests/xcatstub set_node_boot):
# {"delay", "never", "rpower_error", "down"}.  A boot completes lazily: every command
# settles the boots that are due (settle_boots) before it looks at the nodes, so the
# completion time is the due time, whenever it is observed.  running.json holds each
# node's last completed boot.

STATUS_POWERING_ON = "powering-on"  # perl-xCAT/xCAT/GlobalDef.pm line 52
STATUS_POWERING_OFF = "powering-off"  # GlobalDef.pm line 53
STATUS_BOOTED = "booted"  # GlobalDef.pm line 51
# monitorctrl.pm setNodeStatusAttributes (lines 694-701): sprintf("%02d-%02d-%04d
# %02d:%02d:%02d", mon+1, mday, year+1900, hour, min, sec) of localtime(time)
STATUSTIME_FORMAT = "%m-%d-%Y %H:%M:%S"
# xcatd plugin_command (lines 1866-1890) for a node no rpower plugin claims: the handler
# specs of the plugins registered for rpower ('nodehm:power,mgt', 'nodehm:mgt'), ':' as
# '.'; restapi.pl line 2371 quotes this very message
NO_PLUGIN = (
    "Unable to identify plugin for this command, check relevant tables: nodehm.power,mgt;nodehm.mgt"
)
# ipmi.pm preprocess_request (line 8338): the actions the ipmi plugin accepts
IPMI_ACTIONS = frozenset(
    [
        "reseat",
        "stat",
        "state",
        "status",
        "on",
        "off",
        "softoff",
        "nmi",
        "cycle",
        "reset",
        "boot",
        "wake",
        "suspend",
    ]
)
STUB_ACTIONS = frozenset(["on", "off", "reset", "boot", "stat", "state", "status"])
POWER_MGTS = ("ipmi", "kvm")
NODESTAT_USAGE = (
    "Usage:\n"
    "  nodestat [noderange] [-m|--usemon] [-p|powerstat] [-f|--usefping] [-u|--updatedb]\n"
    "  nodestat [-h|--help|-v|--version]"
)


def statustime(when: float) -> str:
    return time.strftime(STATUSTIME_FORMAT, time.localtime(when))


def load_json(state: State, name: str, default: Any) -> Any:
    """A state file, read while the caller holds the state lock."""
    return state._load(name, default)


def node_faults(state: State) -> dict[str, dict[str, Any]]:
    """nodefaults.json: {node: {"delay", "never", "rpower_error", "down"}}."""
    data: dict[str, dict[str, Any]] = load_json(state, "nodefaults.json", {})
    return data


def is_down(faults: dict[str, dict[str, Any]], node: str) -> bool:
    return bool(faults.get(node, {}).get("down"))


def power_is_on(
    power: dict[str, dict[str, Any]], faults: dict[str, dict[str, Any]], node: str
) -> bool:
    """A down node is off; otherwise power.json says, and a node never powered is on."""
    if is_down(faults, node):
        return False
    return bool(power.get(node, {}).get("power", "on") == "on")


def settle_boots(state: State, now: Optional[float] = None) -> None:
    """Complete the boots that are due, as the nodes themselves would report them.

    A netbooted node reports `netbooting` from its initrd (netboot/rh/dracut/
    xcat-premount.sh line 23) and `booted` once its postbootscripts ran
    (postscripts/xcatdsklspost lines 1047-1066, "installstatus booted"); xcatd turns each
    report into updatenodestat (xcatd lines 505-526), which sets status and statustime
    through setNodeStatusAttributes (updatenode.pm lines 2419-2434).  The stand-in skips
    the netbooting report: status stays powering-on until the boot completes, and then is
    booted with the completion time.  A boot completes `delay` seconds after rpower
    started it, unless the node is `never` (both read now, from nodefaults.json: a test
    may change them while the boot is pending).  A node set `down` has lost power: it
    stays off, its pending boot lost, until rpower powers it on.  Caller holds the state
    lock.
    """
    power: dict[str, dict[str, Any]] = load_json(state, "power.json", {})
    faults = node_faults(state)
    falling = [n for n in faults if is_down(faults, n) and power.get(n, {}).get("power") != "off"]
    pending = [n for n, e in power.items() if e.get("boot")]
    if not pending and not falling:
        return
    now = time.time() if now is None else now
    nodes = state.objects("node")
    running: dict[str, dict[str, str]] = load_json(state, "running.json", {})
    for name in falling:
        if name in nodes:
            power[name] = {"power": "off", "boot": None}
    for name in pending:
        boot = power[name]["boot"]
        if boot is None:
            continue
        if name not in nodes:
            power[name]["boot"] = None
            continue
        fault = faults.get(name, {})
        due = boot["start"] + float(fault.get("delay") or 0.0)
        if boot.get("offline") or fault.get("never") or due > now:
            continue
        done = statustime(due)
        nodes[name].update(status=STATUS_BOOTED, statustime=done)
        running[name] = dict(boot["record"], time=done)
        power[name]["boot"] = None
    state.save_objects("node", nodes)
    state._save("running.json", running)
    state._save("power.json", power)


def booted_rootimgdir(kcmdline: str, image: dict[str, str]) -> str:
    """The image directory a node fetches: the path in the kernel command line nodeset
    built (imgurl=http://<server>:<port>/<rootimgdir>/<file>, or root=nfs:<server>:
    <rootimgdir>/rootimg:<options> for statelite), resolved as the web or NFS server
    resolves it when the node fetches it; else the osimage's rootimgdir."""
    match = re.search(r"(?:^|\s)imgurl=https?://[^/\s]+(/\S*)/[^/\s]+", kcmdline)
    match = match or re.search(r"(?:^|\s)root=nfs:[^:\s]+:(\S+?)/rootimg:", kcmdline)
    path = match.group(1) if match else image.get("rootimgdir", "")
    if not path:
        return ""
    return os.path.realpath("/" + path.lstrip("/"))


def boot_record(
    name: str, node: dict[str, str], params: Optional[dict[str, str]], images: dict[str, Any]
) -> dict[str, str]:
    """What the node boots: the boot files nodeset set up for it (bootparams.json) and the
    image directory its kernel command line names."""
    params = params or {}
    provmethod = node.get("provmethod", "")
    match = re.match(r"xcat/osimage/([^/]+)/", params.get("kernel", ""))
    image = match.group(1) if match else provmethod
    return {
        "image": image,
        "provmethod": provmethod,
        "kernel": params.get("kernel", ""),
        "initrd": params.get("initrd", ""),
        "kcmdline": params.get("kcmdline", ""),
        "rootimgdir": booted_rootimgdir(params.get("kcmdline", ""), images.get(image, {})),
    }


def power_message(mgt: str, action: str, was_on: bool) -> tuple[str, Optional[str]]:
    """(what rpower prints for the node, the status it sets or None) for one action.

    ipmi.pm power_with_context (lines 2835-2938) reads the power state first: stat/state/
    status print it (lines 2857-2867); boot becomes reset when on and on when off (lines
    2870-2874); on of an on node and off/reset of an off node print the state and send
    nothing (lines 2883-2900).  power_response (lines 2940-2978) prints the action sent
    ("on" or "reset" for boot: the "on "/"off " prefix line 2871 builds is never printed)
    and records powering-on for on/boot/reset and powering-off for off (lines 2957-2967),
    which process_request writes with setNodeStatusAttributes (line 9033).
    kvm.pm power (lines 3216-3325) prints the old state before the action for boot
    ("off on", "on reset", lines 3227-3235, 3314, 3322-3324); otherwise the same words.
    """
    state_word = "on" if was_on else "off"
    if action in ("stat", "state", "status"):
        return state_word, None
    if action == "boot":
        done = "reset" if was_on else "on"
        text = f"{state_word} {done}" if mgt == "kvm" else done
        return text, STATUS_POWERING_ON
    if action == "on":
        return "on", None if was_on else STATUS_POWERING_ON
    if action == "reset":
        return ("reset", STATUS_POWERING_ON) if was_on else ("off", None)
    return "off", STATUS_POWERING_OFF if was_on else None  # off


def parse_rpower(args: list[str]) -> tuple[str, str]:
    """xcatclient: the first argument not starting with '-' is the noderange, the others
    are the arguments (xCAT-client/bin/xcatclient lines 62-70)."""
    options = [a for a in args if a.startswith("-")]
    operands = [a for a in args if not a.startswith("-")]
    if options:
        raise stub_error(f"rpower: options are not implemented ({' '.join(options)})")
    if len(operands) < 2:
        raise stub_error(
            "rpower needs a noderange and an action (xCAT prints its usage and 'Please enter "
            "an action' for each ipmi node)"
        )
    if len(operands) > 2:
        raise stub_error(f"rpower: extra arguments after the action: {' '.join(operands[2:])}")
    return operands[0], operands[1]


def cmd_rpower(state: State, args: list[str]) -> int:
    """rpower <noderange> on|off|reset|boot|stat|state|status for mgt=ipmi and mgt=kvm.

    Output per node `<node>: <text>` on stdout, errors `<node>: Error: <text>` on stderr
    with exit code 1 (Client.pm handle_response lines 1229-1320); the other nodes still
    proceed.  on/boot/reset of a node start a boot (settle_boots completes it).
    """
    noderange_text, action = parse_rpower(args)
    with state.locked():
        nodes = state.objects("node")
    names, missed = noderange(noderange_text, nodes, verify=True)
    if missed:
        # xcatd plugin_command lines 1726-1733, before any plugin runs
        raise XcatError(f"Invalid nodes and/or groups in noderange: {','.join(missed)}")
    if action not in IPMI_ACTIONS:
        if any(nodes[n].get("mgt") != "ipmi" for n in names):
            raise stub_error(f"rpower {action} for nodes not managed by ipmi is not implemented")
        # ipmi.pm preprocess_request lines 8338-8348: one data response, errorcode 1
        for name in names:
            print(f"{name}: Error: Unsupported command: rpower {action} when using mgt=ipmi.")
        return 1
    if action not in STUB_ACTIONS:
        raise stub_error(f"rpower {action} is not implemented")
    state.injected("rpower", names)
    msgs = Messages()
    with state.locked():
        now = time.time()
        settle_boots(state, now)
        nodes = state.objects("node")
        power: dict[str, dict[str, Any]] = load_json(state, "power.json", {})
        faults = node_faults(state)
        bootparams = state.bootparams()
        images = state.osimages()
        changed = False
        for name in names:
            fault = faults.get(name, {})
            mgt = nodes[name].get("mgt", "")
            if fault.get("rpower_error"):
                msgs.node_error(name, str(fault["rpower_error"]))
                continue
            if not mgt:
                msgs.node_error(name, NO_PLUGIN)
                continue
            if mgt not in POWER_MGTS:
                msgs.node_error(name, f"xcatstub: rpower for mgt={mgt} is not implemented")
                continue
            was_on = power_is_on(power, faults, name)
            text, status = power_message(mgt, action, was_on)
            print(f"{name}: {text}")
            if status is None:
                continue
            changed = True
            nodes[name].update(status=status, statustime=statustime(now))
            entry = power.setdefault(name, {})
            if status == STATUS_POWERING_OFF:
                entry.update(power="off", boot=None)
                continue
            record = boot_record(name, nodes[name], bootparams.get(name), images)
            # without boot parameters the node is `offline` (xnba.pm getstate, lines
            # 84-87): it has nothing to netboot and never reports booted
            boot: dict[str, Any] = {"start": now, "offline": not record["kernel"]}
            boot["record"] = record
            entry.update(power="on", boot=boot)
            if fault.get("down"):
                fault["down"] = False  # powered on again
        if changed:
            state.save_objects("node", nodes)
            state._save("power.json", power)
            state._save("nodefaults.json", faults)
    return msgs.rc


def cmd_nodestat(state: State, args: list[str]) -> int:
    """nodestat <noderange>: `<node>: sshd` for a node that is up, `<node>: noping` for
    one that is off or has not finished booting (nodestat.pm: nmap finds port 22 open,
    appstatus 'sshd', lines 663-690, printed instead of 'ping', line 1148; a node that
    does not answer is 'noping', lines 763-765); sorted by node name (line 1142); exit 0.
    A pingable node without sshd (xCAT prints its nodeset state) is not modelled."""
    try:
        opts, operands = getopts(
            args,
            [
                Option("m|usemon"),
                Option("q|quiet"),
                Option("u|updatedb"),
                Option("p|powerstat"),
                Option("h|help"),
                Option("v|version"),
            ],
            bundling=True,
        )
    except XcatError:
        # preprocess_request lines 147-157: usage as data with errorcode 1.  -f is not
        # among its options (process_request parses it, line 926), so it lands here too.
        print(NODESTAT_USAGE)
        return 1
    if opts.get("help"):
        print(NODESTAT_USAGE)
        return 0
    if opts.get("version"):
        print("Version 2.19.0 (xcatstub)")
        return 0
    used = [k for k in ("m", "q", "u", "p") if opts.get(k)]
    if used:
        raise stub_error(f"nodestat: option -{used[0]} is not implemented")
    if not operands:
        print(NODESTAT_USAGE)  # lines 169-174: no noderange
        return 1
    if len(operands) > 1:
        raise stub_error(f"nodestat takes one noderange, got {' '.join(operands)}")
    with state.locked():
        nodes = state.objects("node")
    names, missed = noderange(operands[0], nodes, verify=True)
    if missed:
        raise XcatError(f"Invalid nodes and/or groups in noderange: {','.join(missed)}")
    state.injected("nodestat", names)
    with state.locked():
        settle_boots(state)
        power: dict[str, dict[str, Any]] = load_json(state, "power.json", {})
        faults = node_faults(state)
    for name in sorted(names):
        up = power_is_on(power, faults, name) and not power.get(name, {}).get("boot")
        print(f"{name}: {'sshd' if up else 'noping'}")
    return 0


# ---------------------------------------------------------------------------- tables


def parse_xcat_csv(lines: list[str], columns: list[str]) -> list[dict[str, Optional[str]]]:
    """Rows of a tabdump CSV body, parsed with the rules of xCAT's tabrestore."""
    rows: list[dict[str, Optional[str]]] = []
    index = 0
    while index < len(lines):
        line = lines[index].rstrip()
        number = index
        index += 1
        origline = line
        if not line:
            continue
        record: dict[str, Optional[str]] = {}
        for col in columns:
            if line.startswith(",") or line == "":
                record[col] = None
                line = line[1:] if line.startswith(",") else line
            elif re.match(r'^[^,]*"', line):
                if not line.startswith('"'):
                    raise XcatError(
                        f'CSV missing opening " for record with " characters on line {number}, '
                        f"character {origline.find(line)}: {origline}",
                        rc=4,
                    )
                offset = 1
                value: Optional[str] = None
                while value is None:
                    found = line.find('"', offset)
                    if found < 0:
                        if index < len(lines):
                            offset = len(line)
                            line = (line + "\n" + lines[index]).rstrip()
                            index += 1
                            continue
                        raise XcatError(
                            f'CSV unmatched " in record on line {number}, character '
                            f"{origline.find(line)}: {origline}",
                            rc=4,
                        )
                    after = line[found + 1 : found + 2]
                    if after == '"':
                        offset = found + 2
                    elif found + 1 == len(line) or after == ",":
                        value = line[1:found].replace('""', '"')
                        line = line[found + 1 :]
                        line = line[1:] if line.startswith(",") else line
                    else:
                        raise XcatError(
                            f'CSV unescaped " in record on line {number}, character '
                            f"{origline.find(line)}: {origline}",
                            rc=4,
                        )
                record[col] = value
            else:
                match = re.match(r"^([^,]+)(,|$)", line)
                assert match is not None
                record[col] = match.group(1)
                line = line[match.end() :]
        if line:
            raise XcatError(f"Too many fields on line {number}: {origline} | {line}", rc=4)
        rows.append(record)
    return rows


def csv_cell(value: Optional[str]) -> str:
    return "" if value is None else '"' + value.replace('"', '""') + '"'


def table_check(table: str, command: str) -> None:
    if table == "litefile":
        return
    if table in XCAT_TABLES:
        raise stub_error(f"{command}: only the litefile table is implemented, not {table}")
    raise XcatError(f"Unable to open {table}", rc=4)


def cmd_tabrestore(state: State, args: list[str]) -> int:
    usage = (
        "Usage: tabrestore <tablename>.csv\n       tabrestore -a <tablename>.csv\n"
        "       tabrestore [-?|-h|--help]\n       tabrestore [-v|--version]"
    )
    try:
        opts, operands = getopts(
            args,
            [Option("help|h|?"), Option("version|v"), Option("addrows|a")],
            bundling=False,
        )
    except XcatError:
        raise Usage(usage, 1) from None
    if opts.get("version"):
        raise Usage("Version 2.19.0 (xcatstub)", 0)
    if opts.get("help"):
        raise Usage(usage, 0)
    if not operands:
        raise Usage(usage, 2)
    filename = operands[0]
    table = os.path.basename(filename).split(".", 1)[0]  # tabrestore: s/\..*// on the basename
    try:
        lines = Path(filename).read_text(encoding="utf-8").splitlines()
    except OSError:
        print(f"Error: Unable to open {filename} for reading.")
        return 3
    table_check(table, "tabrestore")
    if not lines or not lines[0].startswith("#"):
        raise XcatError("Data missing header line starting with #")
    header = lines[0].replace('"', "").lstrip("#").rstrip()
    columns = header.split(",")
    for col in columns:
        if col not in LITEFILE_COLS:
            raise XcatError(
                f"The header line indicates that column '{col}' should exist, which is not "
                f"defined in the schema for '{table}'"
            )
    records = parse_xcat_csv(lines[1:], columns)
    state.injected("tabrestore", sorted({r.get("image") or "" for r in records}))
    with state.locked():
        rows = state.litefile() if opts.get("addrows") else []
        for number, record in enumerate(records):
            full = {col: record.get(col) for col in LITEFILE_COLS}
            if full in rows:
                continue  # setAttribs with the whole record as key: an identical row is kept
            key = tuple(full[k] for k in LITEFILE_KEYS)
            if None not in key and any(tuple(r[k] for k in LITEFILE_KEYS) == key for r in rows):
                raise XcatError(
                    "DB error UNIQUE constraint failed: litefile.image, litefile.file with line "
                    f"{number}: " + ",".join(csv_cell(full[c]) for c in columns),
                    rc=4,
                )
            rows.append(full)
        state.save_litefile(rows)
    return 0


def cmd_tabch(state: State, args: list[str]) -> int:
    usage = (
        "Usage: tabch [-h|--help] [-v|--version]\n"
        "       tabch keycolname=keyvalue[,keycolname=keyvalue...] "
        "tablename.colname=newvalue [...]\n"
        "       tabch -d keycolname=keyvalue[,keycolname=keyvalue...] tablename [...]"
    )
    try:
        opts, operands = getopts(
            args, [Option("delete|d"), Option("help|h"), Option("version|v")], bundling=True
        )
    except XcatError:
        raise Usage(usage, 1) from None
    if opts.get("help"):
        raise Usage(usage, 0)
    if opts.get("version"):
        raise Usage("Version 2.19.0 (xcatstub)", 0)
    if len(operands) < 2:
        raise Usage(usage, 1)
    keys: dict[str, str] = {}
    for pair in operands[0].split(","):
        col, eq, value = pair.partition("=")
        if not eq:
            raise XcatError(f"Incorrect key=value pair: {pair}")
        keys[col] = value
    if opts.get("delete"):
        tables = operands[1:]
        for table in tables:
            table_check(table, "tabch")
        for col in keys:
            if col not in LITEFILE_COLS:
                raise XcatError(f"{col} is not a valid column of the litefile table")
        state.injected("tabch", [keys.get("image", "")])
        with state.locked():
            rows = state.litefile()
            kept = [r for r in rows if not all(r.get(c) == v for c, v in keys.items())]
            state.save_litefile(kept)
        return 0
    updates: dict[str, str] = {}
    for assignment in operands[1:]:
        target, eq, value = assignment.partition("=")
        table, dot, col = target.partition(".")
        if not eq or not dot:
            raise XcatError(f"Incorrect table.column=value: {assignment}")
        table_check(table, "tabch")
        if col not in LITEFILE_COLS or target.endswith("+"):
            raise XcatError(f"{col} is not a valid column of the litefile table")
        updates[col] = value
    for col in keys:
        if col not in LITEFILE_KEYS:
            raise XcatError(f"{col} is not a key of the litefile table (keys: image, file)")
    state.injected("tabch", [keys.get("image", "")])
    with state.locked():
        rows = state.litefile()
        matched = [r for r in rows if all(r.get(c) == v for c, v in keys.items())]
        for row in matched:
            row.update(updates)
        if not matched:
            new: dict[str, Optional[str]] = {c: None for c in LITEFILE_COLS}
            new.update(keys)
            new.update(updates)
            rows.append(new)
        state.save_litefile(rows)
    return 0


def cmd_tabdump(state: State, args: list[str]) -> int:
    usage = (
        "Usage: tabdump [-d] [table]\n       tabdump      [table]\n       tabdump [-?|-h|--help]"
    )
    try:
        opts, operands = getopts(
            args,
            [
                Option("help|h|?"),
                Option("version|v"),
                Option("lines|n", takes_arg=True),
                Option("d"),
                Option("f", takes_arg=True),
                Option("w", takes_arg=True, multi=True),
            ],
            bundling=True,
        )
    except XcatError:
        raise Usage(usage, 1) from None
    if opts.get("help"):
        raise Usage(usage, 0)
    if any(opts.get(k) for k in ("lines", "d", "f", "w")):
        raise stub_error("tabdump: options -n, -d, -f and -w are not implemented")
    if len(operands) > 1:
        raise Usage(usage, 1)
    if not operands:
        print("\n".join(sorted(XCAT_TABLES)))
        return 0
    table = operands[0]
    if table != "litefile":
        if table in XCAT_TABLES:
            raise stub_error(f"tabdump: only the litefile table is implemented, not {table}")
        raise XcatError(f"No such table: {table}")
    with state.locked():
        rows = state.litefile()
    print("#" + ",".join(LITEFILE_COLS))
    for row in rows:
        print(",".join(csv_cell(row.get(c)) for c in LITEFILE_COLS))
    return 0


# ---------------------------------------------------------------------------- main


def run(command: str, args: list[str], state: State, record: dict[str, Any]) -> int:
    try:
        with state.locked():
            settle_boots(state)  # the boots due by now, before the command looks at nodes
        if command in ("mkdef", "chdef", "lsdef", "rmdef"):
            stdin = read_stdin()
            if stdin is not None:
                record["stdin"] = stdin
            handler: Callable[[State, list[str], Optional[str]], int] = {
                "mkdef": cmd_mkdef,
                "chdef": cmd_chdef,
                "lsdef": cmd_lsdef,
                "rmdef": cmd_rmdef,
            }[command]
            return handler(state, args, stdin)
        simple: Callable[[State, list[str]], int] = {
            "genimage": cmd_genimage,
            "packimage": cmd_packimage,
            "liteimg": cmd_liteimg,
            "tabrestore": cmd_tabrestore,
            "tabch": cmd_tabch,
            "tabdump": cmd_tabdump,
            "nodeset": cmd_nodeset,
            "xdcp": cmd_xdcp,
            "rpower": cmd_rpower,
            "nodestat": cmd_nodestat,
        }[command]
        return simple(state, args)
    except Usage as usage:
        stream = sys.stdout if usage.rc == 0 else sys.stderr
        print(usage.text.rstrip("\n"), file=stream)
        return usage.rc
    except XcatError as err:
        sys.stdout.flush()
        for line in err.lines:
            print(f"Error: {line}", file=sys.stderr)
        return err.rc


def run_internal(command: str, args: list[str], state: State) -> int:
    """Helpers the stub runs itself (never on PATH, never recorded in calls.jsonl)."""
    try:
        return {"_pkgmgr": cmd_pkgmgr}[command](state, args)
    except XcatError as err:
        for line in err.lines:
            print(line)
        return err.rc


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[1] in INTERNAL_COMMANDS and os.environ.get("XCATSTUB_STATE"):
        return run_internal(argv[1], argv[2:], State(Path(os.environ["XCATSTUB_STATE"])))
    if len(argv) < 2 or argv[1] not in COMMANDS:
        print(f"xcatstub: usage: xcatstub.py {{{'|'.join(COMMANDS)}}} [ARGS...]", file=sys.stderr)
        return 127
    command, args = argv[1], argv[2:]
    root = os.environ.get("XCATSTUB_STATE")
    if not root:
        print("Error: xcatstub: XCATSTUB_STATE is not set", file=sys.stderr)
        return 1
    state = State(Path(root))
    record: dict[str, Any] = {"cmd": command, "args": args}
    rc = 1
    try:
        rc = run(command, args, state, record)
    finally:
        sys.stdout.flush()
        record["rc"] = rc
        state.record(record)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
