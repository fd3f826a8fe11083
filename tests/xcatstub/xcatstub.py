#!/usr/bin/env python3
"""xcatstub: a stand-in for the xCAT commands imagespec drives on a director.

Usage: xcatstub.py COMMAND [ARGS...]   with XCATSTUB_STATE=<state dir> in the environment.

COMMAND is one of mkdef, chdef, lsdef, rmdef, genimage, packimage, liteimg,
tabrestore, tabch, tabdump.  The state directory holds the stub's database:

    osimage.json   {name: {attr: value}}   (objtype is implied: only osimage is kept)
    litefile.json  [{image, file, options, comments, disable}]   (null for unset cells)
    calls.jsonl    one line per call: {"cmd", "args", "stdin" (when read), "rc"}
    fail           optional failure injection: lines "COMMAND [NAME|*] [once]"

Arguments are checked the way xCAT 2.x checks them (DBobjectdefs.pm, genimage.pm,
packimage.pm, statelite.pm, tabutils.pm and the xCAT-client front ends); where the
real command would do something a test can never want (prompt on a terminal, write
outside the test's directories, rewrite a definition behind imagespec's back) the
stub refuses with an "Error: xcatstub: ..." message instead.  Python 3.9+, stdlib only.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import select
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional, Union

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
)

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

# Object types xCAT knows; the stub implements only osimage.
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
LITE_OPTIONS = frozenset(
    [
        "tmpfs",
        "persistent",
        "localdisk",
        "rw",
        "ro",
        "con",
        "link",
        "tmpfs,rw",
        "link,ro",
        "link,persistent",
        "link,con",
    ]
)
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

    def osimages(self) -> dict[str, dict[str, str]]:
        data: dict[str, dict[str, str]] = self._load("osimage.json", {})
        return data

    def save_osimages(self, data: dict[str, dict[str, str]]) -> None:
        self._save("osimage.json", data)

    def litefile(self) -> list[dict[str, Optional[str]]]:
        data: list[dict[str, Optional[str]]] = self._load("litefile.json", [])
        return data

    def save_litefile(self, rows: list[dict[str, Optional[str]]]) -> None:
        self._save("litefile.json", rows)

    def record(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, sort_keys=True) + "\n"
        with open(self.root / "calls.jsonl", "a", encoding="utf-8") as handle:
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
    """Parse a stanza file as xCAT's DBobjUtils::readFileInput does.

    Returns (object names in file order, {name: {attr: value}}).  Faithful to xCAT's
    quirks: a line ending in ':' is a header (even `attr=value:`; such an invalid header
    and any other unparsable line make the following attribute lines be ignored until
    the next valid header); a name containing 'default' is a defaults stanza, never an
    object; values lose surrounding spaces and double quotes.
    """
    names: list[str] = []
    attrs: dict[str, dict[str, str]] = {}
    defaults: dict[str, dict[str, str]] = {}
    look_for_colon = True
    objectname = ""
    default_type: Optional[str] = None
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
            if "default" in objectname:
                parts = objectname.split("-")
                if len(parts) > 1 and parts[1]:
                    default_type = parts[1]
                    objectname = "default"
                continue
            names.append(objectname)
            continue
        match = re.match(r"^\s*(.*?)\s*=\s*(.*)", line)
        if match and not look_for_colon:
            attr, value = match.group(1).strip(), match.group(2).strip()
            value = re.sub(r'^\s*"\s*', "", value)
            value = re.sub(r'\s*"\s*$', "", value)
            if objectname == "default":
                if default_type is not None:
                    defaults.setdefault(default_type, {})[attr] = value
                continue
            entry = attrs.setdefault(objectname, {})
            entry[attr] = value
            if attr == "objtype":
                entry.update(defaults.get(value, {}))
            continue
        look_for_colon = True
    return names, attrs


def format_stanzas(db: dict[str, dict[str, str]], names: list[str], only: list[str]) -> list[str]:
    out = [STANZA_HEADER]
    for name in names:
        out.append("")
        out.append(f"{name}:")
        out.append("    objtype=osimage")
        attrs = db[name]
        for attr in only or sorted(attrs):
            value = attrs.get(attr, "")
            if value or only:
                out.append(f"    {attr}={value}")
    return out


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


class DbRequest:
    """The parsed command line of mkdef/chdef/lsdef/rmdef (xCAT's processArgs)."""

    def __init__(self, command: str, args: list[str], stdin: Optional[str]) -> None:
        self.command = command
        try:
            self.opts, operands = getopts(args, DB_SPEC, bundling=True)
        except XcatError:
            raise XcatError("Invalid option..", rc=1) from None
        self.attrs: dict[str, str] = {}
        self.names: list[str] = []
        positional: list[str] = []
        for operand in operands:
            if "=" in operand:
                match = re.match(r"^\s*(\S+?)\s*=\s*(\S*.*)$", operand)
                if not match:
                    raise XcatError(f"Incorrect 'attr=val' pair - {operand}.")
                self.attrs[match.group(1)] = match.group(2)
            else:
                if positional:
                    raise XcatError("noderange can not contain spaces.")
                positional.append(operand)
        opts = self.opts
        if opts.get("help"):
            raise Usage(DB_USAGE[command], 0)
        if opts.get("version"):
            raise Usage(f"{command} - Version 2.16.5 (xcatstub)", 0)
        for flag in ("a", "d", "x", "w", "u", "n", "template", "osimage", "nics", "nocache"):
            key = {"a": "all", "d": "dynamic", "x": "xml"}.get(flag, flag)
            if opts.get(key):
                raise stub_error(f"{command}: option -{flag} is not implemented by the stub")
        if opts.get("long") and opts.get("short"):
            raise XcatError("The flags '-l' and '-s' cannot be used together.")
        if opts.get("compress") and not opts.get("i"):
            raise XcatError("The flags '-c' and '-i' must be used together.")
        if command == "rmdef" and any(
            opts.get(k) for k in ("i", "long", "m", "p", "short", "z", "dynamic")
        ):
            raise XcatError("Invalid flag specified, see rmdef manpage for details.")
        self.stanza_data = stdin if opts.get("z") else None
        if stdin is not None and not opts.get("z"):
            raise stub_error(
                f"{command}: data on standard input without -z; xCAT would read it as a stanza file"
            )
        types = opts.get("t")
        if types is None and command == "lsdef" and not self.stanza_data:
            types = "node"
        self.objtype: Optional[str] = None
        if types is not None:
            for objtype in types.split(","):
                if objtype not in XCAT_OBJTYPES:
                    raise XcatError(f"Type '{objtype}' is not a valid xCAT object type.")
            if types != "osimage":
                raise stub_error(f"{command}: only -t osimage is implemented, not -t {types}")
            self.objtype = types
        if positional:
            if self.objtype is None:
                raise stub_error(f"{command}: node ranges are not implemented; use -t osimage")
            self.names = positional[0].split(",")
        if opts.get("o") is not None:
            self.names = opts["o"].split(",")
        self.stanza_names: list[str] = []
        self.stanza_attrs: dict[str, dict[str, str]] = {}
        if self.stanza_data:
            self.stanza_names, self.stanza_attrs = parse_stanzas(self.stanza_data)


def check_attr_names(attrs: dict[str, str], errors: list[str], from_file: bool) -> dict[str, str]:
    good: dict[str, str] = {}
    # xCAT names the type from -t, which is empty for stanza input
    label = "" if from_file else "osimage"
    for attr, value in attrs.items():
        if attr == "objtype":
            continue
        if attr not in OSIMAGE_ATTRS:
            errors.append(
                f"'{attr}' is not a valid attribute name for an object type of '{label}'."
            )
            if not from_file:
                errors.append("Skipping to the next attribute.")
            continue
        good[attr] = value
    return good


def final_attrs(req: DbRequest, errors: list[str]) -> dict[str, dict[str, str]]:
    """Combine command-line and stanza attributes (xCAT's setFINALattrs), osimage only."""
    final: dict[str, dict[str, str]] = {}
    if req.stanza_data is not None:
        for name in req.stanza_names:
            attrs = req.stanza_attrs.get(name, {})
            objtype = attrs.get("objtype")
            if not objtype:
                errors.append(
                    f"\nNo objtype value was specified for '{name}'. Cannot create object "
                    "definition."
                )
                continue
            if objtype != "osimage":
                if objtype not in XCAT_OBJTYPES:
                    errors.append(f"Type '{objtype}' is not a valid xCAT object type.")
                else:
                    errors.append(
                        f"xcatstub: objtype={objtype} of '{name}' is not implemented by the stub"
                    )
                continue
            final[name] = check_attr_names(attrs, errors, from_file=True)
    else:
        if req.objtype is None:
            errors.append(f"xcatstub: {req.command}: give -t osimage")
            return final
        for name in req.names:
            final[name] = check_attr_names(req.attrs, errors, from_file=False)
    return final


def plan_objects(req: DbRequest) -> None:
    """Checks shared by mkdef and chdef before any object is touched."""
    opts = req.opts
    if opts.get("t") and opts.get("z"):
        raise XcatError("Cannot combine '-t' and '-a', '-z', or '-x' options.")
    if opts.get("z") and req.names:
        raise XcatError(
            "Cannot use '-z' with '-o' or a noderange.",
            f"Example of -z usage:\n\t'cat stanzafile | {req.command} -z'",
        )
    if req.stanza_data is not None:
        if not req.stanza_names:
            raise XcatError("No object names were provided.")
    elif not req.names:
        raise XcatError("No object names were provided.")


def cmd_mkdef(state: State, args: list[str], stdin: Optional[str]) -> int:
    req = DbRequest("mkdef", args, stdin)
    if req.opts.get("p") or req.opts.get("m"):
        raise XcatError("The '-p' and '-m' options are not valid for the mkdef command.")
    plan_objects(req)
    errors: list[str] = []
    final = final_attrs(req, errors)
    state.injected("mkdef", sorted(final))
    with state.locked():
        db = state.osimages()
        written = 0
        for name, attrs in final.items():
            if name in db and not req.opts.get("f"):
                errors.append(f"\nA definition for '{name}' already exists.")
                errors.append(
                    "To remove the old definition and replace it with \n"
                    "a new definition use the force '-f' option."
                )
                errors.append("To change the existing definition use the 'chdef' command.")
                continue
            db[name] = {k: v for k, v in attrs.items() if v != ""}
            written += 1
        state.save_osimages(db)
    if errors:
        raise XcatError(
            *errors,
            "One or more errors occured when attempting to create or modify xCAT \n"
            "object definitions.",
        )
    print(f"{written} object definitions have been created or modified.")
    return 0


def merge_list(old: str, change: str, plus: bool) -> str:
    items = [x for x in old.split(",") if x] if old else []
    for item in (x for x in change.split(",") if x):
        if plus and item not in items:
            items.append(item)
        elif not plus and item in items:
            items.remove(item)
    return ",".join(items)


def cmd_chdef(state: State, args: list[str], stdin: Optional[str]) -> int:
    req = DbRequest("chdef", args, stdin)
    if req.opts.get("f"):
        raise XcatError("The '-f' option is not valid for the chdef command.")
    plan_objects(req)
    errors: list[str] = []
    final = final_attrs(req, errors)
    state.injected("chdef", sorted(final))
    plus, minus = bool(req.opts.get("p")), bool(req.opts.get("m"))
    with state.locked():
        db = state.osimages()
        created = sorted(name for name in final if name not in db)
        for name, attrs in final.items():
            current = dict(db.get(name, {}))  # chdef creates a missing definition
            for attr, value in attrs.items():
                if plus or minus:
                    value = merge_list(current.get(attr, ""), value, plus)
                if value == "":
                    current.pop(attr, None)
                else:
                    current[attr] = value
            db[name] = current
        state.save_osimages(db)
    if errors:
        raise XcatError(
            *errors,
            "One or more errors occured when attempting to create or modify xCAT \n"
            "object definitions.",
        )
    print(f"{len(final)} object definitions have been created or modified.")
    if created:
        print(f"New object definitions '{','.join(created)}' have been created.")
    return 0


def cmd_lsdef(state: State, args: list[str], stdin: Optional[str]) -> int:
    req = DbRequest("lsdef", args, stdin)
    opts = req.opts
    if req.stanza_data is not None:
        raise stub_error("lsdef: reading object names from a stanza file is not implemented")
    with state.locked():
        db = state.osimages()
    only = [a for a in opts["i"].split(",") if a] if opts.get("i") else []
    for attr in only:
        if attr not in OSIMAGE_ATTRS:
            raise XcatError(
                f"'{attr}' is not a valid attribute name for an object type of 'osimage'."
            )
    errors: list[str] = []
    if req.names:
        shown = []
        for name in sorted(set(req.names)):
            if name in db:
                shown.append(name)
            else:
                errors.append(f"Could not find an object named '{name}' of type 'osimage'.")
        long_form = not opts.get("short")
    else:
        if not db:
            raise XcatError("Could not get objects of type 'osimage'.")
        shown = sorted(db)
        # xCAT lists attributes only with -l or -i, or for named objects: a bare
        # `lsdef -t osimage -z` prints the stanza headers alone
        long_form = bool(opts.get("long") or only) and not opts.get("short")
    for line in errors:
        print(f"Error: {line}", file=sys.stderr)
    out: list[str] = []
    if opts.get("z"):
        if long_form:
            out = format_stanzas(db, shown, only)
        else:
            out = [STANZA_HEADER] + [f"\n{name}:" for name in shown]
    elif not long_form:
        out = [f"{name}  (osimage)" for name in shown]
    elif opts.get("compress"):
        out = [f"{name}: {attr}={db[name].get(attr, '')}" for name in shown for attr in only]
    else:
        for name in shown:
            out.append(f"Object name: {name}")
            for attr in only or sorted(db[name]):
                value = db[name].get(attr, "")
                if value or only:
                    out.append(f"    {attr}={value}")
    if out:
        print("\n".join(out))
    return 1 if errors else 0


def cmd_rmdef(state: State, args: list[str], stdin: Optional[str]) -> int:
    req = DbRequest("rmdef", args, stdin)
    if req.objtype is None:
        raise stub_error("rmdef: give -t osimage")
    if not req.names:
        raise XcatError("No object names were provided.")
    state.injected("rmdef", req.names)
    errors: list[str] = []
    removed = 0
    with state.locked():
        db = state.osimages()
        for name in req.names:
            if name in db:
                del db[name]
                removed += 1
            else:
                errors.append(f"Could not find an object named '{name}' of type 'osimage'.")
        state.save_osimages(db)
    if errors:
        raise XcatError(*errors)
    print(f"{removed} object definitions have been removed.")
    return 0


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


def read_list_file(
    top: str, kind: str, include_base: Path, depth: int, path: str
) -> list[Union[str, None]]:
    """Entries of a pkglist/otherpkglist file; None marks #NEW_INSTALL_LIST#."""
    if depth > MAX_INCLUDE_DEPTH:
        raise stub_error(
            f"#INCLUDE# nesting deeper than {MAX_INCLUDE_DEPTH} from {top} "
            "(xCAT loops forever on an include cycle)"
        )
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        raise XcatError(f"The {kind} include file '{path}' (from {top}) does not exist!") from None
    entries: list[Union[str, None]] = []
    for line in text.splitlines():
        include = re.match(r"^#INCLUDE:([^#\s][^#]*)#", line)
        if include:
            target = include.group(1).strip()
            resolved = target if os.path.isabs(target) else str(include_base / target)
            entries.extend(read_list_file(top, kind, include_base, depth + 1, resolved))
            continue
        if line.startswith("#NEW_INSTALL_LIST#"):
            entries.append(None)
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        for item in line.split(","):
            item = item.strip()
            if item:
                entries.append(item)
    return entries


def read_package_lists(value: str, kind: str) -> list[Union[str, None]]:
    entries: list[Union[str, None]] = []
    for top in split_files(value):
        entries.extend(read_list_file(top, kind, Path(top).parent, 0, top))
    return entries


def base_packages(entries: list[Union[str, None]]) -> list[str]:
    """The base pkglist as rh genimage uses it: '-name' lines ignored, paths dropped."""
    out = []
    for entry in entries:
        if entry is None or entry.startswith("-"):
            continue
        out.append(entry if entry.startswith("@") else entry.rsplit("/", 1)[-1])
    return out


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


def parse_synclist_for_pack(path: str) -> list[tuple[str, str]]:
    """Plain entries used at pack time: noderange lines skipped, stop at a clause header."""
    entries = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if re.match(r"^\s*(EXECUTE|EXECUTEALWAYS|APPEND|MERGE):", line):
            break
        if "->" not in line:
            continue
        src, dest = line.split("->", 1)
        if re.match(r"^\s*\(", dest):
            continue
        dest = re.sub(r"[\s;]", "", dest)
        entries.extend((s, dest) for s in src.split())
    return entries


def image_env(name: str, image: dict[str, str], rootimg: Path) -> dict[str, str]:
    env = dict(os.environ)
    for item in split_files(image.get("environvar", "")):
        key, eq, value = item.partition("=")
        if eq and key.strip():
            env[key.strip()] = value
    env.update(
        {
            "IMG_NAME": name,
            "IMG_ARCH": image.get("osarch", ""),
            "IMG_OSVER": image.get("osvers", ""),
            "IMG_PROFILE": image.get("profile", ""),
            "IMG_KERNELVERSION": image.get("kernelver", ""),
            "IMG_PKGLIST": image.get("pkglist", ""),
            "IMG_PKGDIR": image.get("pkgdir", ""),
            "IMG_OTHERPKGLIST": image.get("otherpkglist", ""),
            "IMG_OTHERPKGDIR": image.get("otherpkgdir", ""),
            "IMG_ROOTIMGDIR": str(rootimg),
        }
    )
    return env


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


def cmd_genimage(state: State, args: list[str]) -> int:
    try:
        opts, operands = getopts(args, GENIMAGE_SPEC, bundling=False)
    except XcatError:
        raise Usage(GENIMAGE_USAGE, 1) from None
    if opts.get("help"):
        raise Usage(GENIMAGE_USAGE, 0)
    if opts.get("version"):
        raise Usage("Version 2.16.5 (xcatstub)", 0)
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
    name = operands[0]
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
    image = lookup_image(state, name)
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
    for attr, label in (("pkglist", "pkglist"), ("otherpkglist", "otherpkglist")):
        for path in split_files(image.get(attr, "")):
            if not os.access(path, os.R_OK):
                raise XcatError(f"The {label} specified '{path}' does not exist!")
    scripts = [e.split() for e in image.get("postinstall", "").split(",") if e.strip()]
    for words in scripts:
        if not os.access(words[0], os.R_OK):
            raise XcatError(f"The postinstall_filename specified '{words[0]}' does not exist!")
    destdir = image_dir(name, image)
    rootimg = destdir / "rootimg"
    osvers, osarch, profile = image["osvers"], image["osarch"], image["profile"]
    print(
        f"cd /opt/xcat/share/xcat/netboot/rh; ./genimage -a {osarch} -o {osvers} -p {profile} "
        f"--pkglist {image['pkglist']} --rootimgdir {destdir} {name}",
        flush=True,
    )
    if opts.get("dryrun"):
        return 0
    state.injected("genimage", [name])
    if opts.get("onlyinitrd"):
        if not rootimg.is_dir():
            raise XcatError(f"{rootimg} does not exist; run genimage {name} first")
        write_boot_files(destdir, name)
        return 0
    packages = base_packages(read_package_lists(image["pkglist"], "pkglist"))
    others = [e for e in read_package_lists(image.get("otherpkglist", ""), "otherpkglist") if e]
    for sub in ("etc", "usr/bin", "var/lib", "opt/xcat", "tmp"):
        (rootimg / sub).mkdir(parents=True, exist_ok=True)
    (rootimg / "etc" / "imagespec-stub-build").write_text(
        "".join(p + "\n" for p in packages), encoding="utf-8"
    )
    (rootimg / "etc" / "imagespec-stub-otherpkgs").write_text(
        "".join(p + "\n" for p in others), encoding="utf-8"
    )
    env = image_env(name, image, rootimg)
    for words in scripts:
        argv = [words[0], str(rootimg), osvers, osarch, profile, *words[1:]]
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
            raise XcatError(
                f"postinstall script {words[0]} did not finish within {POSTINSTALL_TIMEOUT:.0f} s",
                "genimage command failed with rc 1.",
            ) from None
        except OSError as exc:
            raise XcatError(
                f"cannot run postinstall script {words[0]}: {exc.strerror}",
                "genimage command failed with rc 126.",
                rc=126,
            ) from None
        sys.stdout.write(proc.stdout.decode("utf-8", errors="replace"))
        sys.stdout.flush()
        if proc.returncode != 0:
            raise XcatError(
                f"postinstall script {' '.join(words)} failed with exit code {proc.returncode}",
                "genimage command failed with rc 1.",
            )
    write_boot_files(destdir, name)
    print(f"the image is generated in {rootimg} ({len(packages)} packages)")
    return 0


def write_boot_files(destdir: Path, name: str) -> None:
    write_atomic(destdir / "kernel", f"xcatstub kernel for {name}\n".encode())
    for flavour in ("stateless", "statelite"):
        body = f"xcatstub {flavour} initrd for {name}\n".encode()
        write_atomic(destdir / f"initrd-{flavour}.gz", gzip_bytes(body))


# ---------------------------------------------------------------------------- packimage

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
        raise Usage("Version 2.16.5 (xcatstub)", 0)
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
    synclists = [] if opts.get("nosyncfiles") else split_files(image.get("synclists", ""))
    for kind, files in (("exlist", exlists), ("synclist", synclists)):
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
    for path in synclists:
        manifest.append(f"synclist={path} sha256={sha256_file(path)}")
        for src, dest in parse_synclist_for_pack(path):
            digest = sha256_file(src) if os.path.isfile(src) else "missing"
            manifest.append(f"sync {src} sha256={digest} -> {dest}")
    build = rootimg / "etc" / "imagespec-stub-build"
    if build.is_file():
        manifest.append(f"build sha256={sha256_file(str(build))}")
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


# ---------------------------------------------------------------------------- liteimg

LITEIMG_SPEC = [
    Option("profile|p", takes_arg=True),
    Option("arch|a", takes_arg=True),
    Option("osver|o", takes_arg=True),
    Option("help|h"),
    Option("version|v"),
    Option("verbose|V"),
]


def litefile_rows_for(
    state: State, name: str, image: dict[str, str]
) -> list[dict[str, Optional[str]]]:
    with state.locked():
        rows = state.litefile()
    owners = {name, "ALL", *split_files(image.get("groups", ""))}
    return [
        row
        for row in rows
        if row.get("image") in owners and (row.get("disable") or "") not in ("1", "yes")
    ]


def check_lite_entries(entries: list[tuple[str, str]]) -> None:
    """liteimg's checks: options, absolute paths, and parent/child option rules."""
    for options, path in entries:
        if options not in LITE_OPTIONS:
            raise XcatError(
                f" {path} has invalid option. The valid options: tmpfs persistent localdisk rw "
                "ro con link tmpfs,rw link,ro link,persistent link,con"
            )
        if not path.startswith("/"):
            raise XcatError(f" {path} is not one absolute path. ")
        if "con" in options and path.endswith("/"):
            raise XcatError(f' {path} is directory, don\'t use "con" as its option ')
    for options, path in entries:
        parent = os.path.dirname(path.rstrip("/")).rstrip("/") + "/"
        parents = [(o, p) for o, p in entries if p == parent]
        if len(parents) != 1:
            continue
        popts, ppath = parents[0]
        if popts.endswith("ro") or popts.endswith("con"):
            raise XcatError(
                f'the directory "{ppath}" should not be with "ro" or "con" as its option'
            )
        if "link" in popts:
            if options == "link,ro":
                raise XcatError(
                    f'Based on the option of {ppath}, {path} should not use "link,ro" as its option'
                )
            if "link" not in options:
                raise XcatError(
                    f'Based on the option of {ppath}, {path} can only use "link"-based options'
                )
        elif "link" in options:
            raise XcatError(
                f'Based on the option of {ppath}, {path} should not use "link"-based options'
            )
        if "persistent" in popts and "persistent" not in options:
            raise XcatError(f"{path} should have persistent option like {ppath} ")


def cmd_liteimg(state: State, args: list[str]) -> int:
    opts, operands = getopts(args, LITEIMG_SPEC, bundling=False)
    if opts.get("help"):
        raise Usage("liteimg -h # this help message\nliteimg -v # version\nliteimg imagename", 0)
    if opts.get("version"):
        raise Usage("Version 2.16.5 (xcatstub)", 0)
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
            "Please make sure that osimage.provmethod is set to statelite before calling this command."
        )
    destdir = image_dir(name, image)
    rootimg = destdir / "rootimg"
    state.injected("liteimg", [name])
    if not rootimg.is_dir():
        raise XcatError(f"{rootimg} does not exist, run genimage {name} first")
    print(f"going to modify {rootimg}")
    rows = litefile_rows_for(state, name, image)
    if not rows:
        raise XcatError(
            f"There are no files to sync for {name}.  You have to have some files read/write "
            "filled out in the synclist table."
        )
    entries = []
    for row in rows:
        options = row.get("options") or "tmpfs,rw"
        options = options.replace("tmpfs,rw", "link")  # liteimg's compatibility rewrite
        entries.append((row.get("image") or "", options, row.get("file") or ""))
    check_lite_entries([(o, f) for _, o, f in entries])
    (rootimg / ".default").mkdir(exist_ok=True)
    (rootimg / ".statelite").mkdir(exist_ok=True)
    write_atomic(
        rootimg / ".statelite" / "litefile.save",
        "".join(f"{i}\t{o}\t{f}\n" for i, o, f in entries).encode("utf-8"),
    )
    if image.get("rootfstype") == "ramdisk":
        manifest = [f"# xcatstub liteimg ramdisk manifest\nimage={name}"]
        for path in split_files(image.get("exlist", "")):
            if not os.path.isfile(path):
                raise stub_error(f"the exlist file {path} of '{name}' does not exist")
            manifest.append(f"exlist={path} sha256={sha256_file(path)}")
            manifest.extend(f"exclude {pattern}" for pattern in parse_exlist(path))
        body = ("\n".join(manifest) + "\n").encode("utf-8")
        write_atomic(destdir / "rootimg-statelite.gz", gzip_bytes(body))
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
        raise Usage("Version 2.16.5 (xcatstub)", 0)
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
        raise Usage("Version 2.16.5 (xcatstub)", 0)
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


def main(argv: list[str]) -> int:
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
