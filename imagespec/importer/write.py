"""The factored site as files: imagespec.yaml, profiles/*.yaml and the copied files.

YAML is emitted by ruamel.yaml from plain values, never assembled from
strings, so no value read from the director can add a key or a line.  Each
file starts with a comment saying it was imported and from which xCAT files.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Optional

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .. import safe
from .collect import LIST_KINDS
from .factor import Factored, ProfileSpec


@dataclass
class SiteSettings:
    """What the command line says about the new site and its one director."""

    site: str
    director: str
    host: Optional[str]
    install_root: str
    prefix: str


@dataclass
class ImageSpec:
    profile: str
    distro: str
    attributes: dict[str, Optional[str]] = field(default_factory=dict)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def dump(data: Any, header: list[str]) -> bytes:
    """YAML text with a comment header (lines checked for control characters)."""
    stream = io.StringIO()
    _yaml().dump(data, stream)
    lines = [f"# {safe_comment(h)}" for h in header]
    return ("\n".join(lines) + "\n" + stream.getvalue()).encode("utf-8")


def safe_comment(text: str) -> str:
    """A comment line: control characters would end it and start YAML of their own."""
    return "".join(c if safe.unsafe_char(c) is None else "?" for c in text)


def _flow(mapping: dict[str, Any]) -> CommentedMap:
    node = CommentedMap(mapping)
    node.fa.set_flow_style()
    return node


def profile_yaml(spec: ProfileSpec, description: str) -> bytes:
    data = CommentedMap()
    data["description"] = description
    if spec.inherits:
        data["inherits"] = CommentedSeq(spec.inherits)
    by_kind: dict[str, list[Any]] = {}
    for item in spec.items:
        by_kind.setdefault(item.kind, []).append(item.value)
    for kind in LIST_KINDS:
        values = by_kind.get(kind)
        if not values:
            continue
        if kind == "sync":
            data[kind] = CommentedSeq([_flow(dict(v)) for v in values])
        elif kind in ("litefile", "attributes"):
            data[kind] = CommentedMap(values)
        else:
            data[kind] = CommentedSeq(values)
    origin = {"file": "shared xCAT files", "leaf": "an osimage's own files", "common": "entries"}
    header = [
        f"Imported by `imagespec import` from {origin[spec.made]}; review, then edit freely.",
        *(f"  from {f}" for f in spec.files),
    ]
    if spec.made == "common":
        header.append("  entries common to: " + ", ".join(sorted(spec.images)))
    return dump(data, header)


def site_yaml(
    settings: SiteSettings,
    defaults: dict[str, str],
    distros: dict[str, dict[str, Any]],
    images: dict[str, ImageSpec],
    builtins: list[str],
    stanza_label: str,
) -> bytes:
    data = CommentedMap()
    data["site"] = settings.site
    if defaults:
        data["defaults"] = CommentedMap(sorted(defaults.items()))
    data["distros"] = CommentedMap(
        (name, CommentedMap(values)) for name, values in sorted(distros.items())
    )
    director = CommentedMap()
    if settings.host:
        director["host"] = settings.host
    director["install_root"] = settings.install_root
    director["prefix"] = settings.prefix
    director["builder"] = "xcat"
    data["directors"] = CommentedMap([(settings.director, director)])
    if builtins:
        data["builtin_postscripts"] = CommentedSeq(sorted(builtins))
    out = CommentedMap()
    for name, image in sorted(images.items()):
        node = CommentedMap([("profile", image.profile), ("distro", image.distro)])
        if image.attributes:
            node["attributes"] = CommentedMap(sorted(image.attributes.items()))
        out[name] = node
    data["images"] = out
    header = [
        f"Imported by `imagespec import` from {stanza_label}.",
        f"Rendered files land under {settings.install_root}/{settings.prefix}/, beside",
        "the site's existing flat files, which stay as they are.",
    ]
    return dump(data, header)


def profile_files(factored: Factored) -> dict[str, bytes]:
    out = {}
    for name, spec in sorted(factored.profiles.items()):
        users = ", ".join(sorted(spec.images))
        out[f"profiles/{name}.yaml"] = profile_yaml(spec, f"imported; used by {users}")
    return out
