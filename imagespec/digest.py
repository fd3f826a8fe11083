"""The three per-image digests of SPEC §6, over canonical bytes.

Each digest is sha256 over a canonical JSON document (sorted keys, no
whitespace) of exactly the inputs one xCAT stage reads, so a YAML comment, a
key reordering or a renamed ancestor profile never changes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Optional

BUILD_ATTRIBUTES = (
    "pkgdir",
    "otherpkgdir",
    "osvers",
    "osarch",
    "profile",
    "kernelver",
    "kerneldir",
    "krpmver",
    "netdrivers",
    "nodebootif",
    "otherifce",
    "driverupdatesrc",
    "environvar",
    "permission",
    "postinstall",
    "rootimgdir",
)
PACK_ATTRIBUTES = ("provmethod", "rootfstype")


def sha256(data: bytes) -> str:
    return "sha256:" + sha256_hex(data)


def sha256_hex(data: bytes) -> str:
    """The bare hex digest, as state.json's file inventory and sha256sum(1) write it."""
    return hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """Stable bytes for a JSON-able value: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def build_digest(
    files: dict[str, Any], scripts: dict[str, bytes], attributes: dict[str, str]
) -> str:
    """genimage inputs: the build-stage files (package lists), postinstall scripts and the
    attributes genimage reads.  `files` holds each file kind's part under its key."""
    doc = {
        **files,
        "scripts": {name: sha256(data) for name, data in sorted(scripts.items())},
        "attributes": {k: attributes.get(k, "") for k in BUILD_ATTRIBUTES},
    }
    return sha256(canonical_json(doc))


def pack_digest(
    files: dict[str, Any],
    sources: dict[str, tuple[bytes, int]],
    attributes: dict[str, str],
    pack_options: dict[str, str],
) -> str:
    """packimage/liteimg inputs: the pack-stage files (exlist, build-time sync, litefile),
    the build-time sync sources, the attributes packimage reads and the pack options."""
    doc = {
        **files,
        "sources": {
            name: [sha256(data), oct(mode)] for name, (data, mode) in sorted(sources.items())
        },
        "attributes": {k: attributes.get(k, "") for k in PACK_ATTRIBUTES},
        "pack": pack_options,
    }
    return sha256(canonical_json(doc))


def effective_pack_digest(pack: str, director_files: Mapping[str, Optional[str]]) -> str:
    """The pack digest plan, state and the builders use: the rendered one, plus the sha256
    of each `from: director` file the pack copies (None: missing).  The rendered digest
    already covers those files' paths; their content is only known on the director.
    Without director files it is the rendered digest itself."""
    if not director_files:
        return pack
    doc = {"pack": pack, "director_files": dict(sorted(director_files.items()))}
    return sha256(canonical_json(doc))


def define_digest(stanza: bytes, variants: Optional[dict[str, bytes]] = None) -> str:
    """mkdef/chdef input: the stanza bytes, and the stanza of every boot variant (by osimage
    name).  Without variants it is the stanza's own digest, as before variants existed."""
    if not variants:
        return sha256(stanza)
    doc = {
        "stanza": sha256(stanza),
        "variants": {name: sha256(data) for name, data in sorted(variants.items())},
    }
    return sha256(canonical_json(doc))
