"""Keep what imagespec writes away from the site's own files.

`render --out DIR --force` replaces DIR, and apply writes into (and deletes
from) a local director's tree.  Neither may be the site, contain it or a git
work tree, sit in `.git` or a site folder, or hold a file git tracks: an
ignored directory inside the work tree (the example's `.director/install`)
is fine.  See docs/decisions.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from .errors import ConfigError, Problem, UsageError
from .gitrepo import tracked_below
from .load import LoadedSite
from .render import RenderedDirector
from .source import SITE_DIRS, SITE_FILE

ELSEWHERE = "a directory outside the site's work tree or an ignored one in it (.director/install)"


def overlap_reason(path: Path, site_root: Path) -> Optional[str]:
    """Why writing and deleting under path could damage the site or a git work tree, or None."""
    real = Path(os.path.realpath(path))
    site = Path(os.path.realpath(site_root))
    if _within(site, real):
        return "is the site directory" if real == site else f"contains the site {site}"
    for top in {work_tree_of(site), work_tree_of(real)}:
        if top is not None and _within(top, real):
            return f"contains the git work tree {top}"
    if ".git" in real.parts:
        return "is inside a .git directory"
    for name in (*SITE_DIRS, SITE_FILE):
        if _within(real, site / name):
            return f"is inside the site's {name}"
    top = work_tree_of(real)
    if top is None:
        return None
    tracked = tracked_below(top, real)
    if tracked is None:
        return f"is inside the git work tree {top}, whose tracked files git could not list"
    return f"holds {tracked}, which git tracks in {top}" if tracked else None


def work_tree_of(path: Path) -> Optional[Path]:
    """The git work tree holding path (its nearest ancestor with a .git), or None."""
    for candidate in (path, *path.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def checked_out_dir(out: Path, site_root: Path) -> Path:
    """`render --out`, resolved (so `.` has a name); UsageError when it overlaps the site."""
    reason = overlap_reason(out, site_root)
    if reason is not None:
        raise UsageError(f"--out {out} {reason}; render into {ELSEWHERE}")
    return Path(os.path.realpath(out))


def check_director_root(
    site: LoadedSite, name: str, rendered: RenderedDirector, site_root: Path
) -> None:
    """A local director's tree (and its images' rootimgdir) must not overlap the site.

    ConfigError naming the director's entry in imagespec.yaml; a remote
    director is another machine and is not checked.
    """
    if site.model.directors[name].host:
        return
    for what, path in _managed_paths(site, name, rendered):
        reason = overlap_reason(Path(path), site_root)
        if reason is not None:
            message = (
                f"director '{name}': {what} puts files at {path}, which {reason}; use {ELSEWHERE}"
            )
            raise ConfigError([Problem(site.pos("directors", name, "install_root"), message)])


def _managed_paths(
    site: LoadedSite, name: str, rendered: RenderedDirector
) -> list[tuple[str, str]]:
    """(what, absolute path) of every tree apply writes to on a director."""
    director = site.model.directors[name]
    layout = rendered.layout
    what = f"install_root '{director.install_root}' with prefix '{director.prefix}'"
    found = [
        (what, layout.absolute(layout.prefix) if layout.prefix else layout.install_root),
        (what, layout.absolute(layout.postscript(""))),
    ]
    for image_name, image in sorted(rendered.images.items()):
        found.append((f"image '{image_name}' (rootimgdir)", image.rootimgdir))
    return found
