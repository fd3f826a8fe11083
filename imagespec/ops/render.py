"""`render --out`: write a director's tree exactly as it would land, atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from ..errors import UsageError
from ..render import RenderedDirector


def write_tree(
    rendered: RenderedDirector, out: Path, force: bool, shown: Optional[Path] = None
) -> None:
    """Write into a fresh sibling directory, then swap it in, so --out is never half-written.

    out is a resolved path (see overlap.checked_out_dir); messages name it as `shown`.
    """
    shown = shown or out
    if out.exists() and not out.is_dir():
        raise UsageError(f"{shown} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(
            f"{shown} is not empty; choose a new directory or pass --force to replace its contents"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for rel, file in sorted(rendered.files.items()):
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(file.data)
            target.chmod(file.mode)
        staging.chmod(0o755)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old)
        else:
            staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
