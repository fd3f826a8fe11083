"""The words plans, state and reports share: actions, digest stages and statuses.

Each is a str enum, so a member compares equal to its word and JSON output,
state.json and printed reports keep exactly the strings SPEC §6-§8 name.
"""

from __future__ import annotations

from enum import Enum
from typing import Optional


class Word(str, Enum):
    """A str enum that prints as its value on every Python imagespec supports."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return str(self.value).__format__(spec)


class Stage(Word):
    """A digest of SPEC §6: the inputs one xCAT stage reads."""

    BUILD = "build"
    PACK = "pack"
    DEFINE = "define"


class Action(Word):
    """What a director needs for an image, in the order apply performs them."""

    SYNC = "sync"
    DEFINE = "define"
    GENIMAGE = "genimage"
    PACK = "pack"

    @property
    def stage(self) -> Optional[Stage]:
        """The digest this action brings up to date (sync has none: files are their own record)."""
        return STAGE_OF.get(self)

    @property
    def weight(self) -> int:
        """Reports count an image once, under its heaviest action: genimage > pack > define > sync."""
        return HEAVIEST_FIRST[::-1].index(self)


STAGE_OF = {Action.DEFINE: Stage.DEFINE, Action.GENIMAGE: Stage.BUILD, Action.PACK: Stage.PACK}
HEAVIEST_FIRST = (Action.GENIMAGE, Action.PACK, Action.DEFINE, Action.SYNC)
ALL_ACTIONS = tuple(Action)  # what a new image needs


class Status(Word):
    """An image between two renderings (diff) or against the director's state (plan)."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"
    UNCHANGED = "unchanged"


class BuildStatus(Word):
    """An image's status in state.json; builder `none` delivers files only: skipped."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    NEVER = "never"


class ApplyResult(Word):
    """What apply did for one image."""

    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM stopped its stage; retried as a failure
    UP_TO_DATE = "up to date"
    FROZEN = "frozen"


def stage_actions(differ: set[Stage]) -> list[Action]:
    """The actions bringing the differing digests up to date, in order (SPEC §6).

    A new build always needs a new pack: the packed image is made from the built root.
    """
    if Stage.BUILD in differ:
        differ = differ | {Stage.PACK}
    return [action for action in ALL_ACTIONS if action.stage in differ]


def heaviest_of(actions: list[Action]) -> Optional[Action]:
    """The action an image is counted under in summaries, or None for no action."""
    return max(actions, key=lambda a: a.weight) if actions else None
