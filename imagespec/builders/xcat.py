"""The xCAT builder: mkdef/chdef from the rendered stanza, genimage, packimage or liteimg.

Commands run on the director (over ssh for a remote one) through the
director's transport, so --dry-run prints exactly these command lines.
"""

from __future__ import annotations

import posixpath
import shlex
from typing import Optional

from ..model import BuildOptions
from ..render import RenderedImage
from ..runner import Result
from ..state import ImageState
from ..transport.base import Transport
from . import Log, run_logged


class XcatBuilder:
    name = "xcat"

    def __init__(self, transport: Transport, options: BuildOptions):
        self.transport = transport
        self.options = options

    def _run(self, argv: list[str], log: Log, stdin_path: Optional[str] = None) -> Result:
        return run_logged(self.transport, argv, log, stdin_path)

    def define(self, image: RenderedImage, previous: Optional[ImageState], log: Log) -> None:
        """chdef -z when attributes are only added or changed; mkdef -z -f when any must go away."""
        stanza = posixpath.join(self.transport.root, image.stanza_path)
        old = set(previous.attributes) if previous and previous.digests.get("define") else None
        if old is not None and old <= set(image.attributes):
            self._run(["chdef", "-z"], log, stdin_path=stanza)
        else:
            self._run(["mkdef", "-z", "-f"], log, stdin_path=stanza)

    def _load_litefile(self, image: RenderedImage, log: Log) -> None:
        """Replace the image's litefile rows: tabrestore takes the table name from the file name."""
        csv = next(p for p in image.files if p.endswith(".litefile.csv"))
        self._run(["tabch", "-d", f"image={image.name}", "litefile"], log)
        source = shlex.quote(posixpath.join(self.transport.root, csv))
        script = (
            f'd=$(mktemp -d) && cp {source} "$d/litefile.csv" && '
            f'tabrestore -a "$d/litefile.csv"; rc=$?; rm -rf "$d"; exit $rc'
        )
        self._run(["sh", "-c", script], log)

    def genimage(self, image: RenderedImage, log: Log) -> None:
        self._run(["genimage", image.name], log)

    def pack(self, image: RenderedImage, log: Log) -> Optional[int]:
        if image.statelite:
            self._load_litefile(image, log)  # liteimg reads the litefile table
            self._run(["liteimg", image.name], log)
        else:
            opts = self.options
            self._run(["packimage", "-m", opts.method, "-c", opts.compress, image.name], log)
        return None

    def undefine(self, name: str, log: Log) -> None:
        self._run(["rmdef", "-t", "osimage", "-o", name], log)


class NoBuilder:
    """Builder `none`: images are built outside imagespec; only files are delivered."""

    name = "none"

    def define(self, image: RenderedImage, previous: Optional[ImageState], log: Log) -> None:
        return None

    def genimage(self, image: RenderedImage, log: Log) -> None:
        return None

    def pack(self, image: RenderedImage, log: Log) -> Optional[int]:
        return None

    def undefine(self, name: str, log: Log) -> None:
        return None
