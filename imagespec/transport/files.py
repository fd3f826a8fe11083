"""The director's files by absolute path, read through any transport (read only).

`imagespec import --host` and `imagespec adopt` compare what the director's
own osimage definitions mean with what a site renders (importer/meaning.py),
so they read the files those definitions name wherever they are: lists
under /install, xCAT's samples under /opt/xcat/share, sync sources in /etc.
Every question is one read-only command on the director, answered once.
"""

from __future__ import annotations

import base64
import binascii
import os
import shlex
from typing import Optional

from ..importer.files import normal
from ..runner import Effect
from .base import Transport, TransportError, last_line


class TransportFiles:
    """DirectorFiles (importer/files.py) over a Transport: local or ssh alike."""

    def __init__(self, transport: Transport):
        self.transport = transport
        self.install_root = transport.root
        self._cache: dict[tuple[str, str], tuple[bool, str]] = {}

    def _ask(self, what: str, path: str, script: str) -> tuple[bool, str]:
        """(exit status 0, output) of one read-only shell command about `path`."""
        key = (what, path)
        if key not in self._cache:
            result = self.transport.run(["sh", "-c", script], check=False, effect=Effect.READ)
            self._cache[key] = (result.ok, result.output)
        return self._cache[key]

    def command(self, argv: list[str]) -> str:
        """The output of a read-only command on the director (lsdef, tabdump)."""
        result = self.transport.run(argv, check=False, effect=Effect.READ)
        if not result.ok:
            raise TransportError(
                f"{self.transport.description}: `{shlex.join(argv)}` failed:"
                f" {last_line(result.output)}"
            )
        return result.output

    def readable(self, path: str) -> bool:
        return normal(path) is not None

    def read(self, path: str) -> Optional[bytes]:
        norm = normal(path)
        if norm is None:
            return None
        p = shlex.quote(norm)
        ok, out = self._ask("read", norm, f"[ -f {p} ] && [ -r {p} ] && base64 -w0 -- {p}")
        if not ok:
            return None
        try:
            return base64.b64decode(out.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None

    def mode(self, path: str) -> Optional[int]:
        norm = normal(path)
        if norm is None:
            return None
        ok, out = self._ask("mode", norm, f"stat -L -c %a -- {shlex.quote(norm)}")
        text = out.strip()
        return int(text, 8) if ok and text.isdigit() else None

    def is_dir(self, path: str) -> bool:
        norm = normal(path)
        return norm is not None and self._ask("dir", norm, f"[ -d {shlex.quote(norm)} ]")[0]

    def listdir(self, path: str) -> list[str]:
        norm = normal(path)
        if norm is None:
            return []
        script = f"find {shlex.quote(norm)}/ -mindepth 1 -maxdepth 1 -printf '%f\\n'"
        ok, out = self._ask("list", norm, script)
        return sorted((n for n in out.split("\n") if n), key=os.fsencode) if ok else []

    def readlink(self, path: str) -> Optional[str]:
        norm = normal(path)
        if norm is None:
            return None
        p = shlex.quote(norm)
        ok, out = self._ask("link", norm, f"[ -L {p} ] && readlink -- {p}")
        return out.rstrip("\n") if ok else None
