"""Builders: how a director turns rendered files into images (xcat, native, none)."""

from __future__ import annotations

from typing import Callable, Protocol

from ..director.state import ImageState
from ..render import RenderedImage

Log = Callable[[str], None]


class Builder(Protocol):
    name: str

    def define(self, image: RenderedImage, previous: ImageState | None, log: Log) -> None:
        """Create or update the osimage definition from the rendered stanza."""

    def genimage(self, image: RenderedImage, log: Log) -> None:
        """Build the image root from the package lists and postinstall scripts."""

    def pack(self, image: RenderedImage, log: Log) -> None:
        """Pack the root (packimage) or set up statelite (liteimg)."""

    def undefine(self, name: str, log: Log) -> None:
        """Remove an osimage definition (never its root)."""
