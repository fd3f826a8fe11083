"""The director's record of what imagespec did: `.imagespec/state.json`.

It holds the commit last applied, the inventory of managed files (path ->
sha256 of the bytes imagespec wrote) and, per image, the digests of the
stages that completed, the status, commit, time and generation.  Stages are
recorded separately so that an interrupted or failed apply resumes where it
stopped: a finished genimage is not repeated when only its pack failed.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Optional

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from .actions import BuildStatus
from .errors import ImagespecError
from .safe import NODES_KEY_RE, OBJECT_NAME_RE, is_director_file

STATE_VERSION = 1
MOVE_ASIDE = (
    "move it aside and apply again: imagespec then treats the director as never applied,"
    " adopts the files that are already right and rebuilds every image"
)


def now() -> str:
    """The UTC time as state.json, logs and generations record it."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class StateError(ImagespecError):
    """state.json is damaged or from a newer imagespec."""


@dataclass
class ImageState:
    digests: dict[str, Optional[str]] = field(default_factory=dict)  # stage -> digest done
    status: str = BuildStatus.NEVER  # a BuildStatus; plain text when read from state.json
    commit: Optional[str] = None
    time: Optional[str] = None
    generation: int = 0
    error: Optional[str] = None
    failed_stage: Optional[str] = None
    interrupted: bool = False  # the failed stage was stopped by Ctrl-C or SIGTERM
    attributes: list[str] = field(default_factory=list)  # attribute names last defined
    builder: Optional[str] = None
    rolled_back_from: Optional[int] = None  # set by `imagespec rollback` until the next pack
    nodeset_owed: bool = False  # xcat: the image's nodes still boot an older kernel/initrd
    variants: list[str] = field(default_factory=list)  # xcat: variant osimages it defined
    # `from: director` files the last pack copied -> their sha256 hex, as read before it ran
    director_files: dict[str, str] = field(default_factory=dict)


@dataclass
class NodeBoot:
    """One node, as imagespec last set and saw it (apply's nodeset, rollout's reboot)."""

    image: str  # the osimage nodeset pointed it at (an image or one of its variants)
    generation: int  # that image's generation then
    nodeset: Optional[str] = None  # when imagespec ran nodeset for it (None: never)
    running_image: Optional[str] = None  # what the node booted after imagespec rebooted it
    running_generation: Optional[int] = None
    booted: Optional[str] = None  # when it reported booted
    rebooting: Optional[str] = None  # rollout: reboot asked, director time it was asked at
    error: Optional[str] = None  # rollout: why the last reboot failed

    def runs(self, image: str, generation: int) -> bool:
        return self.running_image == image and self.running_generation == generation


@dataclass
class State:
    director: str
    commit: Optional[str] = None
    time: Optional[str] = None
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256 hex
    images: dict[str, ImageState] = field(default_factory=dict)
    nodes: dict[str, str] = field(default_factory=dict)  # noderange -> image nodeset was run for
    boots: dict[str, NodeBoot] = field(default_factory=dict)  # node -> what it was set to, runs

    def record_nodeset(self, sets: dict[str, str], generation: int) -> None:
        """Nodes nodeset just pointed at an osimage (node -> image) of `generation`."""
        when = now()
        for node, image in sets.items():
            old = self.boots.get(node)
            boot = NodeBoot(image, generation, when)
            if old is not None:
                boot.running_image, boot.running_generation = (
                    old.running_image,
                    old.running_generation,
                )
                boot.booted = old.booted
            self.boots[node] = boot

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "version": STATE_VERSION,
            "director": self.director,
            "commit": self.commit,
            "time": self.time,
            "files": dict(sorted(self.files.items())),
            "images": {name: _image_doc(img) for name, img in sorted(self.images.items())},
        }
        if self.nodes:
            doc["nodes"] = dict(sorted(self.nodes.items()))
        if self.boots:
            doc["boots"] = {name: asdict(boot) for name, boot in sorted(self.boots.items())}
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: Optional[bytes], director: str, where: str) -> State:
        """Parse and check state.json; an absent file is an empty state (nothing applied yet).

        The file is not trusted: anyone who can write on the director (or a
        damaged disk) can change it, and apply deletes and rebuilds from it.
        """
        if data is None:
            return cls(director=director)
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise StateError(f"{where} is not valid JSON ({exc}); {MOVE_ASIDE}") from None
        version = doc.get("version") if isinstance(doc, dict) else None
        if isinstance(doc, dict) and isinstance(version, int) and version > STATE_VERSION:
            raise StateError(
                f"{where}: state version {version} is newer than {STATE_VERSION}; upgrade imagespec"
            )
        try:
            checked = StateDoc.model_validate(doc)
        except ValidationError as exc:
            raise StateError(f"{where} is damaged: {describe(exc)}; {MOVE_ASIDE}") from None
        return cls(
            director=checked.director or director,
            commit=checked.commit,
            time=checked.time,
            files=dict(checked.files),
            images={n: ImageState(**i.model_dump()) for n, i in checked.images.items()},
            nodes=dict(checked.nodes),
            boots={n: NodeBoot(**b.model_dump()) for n, b in checked.boots.items()},
        )


def _image_doc(image: ImageState) -> dict[str, Any]:
    """An image's record; `variants`, `director_files` and `interrupted` only when there are
    some, so that a state without them reads the same to an imagespec from before them."""
    doc = asdict(image)
    for key in ("variants", "director_files", "interrupted"):
        if not doc[key]:
            del doc[key]
    return doc


# ------------------------------------------------------------------ checking a loaded file

HEX64 = re.compile(r"[0-9a-f]{64}")
COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{_shown(value)} is not {what}")
        return value

    return AfterValidator(check)


def _shown(value: str) -> str:
    """A value from the file, quoted and shortened so that the message stays one safe line."""
    text = ascii(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def managed_path_problem(path: str) -> Optional[str]:
    """Why `path` cannot name a file under install_root, or None when it can.

    A managed path is relative, normalised (no '.', '..' or empty segments) and
    free of control characters, so it can never point outside the tree.
    """
    if not path:
        return "is empty"
    if CONTROL.search(path):
        return "contains a control character"
    if path.startswith("/"):
        return "is absolute"
    if ".." in path.split("/"):
        return "goes up with '..'"
    if posixpath.normpath(path) != path or path == ".":
        return "is not a normalised relative path"
    return None


def _check_director_file(value: str) -> str:
    if not is_director_file(value):
        raise ValueError(f"director file {_shown(value)} is not an absolute, normalised safe path")
    return value


def _check_managed_path(value: str) -> str:
    problem = managed_path_problem(value)
    if problem:
        raise ValueError(f"inventory path {_shown(value)} {problem}")
    return value


Hex64 = Annotated[StrictStr, _matching(HEX64, "a sha256 (64 lowercase hex digits)")]
Commit = Annotated[StrictStr, _matching(COMMIT, "a git commit id (40 or 64 hex digits)")]
Digest = Annotated[StrictStr, _matching(DIGEST, "'sha256:' and 64 lowercase hex digits")]
Time = Annotated[StrictStr, _matching(TIME, "a UTC time like 2025-01-31T12:00:00Z")]
ImageName = Annotated[StrictStr, _matching(OBJECT_NAME_RE, "an image name")]
ManagedPath = Annotated[StrictStr, AfterValidator(_check_managed_path)]
DirectorFile = Annotated[StrictStr, AfterValidator(_check_director_file)]
NodesKey = Annotated[StrictStr, _matching(NODES_KEY_RE, "a noderange of a `nodes:` map")]
Generation = Annotated[StrictInt, Field(ge=0)]
NodeName = Annotated[StrictStr, _matching(OBJECT_NAME_RE, "a node name")]
# xCAT's nodelist.statustime form, the director's local time (see rollout.STATUSTIME)
StatusTime = Annotated[
    StrictStr, _matching(re.compile(r"\d\d-\d\d-\d{4} \d\d:\d\d:\d\d"), "an xCAT status time")
]


class ImageDoc(BaseModel):
    """One image's record, as ImageState writes it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    digests: dict[Literal["define", "build", "pack"], Optional[Digest]] = Field(
        default_factory=dict
    )
    status: Literal["ok", "failed", "skipped", "never"] = "never"
    commit: Optional[Commit] = None
    time: Optional[Time] = None
    generation: Generation = 0
    error: Optional[StrictStr] = None
    failed_stage: Optional[Literal["define", "genimage", "pack", "nodeset"]] = None
    interrupted: StrictBool = False  # absent unless true
    attributes: list[StrictStr] = Field(default_factory=list)
    builder: Optional[Literal["xcat", "native", "none"]] = None
    rolled_back_from: Optional[Generation] = None
    nodeset_owed: StrictBool = False
    variants: list[ImageName] = Field(default_factory=list)  # absent before boot variants
    director_files: dict[DirectorFile, Hex64] = Field(default_factory=dict)  # absent: none


class NodeBootDoc(BaseModel):
    """One node's record, as NodeBoot writes it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    image: ImageName
    generation: Generation
    nodeset: Optional[Time] = None
    running_image: Optional[ImageName] = None
    running_generation: Optional[Generation] = None
    booted: Optional[Time] = None
    rebooting: Optional[StatusTime] = None
    error: Optional[StrictStr] = None


class StateDoc(BaseModel):
    """The whole of state.json."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: Literal[1]
    director: Optional[StrictStr] = None
    commit: Optional[Commit] = None
    time: Optional[Time] = None
    files: dict[ManagedPath, Hex64] = Field(default_factory=dict)
    images: dict[ImageName, ImageDoc] = Field(default_factory=dict)
    nodes: dict[NodesKey, ImageName] = Field(default_factory=dict)
    boots: dict[NodeName, NodeBootDoc] = Field(default_factory=dict)


def describe(exc: ValidationError) -> str:
    """The first problem pydantic found, as `where: what` on one line."""
    error = exc.errors()[0]
    loc = list(error["loc"])
    if "[key]" in loc:  # a bad key: the message names it, the place is its mapping
        loc = loc[: loc.index("[key]") - 1]
    where = ".".join(str(part) for part in loc) or "the file"
    message = {
        "missing": "is missing",
        "extra_forbidden": "is not a key imagespec writes",
        "model_type": "should be a JSON object",
        "dict_type": "should be a JSON object",
    }.get(error["type"], str(error["msg"]).removeprefix("Value error, "))
    more = len(exc.errors()) - 1
    extra = f" (and {more} more problem{'s' * (more > 1)})" if more else ""
    return CONTROL.sub("?", f"{where}: {message}{extra}")
