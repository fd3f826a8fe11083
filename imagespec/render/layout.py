"""Where each rendered file lives, relative to the director's install_root and absolute."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

from ..model import Director


def join(*parts: str) -> str:
    """Join path parts, skipping empty ones (an empty prefix adds no segment)."""
    return posixpath.join(*[p.strip("/") for p in parts if p.strip("/")])


@dataclass(frozen=True)
class Layout:
    """The SPEC §5 layout of one director."""

    install_root: str  # absolute, as seen on the director
    prefix: str

    @classmethod
    def of(cls, director: Director, site_root: Path) -> Layout:
        root = director.install_root
        if not root.startswith("/"):
            root = (site_root / root).as_posix()
        return cls(install_root=posixpath.normpath(root), prefix=director.prefix.strip("/"))

    def absolute(self, rel: str) -> str:
        return posixpath.join(self.install_root, rel)

    def image_dir(self, family: str) -> str:
        return join(self.prefix, "custom", "netboot", family)

    def image_file(self, family: str, image: str, suffix: str) -> str:
        return join(self.image_dir(family), f"{image}.{suffix}")

    def postinstall(self, family: str, script: str) -> str:
        return join(self.image_dir(family), "postinstall", script)

    def sync_source(self, src: str) -> str:
        return join(self.prefix, "custom", "synclists", src)

    def postscript(self, script: str) -> str:
        return join("postscripts", self.prefix, script)

    def postscript_entry(self, script: str) -> str:
        """The name xCAT expects in the postscripts attribute (relative to /install/postscripts)."""
        return join(self.prefix, script)

    def state_dir(self) -> str:
        return join(self.prefix, ".imagespec")

    def written_dirs(self) -> tuple[str, ...]:
        """Absolute directories imagespec writes into: its prefix and postscripts/<prefix>; with
        an empty prefix (shared with xCAT's own files) the folders its files go to."""
        if self.prefix:
            return (self.absolute(self.prefix), self.absolute(self.postscript("")))
        folders = ("custom/netboot", "custom/synclists", self.state_dir(), "postscripts")
        return tuple(self.absolute(folder) for folder in folders)

    def reserved_dirs(self) -> tuple[str, ...]:
        """Absolute directories holding what imagespec syncs and its state: no image root goes there."""
        return (
            self.absolute(join(self.prefix, "custom")),
            self.absolute(self.state_dir()),
            self.absolute("postscripts"),
        )


def generation_home(rootimgdir: str) -> str:
    """Where the native builder keeps an image's generations: .<name>.imagespec beside it."""
    root = rootimgdir.rstrip("/")
    return posixpath.join(posixpath.dirname(root), f".{posixpath.basename(root)}.imagespec")
