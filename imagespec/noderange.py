"""The part of xCAT's noderange grammar imagespec can expand without xCAT.

A director's `nodes:` map assigns noderanges to images.  Two entries must
never name the same node; imagespec can tell for node names and numeric
ranges (`cn[001-128]`, `cn001-cn128`, comma lists of them).  A term of any
other form (an xCAT group such as `compute`, a regular expression, `^file`,
`@` or `-` exclusions) can only be expanded by xCAT on the director:
`terms` says which terms those are, so validation can say what it could not
check.  (xCAT's grammar: perl-xCAT/xCAT/NodeRange.pm.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_NODES = 200_000  # a range wider than this is refused, never expanded
BRACKET = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]*?)\[(\d+)-(\d+)\]([A-Za-z0-9_.-]*)$")
DASHED = re.compile(r"^([A-Za-z][A-Za-z0-9_.]*?)(\d+)-\1(\d+)$")
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


class NodeRangeError(ValueError):
    """A range imagespec refuses (too wide, or running backwards)."""


@dataclass
class Expanded:
    nodes: set[str] = field(default_factory=set)  # node names (or group names: see words)
    words: set[str] = field(default_factory=set)  # bare words: a node or an xCAT group
    opaque: list[str] = field(default_factory=list)  # terms only xCAT can expand


def _numbered(prefix: str, first: str, last: str, suffix: str) -> set[str]:
    low, high = int(first), int(last)
    if high < low:
        raise NodeRangeError(f"range {first}-{last} runs backwards")
    if high - low + 1 > MAX_NODES:
        raise NodeRangeError(f"range {first}-{last} has more than {MAX_NODES} nodes")
    width = len(first) if first.startswith("0") or len(first) == len(last) else 0
    return {f"{prefix}{n:0{width}d}{suffix}" for n in range(low, high + 1)}


def expand(text: str) -> Expanded:
    """The nodes a noderange names, as far as they are known without xCAT."""
    found = Expanded()
    for term in text.split(","):
        bracket, dashed = BRACKET.match(term), DASHED.match(term)
        if bracket:
            found.nodes |= _numbered(*bracket.groups())
        elif dashed:
            prefix, first, last = dashed.groups()
            found.nodes |= _numbered(prefix, first, last, "")
        elif NAME.match(term):
            found.words.add(term)
        elif term:
            found.opaque.append(term)
    return found


def booting(nodes: dict[str, str]) -> dict[str, str]:
    """Per image of a `nodes:` map, who boots it, for reports: '412 nodes', '4 nodes + login'.

    Names and ranges are counted; other words (xCAT groups, or single nodes
    imagespec cannot tell from groups) are listed.
    """
    counted: dict[str, set[str]] = {}
    listed: dict[str, list[str]] = {}
    for key, image in nodes.items():
        try:
            found = expand(key)
        except NodeRangeError:
            continue
        counted.setdefault(image, set()).update(found.nodes)
        listed.setdefault(image, []).extend(sorted(found.words) + found.opaque)
    out = {}
    for image in sorted(counted):
        parts = (
            [f"{len(counted[image])} node{'s' * (len(counted[image]) != 1)}"]
            if counted[image]
            else []
        )
        parts += listed[image]
        out[image] = " + ".join(parts)
    return out


def overlap(a: Expanded, b: Expanded) -> set[str]:
    """Nodes (or words) two noderanges both name."""
    mine = a.nodes | a.words
    theirs = b.nodes | b.words
    return mine & theirs
