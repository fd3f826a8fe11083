"""A persistent cache of parsed YAML files, keyed by content.

Parsing YAML with positions is the slowest step of loading a large site;
keyed by (kind, path, git blob id) and by the parser's own code, a parse
result never goes stale, so each
distinct file version is parsed once, ever, across revisions and runs.  The
cache lives in $IMAGESPEC_CACHE_DIR, else $XDG_CACHE_HOME/imagespec, else
~/.cache/imagespec; IMAGESPEC_CACHE=0 turns it off.  A damaged or unreadable
entry is simply parsed again.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Optional

import pydantic

from . import __version__

# What a parse result depends on besides the file: the code that parses and checks it.
# Hashing those modules' own bytes means a changed schema or a new load-time check
# never meets a result cached by an older checkout that happens to share the version.
_PARSER_MODULES = ("load.py", "model.py", "safe.py", "errors.py")


def _parser_identity() -> str:
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _PARSER_MODULES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


FORMAT = f"2:{__version__}:{pydantic.VERSION}:{_parser_identity()}"


def cache_dir() -> Optional[Path]:
    """Where parse results are kept, or None when caching is off."""
    if os.environ.get("IMAGESPEC_CACHE", "1") == "0":
        return None
    explicit = os.environ.get("IMAGESPEC_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "imagespec" / "parse"


def _entry(directory: Path, key: tuple[str, ...]) -> Path:
    digest = hashlib.sha256("\0".join((FORMAT, *key)).encode()).hexdigest()
    return directory / digest[:2] / f"{digest[2:]}.pickle"


class DiskCache:
    """The parse cache on disk, as load_site takes it (load.ParseCache)."""

    def get(self, key: tuple[str, ...]) -> Any:
        """The cached value, or None."""
        directory = cache_dir()
        if directory is None:
            return None
        try:
            with open(_entry(directory, key), "rb") as handle:
                return pickle.load(handle)
        except (OSError, pickle.PickleError, EOFError, AttributeError, ImportError, TypeError):
            return None

    def put(self, key: tuple[str, ...], value: Any) -> None:
        """Store a value atomically; a cache that cannot be written is silently skipped."""
        directory = cache_dir()
        if directory is None:
            return
        path = _entry(directory, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except OSError:
            return
