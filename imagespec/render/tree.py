"""Assemble one director's tree: {path relative to install_root: file}, plus per-image facts."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .. import digest
from ..errors import ConfigError, Pos, Problem
from ..load import SiteDocs
from ..model import XCAT_BUILTIN_POSTSCRIPTS
from ..resolve import Resolution, ResolvedImage, script_name
from . import formats
from .layout import Layout

URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


@dataclass(frozen=True)
class RenderedFile:
    data: bytes
    mode: int
    canonical: bytes  # what counts as a change to the images using it

    @property
    def identity(self) -> str:
        return digest.sha256(self.canonical) + f":{self.mode:o}"


@dataclass
class RenderedImage:
    name: str
    profile: str
    director: str
    frozen: bool
    statelite: bool
    stanza_path: str
    files: tuple[str, ...]  # every file the image uses, stanza included
    attributes: dict[str, str]  # the osimage definition (without objtype)
    digests: dict[str, str]
    resolved: ResolvedImage

    @property
    def rootimgdir(self) -> str:
        return self.attributes["rootimgdir"]


@dataclass
class RenderedDirector:
    name: str
    layout: Layout
    files: dict[str, RenderedFile] = field(default_factory=dict)
    images: dict[str, RenderedImage] = field(default_factory=dict)

    def add(
        self, path: str, data: bytes, mode: int = 0o644, canonical: Optional[bytes] = None
    ) -> str:
        self.files[path] = RenderedFile(data, mode, data if canonical is None else canonical)
        return path


def builtin_postscripts(docs: SiteDocs) -> frozenset[str]:
    """xCAT's own postscripts plus the ones the site declares in builtin_postscripts."""
    return XCAT_BUILTIN_POSTSCRIPTS | frozenset(docs.site.model.builtin_postscripts)


def _read(docs: SiteDocs, rel: str, pos: Pos) -> tuple[bytes, int]:
    try:
        return docs.source.read(rel), docs.source.mode(rel)
    except OSError:
        raise ConfigError([Problem(pos, f"'{rel}' does not exist or cannot be read")]) from None


def _absolute_dirs(value: str, site_root: Path, local: bool) -> str:
    """pkgdir/otherpkgdir items: relative paths are relative to the site root (local directors)."""
    items = [v.strip() for v in value.split(",") if v.strip()]
    if local:
        items = [
            v if URL_RE.match(v) or v.startswith("/") else (site_root / v).as_posix() for v in items
        ]
    return ",".join(items)


def render_director(docs: SiteDocs, resolution: Resolution) -> RenderedDirector:
    """Render every resolved image of one director into its tree."""
    director = docs.site.model.directors[resolution.director]
    layout = Layout.of(director, docs.source.root)
    out = RenderedDirector(name=resolution.director, layout=layout)
    for name in sorted(resolution.images):
        out.images[name] = _render_image(docs, out, resolution.images[name])
    return out


def _render_image(docs: SiteDocs, out: RenderedDirector, image: ResolvedImage) -> RenderedImage:
    layout = out.layout
    director = docs.site.model.directors[image.director]
    lists = image.merge.lists
    files: list[str] = []
    attrs = {name: entry.value for name, entry in image.attributes.items()}
    attrs.update(profile=image.profile, osvers=image.osvers.value, osarch=image.osarch.value)
    for key in ("pkgdir", "otherpkgdir"):
        if key in attrs:
            attrs[key] = _absolute_dirs(attrs[key], docs.source.root, director.host is None)
    attrs.setdefault(
        "rootimgdir",
        posixpath.join(
            layout.install_root, "netboot", image.osvers.value, image.osarch.value, image.profile
        ),
    )

    def image_file(suffix: str, data: bytes, canonical: bytes) -> str:
        path = out.add(layout.image_file(image.family, image.name, suffix), data, 0o644, canonical)
        files.append(path)
        return layout.absolute(path)

    pkg, pkg_c = formats.pkglist(image.name, image.chain, lists["packages"])
    attrs["pkglist"] = image_file("pkglist", pkg, pkg_c)
    other, other_c = b"", b""
    if lists["otherpkgs"] or lists["erase"]:
        other, other_c = formats.otherpkglist(
            image.name, image.chain, lists["otherpkgs"], lists["erase"]
        )
        attrs["otherpkglist"] = image_file("otherpkgs.pkglist", other, other_c)
    ex, ex_c = b"", b""
    if lists["exclude"]:
        ex, ex_c = formats.exlist(image.name, image.chain, lists["exclude"])
        attrs["exlist"] = image_file("exlist", ex, ex_c)
    sync_items = image.merge.sync
    if sync_items:
        sl, sl_c = formats.synclist(image.name, image.chain, sync_items, layout)
        attrs["synclists"] = image_file("synclist", sl, sl_c)
    lite = b""
    if image.statelite:
        lite = formats.litefile_csv(image.name, image.merge.litefile)
        image_file("litefile.csv", lite, lite)

    scripts: dict[str, bytes] = {}
    postinstall = []
    for entry in lists["postinstall"]:
        script, _, args = entry.value.partition(" ")
        data, _mode = _read(docs, f"postinstall/{script}", entry.origin.pos)
        path = out.add(layout.postinstall(image.family, script), data, 0o755)
        files.append(path)
        scripts[script] = data
        postinstall.append(" ".join(filter(None, [layout.absolute(path), args.strip()])))
    if postinstall:
        attrs["postinstall"] = ",".join(postinstall)

    sources: dict[str, tuple[bytes, int]] = {}
    for item in sync_items:
        extra = [f"{s}.post" for s in item.sources] if item.mode == "execute" else []
        for src in (*item.sources, *extra):
            data, mode = _read(docs, f"synclists/{src}", item.origin.pos)
            files.append(out.add(layout.sync_source(src), data, mode))
            if item.nodes is None and item.mode in ("copy", "execute", "executealways"):
                sources[src] = (data, mode)

    builtins = builtin_postscripts(docs)
    for kind in ("postscripts", "postbootscripts"):
        entries = []
        for entry in lists[kind]:
            script, _, args = entry.value.partition(" ")
            rel = f"postscripts/{script}"
            if script in builtins and not docs.source.is_file(rel):
                entries.append(entry.value)
                continue
            data, _mode = _read(docs, rel, entry.origin.pos)
            files.append(out.add(layout.postscript(script), data, 0o755))
            entries.append(" ".join(filter(None, [layout.postscript_entry(script), args.strip()])))
        if entries:
            attrs[kind] = ",".join(entries)

    stanza = formats.stanza(image.name, attrs)
    stanza_path = out.add(layout.image_file(image.family, image.name, "stanza"), stanza)
    files.append(stanza_path)
    build = director.build
    digests = {
        "build": digest.build_digest(pkg_c, other_c, scripts, attrs),
        "pack": digest.pack_digest(
            ex_c,
            formats.build_time_sync(sync_items, layout),
            sources,
            lite,
            attrs,
            {"method": build.method, "compress": build.compress},
        ),
        "define": digest.define_digest(stanza),
    }
    return RenderedImage(
        name=image.name,
        profile=image.profile,
        director=image.director,
        frozen=image.frozen,
        statelite=image.statelite,
        stanza_path=stanza_path,
        files=tuple(dict.fromkeys(files)),
        attributes=attrs,
        digests=digests,
        resolved=image,
    )


__all__ = ["RenderedDirector", "RenderedFile", "RenderedImage", "render_director", "script_name"]
