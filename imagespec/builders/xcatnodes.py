"""xCAT's node commands that a rollout drives: lsdef of nodes, nodestat, rpower, the clock.

Every node name that comes back from xCAT is checked before it is passed on to
another command (safe.OBJECT_NAME_RE); a noderange given by the admin is checked
with safe.NODES_KEY_RE, so neither can become an option.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Callable, Optional

from ..errors import ImagespecError
from ..runner import CommandError, Effect, Result
from ..safe import NODES_KEY_RE, OBJECT_NAME_RE
from ..transport.base import Transport

Log = Callable[[str], None]

# nodelist.statustime, the director's local time: "%02d-%02d-%04d %02d:%02d:%02d" of
# month, day, year, hour, minute, second (xCAT-server/lib/xcat/monitoring/monitorctrl.pm
# lines 691-699, perl-xCAT/xCAT/TableUtils.pm line 1097).
STATUSTIME = "%m-%d-%Y %H:%M:%S"
BOOTED = "booted"  # nodelist.status when the node's OS finished booting (Schema.pm)
# nodestat's answer for a node that answers neither sshd nor ping
# (xCAT-server/lib/xcat/plugins/nodestat.pm).
UNREACHABLE = "noping"

ATTR_LINE = re.compile(r"^(\S+):\s+([A-Za-z0-9_]+)=(.*)$")
STAT_LINE = re.compile(r"^(\S+):\s+(.*)$")


class NodeCommandError(ImagespecError):
    """xCAT could not list or reach the nodes at all."""

    exit_code = 3


def parse_node_attrs(text: str) -> dict[str, dict[str, str]]:
    """`lsdef -t node -i a,b -c` output ("node: attr=value" lines) -> {node: {attr: value}}."""
    nodes: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        match = ATTR_LINE.match(line.strip())
        if match and OBJECT_NAME_RE.match(match.group(1)):
            nodes.setdefault(match.group(1), {})[match.group(2)] = match.group(3).strip()
    return nodes


def parse_per_node(text: str) -> dict[str, str]:
    """nodestat / rpower output ("node: text" lines) -> {node: text}."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = STAT_LINE.match(line.strip())
        if match and OBJECT_NAME_RE.match(match.group(1)):
            found[match.group(1)] = match.group(2).strip()
    return found


def check_noderange(text: str) -> str:
    """A noderange the admin typed, before it becomes an argument of an xCAT command."""
    if not NODES_KEY_RE.match(text):
        raise ImagespecError(
            f"noderange {text!r} is not one imagespec passes to xCAT: use node names,"
            " ranges such as cn[001-004] and group names, separated by commas"
        )
    return text


def nothing_found(result: Result) -> bool:
    """lsdef's failure when nothing matches: no object of the type at all ('Could not get
    objects of type ...') or not the one named ('Could not find an object named ...');
    xCAT-server/lib/xcat/plugins/DBobjectdefs.pm, defls."""
    return not result.ok and (
        "Could not find" in result.output or "Could not get objects" in result.output
    )


def read_nodes(
    transport: Transport, attrs: list[str], noderange: Optional[str] = None
) -> dict[str, dict[str, str]]:
    """Node attributes from xCAT: every node, or those a noderange names (xCAT expands it)."""
    argv = ["lsdef", "-t", "node"]
    if noderange:
        argv += ["-o", check_noderange(noderange)]
    argv += ["-i", ",".join(attrs), "-c"]
    result = transport.run(argv, check=False, effect=Effect.READ)
    if nothing_found(result):
        return {}
    if not result.ok:
        raise NodeCommandError(f"{' '.join(argv)} failed: {first_line(result.output)}")
    return parse_node_attrs(result.output)


def node_names(transport: Transport, noderange: str) -> list[str]:
    """The nodes a noderange expands to on the director."""
    return sorted(read_nodes(transport, ["groups"], noderange))


def nodestat(transport: Transport, nodes: list[str]) -> dict[str, str]:
    """{node: state} from nodestat (sshd, ping, noping, ...); nodes it did not answer for are
    left out.  nodestat exits non-zero when some node is unreachable, so the exit code
    says nothing about the others: the lines are what counts."""
    if not nodes:
        return {}
    argv = ["nodestat", ",".join(_checked(nodes))]
    result = transport.run(argv, check=False, effect=Effect.READ)
    found = parse_per_node(result.output)
    if not found and not result.ok:
        raise NodeCommandError(f"nodestat failed: {first_line(result.output)}")
    return found


def rpower_boot(transport: Transport, nodes: list[str], log: Log) -> dict[str, str]:
    """`rpower <nodes> boot`; {node: error} for the nodes it could not reboot.

    A failure is printed per node ("node: Error: ..."); rpower goes on with the
    others and exits 1.  A node rpower says nothing about counts as failed.
    """
    argv = ["rpower", ",".join(_checked(nodes)), "boot"]
    log(f"$ {transport.describe(argv)}")
    result = transport.run(argv, check=False, effect=Effect.CHANGE)
    if result.output:
        log(result.output.rstrip("\n"))
    if result.note:
        log(result.note)
    answers = parse_per_node(result.output)
    failed = {n: a for n, a in answers.items() if "error" in a.lower()}
    if not result.ok and not failed:
        why = first_line(result.output)
        return dict.fromkeys(nodes, f"rpower failed: {why}")
    for node in nodes:
        if node not in answers and not result.ok:
            failed[node] = "rpower gave no answer for it"
    return failed


def director_time(transport: Transport) -> str:
    """The director's local time in statustime form, to tell a reboot's status from older ones."""
    try:
        result = transport.run(["date", f"+{STATUSTIME}"], effect=Effect.READ)
    except CommandError as exc:
        raise NodeCommandError(f"could not read the director's clock: {exc}") from None
    text = result.output.strip()
    if parse_statustime(text) is None:
        raise NodeCommandError(f"the director's clock answered {text[:60]!r}")
    return text


def parse_statustime(text: str) -> Optional[datetime]:
    try:
        return datetime.strptime(text.strip(), STATUSTIME)
    except ValueError:
        return None


def booted_since(attrs: dict[str, str], since: str) -> bool:
    """Whether xCAT says the node booted at or after `since` (both director local time)."""
    if attrs.get("status") != BOOTED:
        return False
    when, start = parse_statustime(attrs.get("statustime", "")), parse_statustime(since)
    return when is not None and start is not None and when >= start


def _checked(nodes: list[str]) -> list[str]:
    odd = [n for n in nodes if not OBJECT_NAME_RE.match(n)]
    if odd:
        raise NodeCommandError(f"node names imagespec will not pass to xCAT: {', '.join(odd[:3])}")
    return nodes


def first_line(text: str) -> str:
    """The first non-blank line of a command's output, for one-line messages."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0][:200] if lines else "no output"
