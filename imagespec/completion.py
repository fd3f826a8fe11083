"""Shell completion of image, director and profile names.

Runs on every Tab press, so it reads the site's imagespec.yaml keys (and the
names of profiles/*.yaml) and nothing else: no rendering, no git, no
validation.  Any failure (no site, a broken or hostile file) completes
nothing rather than printing into the shell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from .source import find_site_root

MAX_SITE_BYTES = 1 << 20  # a larger imagespec.yaml is not read for completion


def complete_images(ctx: Any, incomplete: str) -> list[str]:
    return _starting(_site_keys(ctx, "images"), incomplete)


def complete_directors(ctx: Any, incomplete: str) -> list[str]:
    return _starting(_site_keys(ctx, "directors"), incomplete)


def complete_profiles(ctx: Any, incomplete: str) -> list[str]:
    root = _site_root(ctx)
    if root is None:
        return []
    try:
        names = [p.stem for p in (root / "profiles").glob("*.yaml") if p.is_file()]
    except OSError:
        return []
    return _starting(names, incomplete)


def _starting(names: list[str], incomplete: str) -> list[str]:
    return sorted(n for n in names if n.startswith(incomplete))


def _site_root(ctx: Any) -> Optional[Path]:
    """--site from the command or the global options, else the site above the cwd."""
    try:
        while ctx is not None:
            given = ctx.params.get("site")
            if given:
                return Path(given)
            ctx = ctx.parent
        return find_site_root(Path.cwd())
    except (OSError, AttributeError):
        return None


def _site_keys(ctx: Any, section: str) -> list[str]:
    """The names under a top-level mapping of imagespec.yaml; [] on any problem."""
    root = _site_root(ctx)
    if root is None:
        return []
    try:
        from ruamel.yaml import YAML

        path = root / "imagespec.yaml"
        if not path.is_file():  # never open a FIFO or a device
            return []
        with open(path, "rb") as handle:
            data = handle.read(MAX_SITE_BYTES + 1)
        if len(data) > MAX_SITE_BYTES:
            return []
        doc = YAML(typ="safe", pure=True).load(data)
        names = doc.get(section) if isinstance(doc, dict) else None
        if not isinstance(names, dict):
            return []
        return [n for n in names if isinstance(n, str) and n.isprintable()]
    except Exception:  # completion must never print a traceback into the shell
        return []
