"""Test helpers: build sites from dicts, in memory or on disk; find processes a test left."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any, Optional, Union

from ruamel.yaml import YAML

from imagespec.site import SiteView, open_site
from imagespec.source import MemorySource

Files = dict[str, Union[str, bytes]]

BASE_SITE: dict[str, Any] = {
    "site": "test",
    "defaults": {
        "osname": "Linux",
        "imagetype": "linux",
        "provmethod": "netboot",
        "permission": "755",
    },
    "distros": {
        "rocky8": {
            "osvers": "rocky8",
            "osarch": "x86_64",
            "family": "rocky",
            "pkgdir": "/install/rocky8/x86_64",
            "otherpkgdir": "/install/post/otherpkgs/rocky8/x86_64",
        }
    },
    "directors": {
        "main": {"branch": "main", "install_root": "/install", "prefix": "p", "builder": "xcat"}
    },
}


def dump_yaml(data: Any) -> str:
    """YAML text for a plain value (block style, stable order)."""
    import io

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[attr-defined]
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()


def site_files(
    profiles: dict[str, Any],
    images: Optional[dict[str, Any]] = None,
    extra: Optional[Files] = None,
    **site_overrides: Any,
) -> Files:
    """A complete site as {path: content}: BASE_SITE plus profiles, images and extra files.

    images default to one image per profile named `img-<profile>` on distro rocky8.
    Profile values may be dicts (dumped as YAML) or ready YAML text.
    """
    site = {**BASE_SITE, **site_overrides}
    if images is None:
        images = {f"img-{name}": {"profile": name, "distro": "rocky8"} for name in profiles}
    site["images"] = images
    files: Files = {"imagespec.yaml": dump_yaml(site)}
    for name, body in profiles.items():
        files[f"profiles/{name}.yaml"] = body if isinstance(body, str) else dump_yaml(body)
    files.update(extra or {})
    return files


def memory_site(files: Files, strict: bool = False) -> SiteView:
    """Open a site held in memory (no temp dirs: for the pure unit tests)."""
    return open_site(MemorySource(files), strict=strict)


def write_tree(root: Path, files: Files) -> Path:
    """Write {relative path: content} under root; scripts under postinstall/ and postscripts/ get 0755."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)
        if rel.startswith(("postinstall/", "postscripts/")):
            os.chmod(path, 0o755)
    return root


def processes_with(text: str) -> list[int]:
    """The pids of running processes whose command line contains `text` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry))
    return found


def kill_processes_with(text: str) -> None:
    """Test cleanup: SIGKILL whatever still runs with `text` in its command line."""
    for pid in processes_with(text):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
