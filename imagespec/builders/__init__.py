"""Builders: how a director turns rendered files into images (xcat, native, none)."""

from __future__ import annotations

from typing import Callable, Optional, Protocol

from ..render import RenderedImage
from ..runner import CommandError, Result
from ..state import ImageState
from ..transport.base import Transport

Log = Callable[[str], None]


class Builder(Protocol):
    name: str

    def define(self, image: RenderedImage, previous: ImageState | None, log: Log) -> bool:
        """Create or update the osimage definition; True when the image's nodes need nodeset."""

    def kept(self, image: RenderedImage) -> Optional[int]:
        """A kept generation built and packed from the image's inputs, which pack switches
        back to, so apply skips genimage (None: none, or no generations)."""

    def genimage(self, image: RenderedImage, log: Log) -> None:
        """Build the image root from the package lists and postinstall scripts."""

    def pack(self, image: RenderedImage, log: Log) -> Optional[int]:
        """Pack the root (packimage) or set up statelite (liteimg); the new generation if known."""

    def undefine(self, name: str, log: Log) -> None:
        """Remove an osimage definition (never its root)."""

    def nodeset(self, image: RenderedImage, log: Log) -> Optional[dict[str, str]]:
        """Point the image's nodes at its kernel and initrd: {node: osimage}, None if not xCAT's."""


def run_logged(
    transport: Transport,
    argv: list[str],
    log: Log,
    stdin_path: Optional[str] = None,
    input_data: Optional[bytes] = None,
    check: bool = True,
) -> Result:
    """Run one command on the director, with the command line and its output in the image log."""
    log(f"$ {transport.describe(argv, stdin_path)}")
    try:
        result = transport.run(argv, stdin_path=stdin_path, input_data=input_data, check=check)
    except CommandError as exc:
        log(exc.output.rstrip("\n"))
        raise
    if result.output:
        log(result.output.rstrip("\n"))
    if result.note:
        log(result.note)
    return result
