"""Every kind of list and file imagespec renders, in one place.

The renderer, diff, show, explain and validate read these tables instead of
naming pkglist or postscripts themselves.  A new per-image file is its
profile key in model.py (Profile and LIST_FIELDS), its writer in formats.py,
and here a FileKind (and a ListKind when it is a new merged list).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from ..actions import Stage
from ..resolve import Entry, ResolvedImage
from . import formats, readers
from .layout import Layout


@dataclass(frozen=True)
class ListKind:
    """A merged profile list (SPEC §4) and the key show, diff and explain use for it."""

    field: str  # the profile key
    key: str  # as show, diff and explain name it


@dataclass(frozen=True)
class ScriptKind(ListKind):
    """A list of scripts: files in a site folder, copied to the director, named in an attribute."""

    folder: str  # where the scripts are in the site
    place: Callable[[Layout, str, str], str]  # (layout, family, script) -> path in the tree
    entry: Callable[[Layout, str, str], str]  # (layout, path, script) -> name in the attribute
    builtins: bool  # xCAT's own scripts may be named without a file
    stage: Optional[Stage]  # the digest the scripts' bytes enter (build: genimage runs them)
    whole_list: bool  # diff shows the list before and after: the order matters

    @property
    def attribute(self) -> str:
        return self.field


@dataclass(frozen=True)
class SourceKind:
    """Files a profile list names, copied with their mode (the sources of sync entries)."""

    field: str
    folder: str
    stage: Stage  # the digest the build-time (plain, node-independent) ones enter

    def place(self, layout: Layout, src: str) -> str:
        return layout.sync_source(src)


@dataclass(frozen=True)
class Written:
    """One image file as a writer made it."""

    data: Optional[bytes]  # None: the file is omitted (nothing to put in it)
    canonical: bytes  # what counts as a change to the image (no profile comments)
    digest: Any = None  # JSON-able: the file's part of its stage digest
    legacy: Any = None  # its part as earlier versions computed it, when that differs


Writer = Callable[[ResolvedImage, Layout, dict[str, str]], Written]


@dataclass(frozen=True)
class FileKind:
    """A file of one image: `<image>.<suffix>` in the image directory (SPEC §5)."""

    name: str  # as show, diff and explain call it
    suffix: str
    attribute: Optional[str]  # the osimage attribute naming it (absolute path), if any
    fields: tuple[str, ...]  # the profile keys it is written from
    stage: Optional[Stage]  # build or pack: the digest its content enters, under `key`
    write: Writer  # (image, layout, attributes so far) -> Written
    read: Optional[Callable[[str], Any]] = None  # how a builder reads it back (readers.py)
    digest_key: str = ""  # the key in the stage digest, when it is not `name`

    @property
    def key(self) -> str:
        return self.digest_key or self.name


ListWriter = Callable[..., tuple[bytes, bytes]]


def list_file(
    name: str,
    suffix: str,
    fields: tuple[str, ...],
    stage: Stage,
    writer: ListWriter,
    read: Callable[[str], Any],
    always: bool = False,
    order_free: bool = False,
) -> FileKind:
    """A file written from merged lists, named by the attribute of its name; omitted when
    every list is empty unless `always`.  `writer(image, chain, *lists)` is in formats.py.
    `order_free`: a package list, whose digest part ignores the order within a
    transaction (formats.order_free)."""

    def write(image: ResolvedImage, layout: Layout, attributes: dict[str, str]) -> Written:
        lists: list[list[Entry]] = [image.merge.lists[f] for f in fields]
        if not always and not any(lists):
            return Written(None, b"", "")
        data, canonical = writer(image.name, image.chain, *lists)
        if not order_free:
            return Written(data, canonical, canonical.decode())
        part, legacy = formats.order_free(canonical), canonical.decode()
        return Written(data, canonical, part, legacy if legacy != part else None)

    return FileKind(name, suffix, name, fields, stage, write, read)


def _synclist(image: ResolvedImage, layout: Layout, attributes: dict[str, str]) -> Written:
    """Written for every image, entries or not, so that the synclists attribute is always
    set; the pack digest reads the lines packimage copies, not the whole file."""
    build_time = formats.build_time_sync(image.merge.sync, layout)
    data, canonical = formats.synclist(image.name, image.chain, image.merge.sync, layout)
    return Written(data, canonical, build_time)


def _litefile(image: ResolvedImage, layout: Layout, attributes: dict[str, str]) -> Written:
    """Only statelite images have litefile rows; xCAT reads them from its table, not a path."""
    if not image.statelite:
        return Written(None, b"", "")
    data = formats.litefile_csv(image.name, image.merge.litefile)
    return Written(data, data, data.decode())


def _stanza(image: ResolvedImage, layout: Layout, attributes: dict[str, str]) -> Written:
    data = formats.stanza(image.name, attributes)
    return Written(data, data)


# In rendering order; the stanza comes last, once every attribute is known.
IMAGE_FILES: tuple[FileKind, ...] = (
    list_file(
        "pkglist",
        "pkglist",
        ("packages",),
        Stage.BUILD,
        formats.pkglist,
        readers.parse_pkglist,
        always=True,
        order_free=True,
    ),
    list_file(
        "otherpkglist",
        "otherpkgs.pkglist",
        ("erase_first", "otherpkgs", "erase"),
        Stage.BUILD,
        formats.otherpkglist,
        readers.parse_otherpkglist,
        order_free=True,
    ),
    list_file("exlist", "exlist", ("exclude",), Stage.PACK, formats.exlist, readers.parse_exlist),
    FileKind(
        "synclist",
        "synclist",
        "synclists",
        ("sync",),
        Stage.PACK,
        _synclist,
        readers.parse_synclist_for_pack,
        digest_key="sync",
    ),
    FileKind(
        "litefile",
        "litefile.csv",
        None,
        ("litefile",),
        Stage.PACK,
        _litefile,
        readers.parse_litefile,
    ),
)
STANZA = FileKind("stanza", "stanza", None, (), Stage.DEFINE, _stanza)

SCRIPTS: tuple[ScriptKind, ...] = (
    ScriptKind(
        "postinstall",
        "postinstall",
        folder="postinstall",
        place=lambda layout, family, script: layout.postinstall(family, script),
        entry=lambda layout, path, script: layout.absolute(path),
        builtins=False,
        stage=Stage.BUILD,
        whole_list=True,
    ),
    *(
        ScriptKind(
            field,
            field,
            folder="postscripts",
            place=lambda layout, family, script: layout.postscript(script),
            entry=lambda layout, path, script: layout.postscript_entry(script),
            builtins=True,
            stage=None,
            whole_list=False,
        )
        for field in ("postscripts", "postbootscripts")
    ),
)
SYNC_SOURCES = SourceKind("sync", "synclists", Stage.PACK)
# What an image's rendering copies from the site, in the order RenderedImage.files lists them.
COPIED: tuple[Union[ScriptKind, SourceKind], ...] = (SCRIPTS[0], SYNC_SOURCES, *SCRIPTS[1:])

# Lists of names and patterns; diff reports what was added, removed or reordered.
PLAIN_LISTS: tuple[ListKind, ...] = (
    ListKind("packages", "pkglist"),
    ListKind("otherpkgs", "otherpkglist"),
    ListKind("erase", "erase"),
    ListKind("erase_first", "erase_first"),
    ListKind("exclude", "exlist"),
)
# Every merged list (model.LIST_FIELDS), in the order show prints them.
LISTS: tuple[ListKind, ...] = (*PLAIN_LISTS, *SCRIPTS)
KEY_OF_FIELD = {kind.field: kind.key for kind in LISTS}
# Lists added after SPEC §8 fixed show's shape: `show --json` has them only when not empty.
OPTIONAL_KEYS = frozenset({"erase_first"})

# Attributes imagespec computes; setting them by hand is an error.
# The attributes that name files imagespec renders (their values are paths, not meaning).
FILE_ATTRIBUTES = frozenset(
    {
        *(kind.attribute for kind in IMAGE_FILES if kind.attribute),
        *(kind.attribute for kind in SCRIPTS),
    }
)
COMPUTED_ATTRIBUTES = FILE_ATTRIBUTES | {"profile", "osvers", "osarch"}
