"""Assemble one director's tree: {path relative to install_root: file}, plus per-image facts."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .. import digest
from ..actions import Stage
from ..errors import ConfigError, Pos, Problem
from ..load import SiteDocs
from ..model import XCAT_BUILTIN_POSTSCRIPTS, variant_osimage
from ..resolve import Resolution, ResolvedImage, attr_text
from ..safe import SCHEME_RE as URL_RE
from . import formats, kinds
from .layout import Layout


@dataclass(frozen=True)
class RenderedFile:
    data: bytes
    mode: int
    canonical: bytes  # what counts as a change to the images using it

    @property
    def identity(self) -> str:
        return digest.sha256(self.canonical) + f":{self.mode:o}"


@dataclass
class RenderedVariant:
    """A boot variant's osimage: its image's definition with the variant's attributes on top."""

    name: str  # the osimage, <image>-<variant>
    variant: str  # the variant's own name
    stanza_path: str
    attributes: dict[str, str]  # the osimage definition (without objtype)
    settings: dict[str, tuple[Optional[str], Pos]]  # what the variant sets (None: unsets), where
    description: str
    pos: Pos  # where the variant is declared


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
    variants: dict[str, RenderedVariant] = field(default_factory=dict)  # by osimage name
    # `from: director` files packimage/liteimg copy into the root (build-time entries,
    # `.post` companions included), sorted; their paths enter the pack digest through the
    # synclist lines, their content only through plan (reconcile.with_director_files).
    director_files: tuple[str, ...] = ()
    # sha256 hex of each director file as plan read it (None: missing); None: not read
    # (render, show and diff never read the director)
    director_hashes: Optional[dict[str, Optional[str]]] = None
    # stage -> the digest imagespec computed before package order stopped counting, when
    # it differs: a director that recorded it is up to date (plan.accepted_digests)
    legacy_digests: dict[str, str] = field(default_factory=dict)

    @property
    def rootimgdir(self) -> str:
        return self.attributes["rootimgdir"]

    @property
    def stanza_paths(self) -> tuple[str, ...]:
        """The image's stanza and its variants' (definitions, not files a build uses)."""
        return (self.stanza_path, *(v.stanza_path for v in self.variants.values()))


@dataclass
class RenderedDirector:
    name: str
    layout: Layout
    files: dict[str, RenderedFile] = field(default_factory=dict)
    images: dict[str, RenderedImage] = field(default_factory=dict)

    @property
    def osimages(self) -> dict[str, str]:
        """Every osimage the director defines -> its image (a variant's is the one it shares)."""
        owners = {name: name for name in self.images}
        for name, image in self.images.items():
            owners.update({variant: name for variant in image.variants})
        return owners

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
    return _ImageRenderer(docs, out, image).render()


class _ImageRenderer:
    """Renders one image's files into the director tree and computes its digests.

    The kinds of file come from kinds.py: per-image files, then the scripts
    and sync sources they name, then the stanza.  What each contributes to a
    digest is collected per stage; the attributes they set end up in the stanza.
    """

    def __init__(self, docs: SiteDocs, out: RenderedDirector, image: ResolvedImage):
        self.docs = docs
        self.out = out
        self.image = image
        self.layout = out.layout
        self.files: list[str] = []
        self.attrs = self._base_attributes()
        self.inputs: dict[Stage, dict[str, Any]] = {stage: {} for stage in Stage}
        self.legacy: dict[str, Any] = {}  # build inputs as earlier versions digested them
        self.scripts: dict[str, bytes] = {}  # build-time script -> bytes
        self.sources: dict[str, tuple[bytes, int]] = {}  # build-time sync sources
        self.director_files: set[str] = set()  # build-time `from: director` sources

    def render(self) -> RenderedImage:
        for kind in kinds.IMAGE_FILES:
            self._file(kind)
        for copied in kinds.COPIED:
            if isinstance(copied, kinds.ScriptKind):
                self._scripts(copied)
            else:
                self._sync_sources(copied)
        image = self.image
        stanza = kinds.STANZA.write(image, self.layout, self.attrs).canonical
        stanza_path = self.out.add(
            self.layout.image_file(image.family, image.name, kinds.STANZA.suffix), stanza
        )
        self.files.append(stanza_path)
        variants = self._variants()
        return RenderedImage(
            name=image.name,
            profile=image.profile,
            director=image.director,
            frozen=image.frozen,
            statelite=image.statelite,
            stanza_path=stanza_path,
            files=tuple(dict.fromkeys(self.files)),
            attributes=self.attrs,
            digests=self._digests(stanza, variants),
            resolved=image,
            variants=variants,
            director_files=tuple(sorted(self.director_files)),
            legacy_digests=self._legacy_digests(),
        )

    def _variants(self) -> dict[str, RenderedVariant]:
        """One stanza per boot variant, written like the image's: the image's attributes
        with the variant's set (or unset, null) on top."""
        image = self.image
        out: dict[str, RenderedVariant] = {}
        declared = self.docs.site.model.images[image.name].variants
        for vname, variant in sorted(declared.items()):
            name = variant_osimage(image.name, vname)
            at = self.docs.site.at("images", image.name, "variants", vname, "attributes")
            attrs = dict(self.attrs)
            settings: dict[str, tuple[Optional[str], Pos]] = {}
            for key, value in variant.attributes.items():
                text = None if value is None else attr_text(value)
                settings[key] = (text, at(key))
                if text is None:
                    attrs.pop(key, None)
                else:
                    attrs[key] = text
            path = self.out.add(
                self.layout.image_file(image.family, name, kinds.STANZA.suffix),
                formats.stanza(name, attrs),
            )
            self.files.append(path)
            pos = self.docs.site.pos("images", image.name, "variants", vname)
            out[name] = RenderedVariant(
                name, vname, path, attrs, settings, variant.description, pos
            )
        return out

    def _base_attributes(self) -> dict[str, str]:
        """User attributes, computed identity, absolute package dirs and the default rootimgdir."""
        image = self.image
        local = self.docs.site.model.directors[image.director].host is None
        attrs = {name: entry.value for name, entry in image.attributes.items()}
        attrs.update(profile=image.profile, osvers=image.osvers.value, osarch=image.osarch.value)
        for key in ("pkgdir", "otherpkgdir"):
            if key in attrs:
                attrs[key] = _absolute_dirs(attrs[key], self.docs.source.root, local)
        default_root = posixpath.join(
            self.layout.install_root,
            "netboot",
            image.osvers.value,
            image.osarch.value,
            image.profile,
        )
        attrs.setdefault("rootimgdir", default_root)
        return attrs

    def _file(self, kind: kinds.FileKind) -> None:
        """One per-image file, unless its writer omits it; its attribute names it."""
        image = self.image
        written = kind.write(image, self.layout, self.attrs)
        if kind.stage is not None:
            self.inputs[kind.stage][kind.key] = written.digest
            if written.legacy is not None:
                self.legacy[kind.key] = written.legacy
        if written.data is None:
            return
        path = self.out.add(
            self.layout.image_file(image.family, image.name, kind.suffix),
            written.data,
            0o644,
            written.canonical,
        )
        self.files.append(path)
        if kind.attribute:
            self.attrs[kind.attribute] = self.layout.absolute(path)

    def _scripts(self, kind: kinds.ScriptKind) -> None:
        """Every script the list names, mode 0755; xCAT built-ins without a file are named as they are."""
        builtins = builtin_postscripts(self.docs) if kind.builtins else frozenset()
        entries = []
        for entry in self.image.merge.lists[kind.field]:
            script, _, args = entry.value.partition(" ")
            rel = f"{kind.folder}/{script}"
            if script in builtins and not self.docs.source.is_file(rel):
                entries.append(entry.value)
                continue
            data, _mode = _read(self.docs, rel, entry.origin.pos)
            path = self.out.add(kind.place(self.layout, self.image.family, script), data, 0o755)
            self.files.append(path)
            if kind.stage == Stage.BUILD:
                self.scripts[script] = data
            entries.append(
                " ".join(filter(None, [kind.entry(self.layout, path, script), args.strip()]))
            )
        if entries:
            self.attrs[kind.attribute] = ",".join(entries)

    def _sync_sources(self, kind: kinds.SourceKind) -> None:
        """Every source (and EXECUTE companion); plain node-independent ones count for pack.
        A director file is never read nor copied: it is on the director already."""
        for item in self.image.merge.sync:
            for src in item.copied_sources:
                if item.director:
                    if item.build_time:
                        self.director_files.add(src)
                    continue
                data, mode = _read(self.docs, f"{kind.folder}/{src}", item.origin.pos)
                self.files.append(self.out.add(kind.place(self.layout, src), data, mode))
                if item.build_time:
                    self.sources[src] = (data, mode)

    def _legacy_digests(self) -> dict[str, str]:
        """The build digest with package lists in their written order, when that differs."""
        if not self.legacy:
            return {}
        inputs = {**self.inputs[Stage.BUILD], **self.legacy}
        return {Stage.BUILD.value: digest.build_digest(inputs, self.scripts, self.attrs)}

    def _digests(self, stanza: bytes, variants: dict[str, RenderedVariant]) -> dict[str, str]:
        build = self.docs.site.model.directors[self.image.director].build
        return {
            Stage.BUILD.value: digest.build_digest(
                self.inputs[Stage.BUILD], self.scripts, self.attrs
            ),
            Stage.PACK.value: digest.pack_digest(
                self.inputs[Stage.PACK],
                self.sources,
                self.attrs,
                {"method": build.method, "compress": build.compress},
            ),
            Stage.DEFINE.value: digest.define_digest(
                stanza, {name: self.out.files[v.stanza_path].data for name, v in variants.items()}
            ),
        }


__all__ = [
    "RenderedDirector",
    "RenderedFile",
    "RenderedImage",
    "RenderedVariant",
    "render_director",
]
