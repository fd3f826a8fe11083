"""The director's record of what imagespec did: `.imagespec/state.json`.

It holds the commit last applied, the inventory of managed files (path ->
sha256 of the bytes imagespec wrote) and, per image, the digests of the
stages that completed, the status, commit, time and generation.  Stages are
recorded separately so that an interrupted or failed apply resumes where it
stopped: a finished genimage is not repeated when only its pack failed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

from ..errors import ImagespecError

STATE_VERSION = 1
STAGES = ("define", "build", "pack")


def now() -> str:
    """The UTC time as state.json, logs and generations record it."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class StateError(ImagespecError):
    """state.json is damaged or from a newer imagespec."""


@dataclass
class ImageState:
    digests: dict[str, Optional[str]] = field(default_factory=dict)  # stage -> digest done
    status: str = "never"  # ok | failed | skipped | never
    commit: Optional[str] = None
    time: Optional[str] = None
    generation: int = 0
    error: Optional[str] = None
    failed_stage: Optional[str] = None
    attributes: list[str] = field(default_factory=list)  # attribute names last defined
    builder: Optional[str] = None
    rolled_back_from: Optional[int] = None  # set by `imagespec rollback` until the next pack


@dataclass
class State:
    director: str
    commit: Optional[str] = None
    time: Optional[str] = None
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256 hex
    images: dict[str, ImageState] = field(default_factory=dict)

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "version": STATE_VERSION,
            "director": self.director,
            "commit": self.commit,
            "time": self.time,
            "files": dict(sorted(self.files.items())),
            "images": {name: asdict(img) for name, img in sorted(self.images.items())},
        }
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: Optional[bytes], director: str, where: str) -> State:
        """Parse state.json; an absent file is an empty state (nothing applied yet)."""
        if data is None:
            return cls(director=director)
        try:
            doc = json.loads(data)
            version = doc.get("version")
            if version != STATE_VERSION:
                raise StateError(
                    f"{where}: state version {version} is not {STATE_VERSION}; upgrade imagespec"
                )
            images = {n: ImageState(**v) for n, v in doc.get("images", {}).items()}
            return cls(
                director=doc.get("director", director),
                commit=doc.get("commit"),
                time=doc.get("time"),
                files=dict(doc.get("files", {})),
                images=images,
            )
        except StateError:
            raise
        except (ValueError, TypeError, AttributeError) as exc:
            raise StateError(
                f"{where} is damaged ({exc}); move it aside to start over (imagespec then treats every image as never built)"
            ) from None
