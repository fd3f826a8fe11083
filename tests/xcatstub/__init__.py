"""A stand-in for xCAT's commands, for tests that cannot install xCAT.

`install_stub(bin_dir, state_dir)` writes one small sh wrapper per xCAT command into
bin_dir; each runs xcatstub.py with XCATSTUB_STATE (and the fake tftp and install
directories) baked in, so the stub works over ssh without passing environment.  The
helpers below read and seed the stub's state.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

STUB_SCRIPT = Path(__file__).resolve().parent / "xcatstub.py"
STUB_COMMANDS = (
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


def install_stub(
    bin_dir: Path,
    state_dir: Path,
    python: Optional[str] = None,
    tftpdir: Optional[Path] = None,
    installdir: Optional[Path] = None,
) -> Path:
    """Create bin_dir with executable wrappers for every stubbed xCAT command.

    state_dir receives the stub's database (osimage.json, litefile.json, node.json,
    bootparams.json, power.json, running.json, nodefaults.json) and its logs (calls.jsonl,
    transactions.jsonl).  `tftpdir` stands for xCAT's site.tftpdir (/tftpboot), where
    genimage and nodeset copy kernels and initrds (default: state_dir/tftpboot).  `installdir` stands for site.installdir (/install),
    where packimage and liteimg look for fallback synclists and liteimg copies postscripts
    from; without it the stub skips both with a warning.  `python` is the interpreter
    baked into the wrappers (default: the one running the tests, an absolute path, so the
    wrappers do not depend on the remote PATH); it runs with -I -S (isolated, no site
    packages: the stub is stdlib only, and starts faster).  Returns bin_dir.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    interpreter = python or sys.executable or "python3"
    env = {
        "XCATSTUB_STATE": state_dir.resolve(),
        "XCATSTUB_TFTPDIR": (tftpdir or state_dir / "tftpboot").resolve(),
    }
    if installdir is not None:
        env["XCATSTUB_INSTALLDIR"] = installdir.resolve()
    exports = "".join(f"{k}={shlex.quote(str(v))}\nexport {k}\n" for k, v in env.items())
    for name in STUB_COMMANDS:
        wrapper = bin_dir / name
        wrapper.write_text(
            "#!/bin/sh\n"
            f"# xcatstub wrapper for {name}: see {STUB_SCRIPT}\n"
            f"{exports}"
            f'exec {shlex.quote(interpreter)} -I -S {shlex.quote(str(STUB_SCRIPT))} {name} "$@"\n',
            encoding="utf-8",
        )
        wrapper.chmod(0o755)
    return bin_dir


def read_calls(state_dir: Path) -> list[dict[str, Any]]:
    """Every recorded call, oldest first: {"cmd", "args", "rc"} and "stdin" when read."""
    path = state_dir / "calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def read_transactions(state_dir: Path) -> list[dict[str, Any]]:
    """Every package manager run of genimage, oldest first.

    {"image", "list" ("pkglist"|"otherpkglist"), "pass", "action" ("install"|"erase"),
    "packages" (the names after shell expansion), "env" ({name: value or None} for the
    environvar names and the pass's #ENV: names), "rc"}.
    """
    path = state_dir / "transactions.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def read_packages(rootimg: Path) -> dict[str, str]:
    """The packages installed in an image root: {name: "LIST FILE:LINE ENTRY"}.

    genimage records each installed package as rootimg/var/lib/xcatstub/packages/<name>,
    whose content names the list, file, line and entry that installed it first.
    """
    marker_dir = rootimg / "var" / "lib" / "xcatstub" / "packages"
    if not marker_dir.is_dir():
        return {}
    return {p.name: p.read_text(encoding="utf-8").rstrip("\n") for p in marker_dir.iterdir()}


def read_osimages(state_dir: Path) -> dict[str, dict[str, str]]:
    """The stub's osimage definitions: {name: {attr: value}} (objtype implied)."""
    path = state_dir / "osimage.json"
    if not path.exists():
        return {}
    data: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def read_nodes(state_dir: Path) -> dict[str, dict[str, str]]:
    """The stub's node definitions: {name: {attr: value}} (node.json)."""
    path = state_dir / "node.json"
    if not path.exists():
        return {}
    data: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def add_nodes(state_dir: Path, nodes: dict[str, dict[str, str]]) -> None:
    """Seed node definitions, as `mkdef -t node` would leave them (attributes merged).

    nodeset needs `mac` (destiny.pm refuses a node without one) and uses `provmethod`;
    `groups` is what xCAT requires of every node; rpower needs `mgt` ("ipmi" or "kvm":
    without one xCAT finds no plugin and rpower fails for the node).  A seeded node is
    powered on and up: nodestat says `sshd` until it is powered off or rebooted, or made
    `down` with set_node_boot; nodestat never looks at `status`, which stays whatever is
    seeded (none: lsdef shows `status=`) until rpower or a completed boot sets it.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    data = read_nodes(state_dir)
    for name, attrs in nodes.items():
        data.setdefault(name, {}).update({k: v for k, v in attrs.items() if v != ""})
    (state_dir / "node.json").write_text(
        json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def read_bootparams(state_dir: Path) -> dict[str, dict[str, str]]:
    """What nodeset recorded per node: {node: {"kernel", "initrd", "kcmdline"}}.

    kernel and initrd are relative to the tftp dir (xcat/osimage/<image>/kernel ...);
    kcmdline is the line the boot loader gets: mknetboot's kcmdline plus the node's and
    the image's addkcmdline (without R:: words), as xnba.pm appends them.
    """
    path = state_dir / "bootparams.json"
    if not path.exists():
        return {}
    data: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def read_litefile(state_dir: Path) -> list[dict[str, Optional[str]]]:
    """The stub's litefile table rows in insertion order (None for unset cells)."""
    path = state_dir / "litefile.json"
    if not path.exists():
        return []
    data: list[dict[str, Optional[str]]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def inject_failure(state_dir: Path, command: str, name: str = "*", once: bool = False) -> None:
    """Make `command` (for image `name`, or any with "*") exit 1 with "Error: injected failure".

    With once=True the injection is consumed by the first call it fails.
    """
    line = f"{command} {name}" + (" once" if once else "")
    with open(state_dir / "fail", "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def clear_failures(state_dir: Path) -> None:
    (state_dir / "fail").unlink(missing_ok=True)


NODE_NAME = re.compile(r"[a-zA-Z0-9_-]+")  # DBobjectdefs.pm isobjnamevalid


@contextlib.contextmanager
def _state_lock(state_dir: Path) -> Iterator[None]:
    """The stub's state lock (State.locked in xcatstub.py), for writes between calls."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_json(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _read_json(path: Path, default: Any) -> Any:
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def set_node_boot(
    state_dir: Path,
    node: str,
    delay: float = 0.0,
    never: bool = False,
    rpower_error: Optional[str] = None,
    down: bool = False,
) -> None:
    """Set the faults of one node (nodefaults.json), replacing any it had.

    The stub reads them at every call, so a test can change them between calls:
    - delay: seconds from the rpower on/boot/reset that starts a boot to its completion
      (status `booted`, statustime the completion time, an entry in running.json).  0
      completes it at once, still observed only by the next stub command.
    - never: the node's boot does not complete; status stays `powering-on` and nodestat
      says `noping`.
    - rpower_error: rpower prints `<node>: Error: <rpower_error>` on stderr for the node,
      changes nothing for it and exits 1; the other nodes proceed.
    - down: the node has lost power: nodestat says `noping`, rpower stat `off`, a pending
      boot is lost; its status stays what it was.  It stays off when the flag is cleared;
      rpower on/boot powers it on (`on`, or `off on` for mgt=kvm), clears the flag and
      boots it as any other node.
    delay and never are read whenever a pending boot is looked at, so they also act on a
    boot already started: a pending boot completes at start + the delay then set, once
    never is unset.  The node must be defined (node.json), so that a misspelt name cannot
    silently fault nothing.
    """
    if not NODE_NAME.fullmatch(node):
        raise ValueError(f"invalid node name {node!r}")
    if node not in read_nodes(state_dir):
        raise ValueError(f"no node {node!r} in {state_dir / 'node.json'}")
    if not (math.isfinite(delay) and delay >= 0):
        raise ValueError(f"delay must be a finite number of seconds >= 0, not {delay!r}")
    if rpower_error is not None and (not rpower_error or "\n" in rpower_error):
        raise ValueError("rpower_error must be one non-empty line")
    entry = {"delay": delay, "never": never, "rpower_error": rpower_error, "down": down}
    path = state_dir / "nodefaults.json"
    with _state_lock(state_dir):
        data = _read_json(path, {})
        data[node] = entry
        _write_json(path, data)


def clear_node_boot(state_dir: Path, node: Optional[str] = None) -> None:
    """Remove the faults of `node` (of every node when None): it boots at once again."""
    path = state_dir / "nodefaults.json"
    with _state_lock(state_dir):
        data = _read_json(path, {})
        if node is None:
            data = {}
        else:
            data.pop(node, None)
        _write_json(path, data)


def read_node_faults(state_dir: Path) -> dict[str, dict[str, Any]]:
    """nodefaults.json: {node: {"delay", "never", "rpower_error", "down"}}; rpower clears
    `down` when it powers the node on."""
    data: dict[str, dict[str, Any]] = _read_json(state_dir / "nodefaults.json", {})
    return data


def read_running(state_dir: Path) -> dict[str, dict[str, str]]:
    """Each node's last completed boot (running.json), as of the last stub command:

    {node: {"image" (the image of the boot files: xcat/osimage/<image>/ in the kernel path,
    else provmethod), "provmethod" (the node's at rpower time), "kernel", "initrd",
    "kcmdline" (bootparams.json for the node at rpower time: what its firmware fetches),
    "rootimgdir" (os.path.realpath, at rpower time, of the directory the kernel command
    line serves the root image from: a symlinked rootimgdir resolves to the directory the
    node really booted), "time" (completion, in statustime format)}}.  An entry stays
    after the node is powered off or rebooted; nodestat says whether the node is up.
    """
    data: dict[str, dict[str, str]] = _read_json(state_dir / "running.json", {})
    return data


def read_power(state_dir: Path) -> dict[str, dict[str, Any]]:
    """power.json: {node: {"power": "on"|"off", "boot": None or {"start" (epoch seconds),
    "offline" (true when the node had no boot parameters: it never boots), "record" (the
    running.json entry to be)}}} for the nodes rpower touched; other nodes are on, or off
    when `down`.  A boot still listed here may be due: the next stub command completes
    it."""
    data: dict[str, dict[str, Any]] = _read_json(state_dir / "power.json", {})
    return data
