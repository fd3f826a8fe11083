"""What an osimage means to xCAT, as one comparable value: the fidelity proof of an import.

`meaning(attributes, files, litefile_rows)` reads every file an osimage's
attributes name, through the same parsers the native builder uses
(render/readers.py), and reduces them to what xCAT acts on: the package
sets of each install transaction with their #ENV: pairs, the erase lists
before and after install, the exclude and re-include sets, the synclist
entries with the identity of each source, the litefile rows, the
postinstall chain (dispatchers expanded, dispatch.py) and postscripts with
their arguments, and every other attribute as it is.  Two osimages that
give equal values are built, packed and booted alike; `differences(a, b)`
says in plain words where two values part.

Paths are the director's absolute paths, read through a DirectorFiles; a
file that cannot be read is identified by its path (`director:/etc/hosts`),
so a file kept on the director compares equal to itself.  Used by
`imagespec import` and `imagespec adopt`.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Optional

from ..actions import Stage
from ..digest import BUILD_ATTRIBUTES, PACK_ATTRIBUTES
from ..model import XCAT_BUILTIN_POSTSCRIPTS
from ..render import RenderedDirector, readers
from ..render.kinds import FILE_ATTRIBUTES
from . import dispatch
from .files import DirectorFiles, Overlay
from .lists import read_list, split_attribute
from .stanzas import ImportInputError


@dataclass(frozen=True)
class Meaning:
    """What one osimage means; every field is plain, sorted where order carries no meaning."""

    packages: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]  # per transaction: names, env
    otherpkgs: tuple[tuple[Any, ...], ...]  # per transaction: pre, {dir: names}, post, env
    exclude: tuple[str, ...]
    include: tuple[str, ...]
    sync: tuple[tuple[Any, ...], ...]  # (source identities, dest, clause, nodes), sorted
    litefile: tuple[tuple[str, str], ...]  # (file, options), blank options as tmpfs,rw
    postinstall: tuple[tuple[str, tuple[str, ...]], ...]  # (script identity, args) in order
    postscripts: tuple[tuple[str, tuple[str, ...]], ...]
    postbootscripts: tuple[tuple[str, tuple[str, ...]], ...]
    attributes: tuple[tuple[str, str], ...]
    unreadable: tuple[str, ...] = field(default=())  # list files that could not be read

    def as_json(self) -> dict[str, Any]:
        return {name: _jsonable(getattr(self, name)) for name in self.__dataclass_fields__}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def identity(files: DirectorFiles, path: str) -> str:
    """A file's identity: sha256 of its bytes and its mode, or its path when it cannot be read."""
    data = files.read(path)
    if data is None:
        return f"director:{path}"
    mode = files.mode(path)
    return f"sha256:{hashlib.sha256(data).hexdigest()}:{mode or 0:o}"


def content_identity(files: DirectorFiles, path: str) -> str:
    """As identity, without the mode: scripts run the same whatever their bits."""
    data = files.read(path)
    if data is None:
        return f"director:{path}"
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def meaning(
    attributes: dict[str, str],
    files: DirectorFiles,
    litefile_rows: Iterable[tuple[str, str]],
    builtins: Iterable[str] = (),
) -> Meaning:
    """The meaning of one osimage (attributes as lsdef prints them, without objtype).

    litefile_rows are the (file, options) rows of the litefile table whose
    image is this osimage (not ALL or groups: those are the director's).
    builtins names postscripts that are xCAT's own when they have no file.
    """
    unreadable: list[str] = []
    statelite = attributes.get("provmethod") == "statelite"
    exclude, include = _exlist(attributes.get("exlist", ""), files, unreadable)
    return Meaning(
        packages=_packages(attributes.get("pkglist", ""), files, unreadable),
        otherpkgs=_otherpkgs(attributes.get("otherpkglist", ""), files, unreadable),
        exclude=exclude,
        include=include,
        sync=_sync(attributes.get("synclists", ""), files, unreadable),
        litefile=tuple(sorted((f, o or "tmpfs,rw") for f, o in litefile_rows)) if statelite else (),
        postinstall=_postinstall(attributes.get("postinstall", ""), files),
        postscripts=_postscripts(attributes.get("postscripts", ""), files, builtins),
        postbootscripts=_postscripts(attributes.get("postbootscripts", ""), files, builtins),
        attributes=_attributes(attributes, files.install_root),
        unreadable=tuple(sorted(set(unreadable))),
    )


def _texts(
    value: str, files: DirectorFiles, unreadable: list[str], exlist: bool = False
) -> list[str]:
    """Each list file of the attribute, includes expanded, as the text xCAT parses."""
    out = []
    for path in split_attribute(value):
        try:
            read = read_list(files, path, strip_inline_comments=exlist)
        except ImportInputError:
            unreadable.append(path)
            continue
        out.append("\n".join(line.text for line in read.lines) + "\n")
    return out


def _packages(value: str, files: DirectorFiles, unreadable: list[str]) -> tuple[Any, ...]:
    """Transactions by index: get_package_names (imgutils.pm 124-215) restarts its pass
    count for every file of the attribute, so pass N of each file is one transaction."""
    passes: dict[int, tuple[set[str], list[str]]] = {}
    for text in _texts(value, files, unreadable):
        for index, one in enumerate(readers.pkglist_passes(text)):
            names, env = passes.setdefault(index, (set(), []))
            names.update(one.names)
            env.extend(e for e in one.env if e not in env)
    return tuple((tuple(sorted(n)), tuple(e)) for _, (n, e) in sorted(passes.items()))


def _otherpkgs(value: str, files: DirectorFiles, unreadable: list[str]) -> tuple[Any, ...]:
    passes: dict[int, tuple[set[str], dict[str, set[str]], set[str], list[str]]] = {}
    for text in _texts(value, files, unreadable):
        for index, one in enumerate(readers.parse_otherpkglist(text)):
            pre, install, post, env = passes.setdefault(index, (set(), {}, set(), []))
            pre.update(one.pre_remove)
            post.update(one.post_remove)
            for subdir, names in one.install.items():
                install.setdefault(subdir, set()).update(names)
            env.extend(e for e in one.env if e not in env)
    return tuple(
        (
            tuple(sorted(pre)),
            tuple((d, tuple(sorted(n))) for d, n in sorted(install.items())),
            tuple(sorted(post)),
            tuple(env),
        )
        for _, (pre, install, post, env) in sorted(passes.items())
    )


def _exlist(
    value: str, files: DirectorFiles, unreadable: list[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    excludes: set[str] = set()
    includes: set[str] = set()
    for text in _texts(value, files, unreadable, exlist=True):
        ex, inc = readers.parse_exlist(text)
        excludes.update(ex)
        includes.update(inc)
    return tuple(sorted(excludes)), tuple(sorted(includes))


def _sync(value: str, files: DirectorFiles, unreadable: list[str]) -> tuple[Any, ...]:
    entries = set()
    for path in split_attribute(value):
        data = files.read(path)
        if data is None:
            unreadable.append(path)
            continue
        for line in readers.parse_synclist(data.decode("utf-8", "replace")):
            ids = tuple(identity(files, src) for src in line.sources)
            entries.add((ids, line.dest, line.clause, line.nodes or ""))
    return tuple(sorted(entries))


def script_entries(value: str) -> list[tuple[str, tuple[str, ...]]]:
    """`path args,path args` -> [(path, args)] as genimage and Postage.pm split them."""
    return [(script, tuple(args)) for script, args in readers.parse_postinstall(value)]


def _postinstall(value: str, files: DirectorFiles) -> tuple[Any, ...]:
    """(identity, args) per script genimage runs; a dispatcher counts as the scripts it runs."""
    out: list[tuple[str, tuple[str, ...]]] = []
    for path, args in script_entries(value):
        data = files.read(path)
        directory = dispatch.dispatcher_dir(path, data) if data is not None else None
        if directory is None:
            out.append((content_identity(files, path), args))
            continue
        for script in dispatch.expand(files, directory):
            out.append((content_identity(files, script.path), args))
    return tuple(out)


def _postscripts(value: str, files: DirectorFiles, builtins: Iterable[str]) -> tuple[Any, ...]:
    known = XCAT_BUILTIN_POSTSCRIPTS | frozenset(builtins)
    root = posixpath.join(files.install_root, "postscripts")
    out = []
    for name, args in script_entries(value):
        path = posixpath.join(root, name)
        if files.read(path) is not None:
            out.append((content_identity(files, path), args))
        else:
            out.append((f"builtin:{name}" if name in known else f"missing:{name}", args))
    return tuple(out)


def default_rootimgdir(attributes: dict[str, str], install_root: str) -> str:
    """xCAT's rootimgdir when the attribute is unset: <install>/netboot/<osvers>/<arch>/<profile>."""
    return posixpath.join(
        install_root,
        "netboot",
        attributes.get("osvers", ""),
        attributes.get("osarch", ""),
        attributes.get("profile", ""),
    )


def _attributes(attributes: dict[str, str], install_root: str) -> tuple[tuple[str, str], ...]:
    plain = {k: v for k, v in attributes.items() if k not in FILE_ATTRIBUTES and v != ""}
    plain.setdefault("rootimgdir", default_rootimgdir(attributes, install_root))
    return tuple(sorted(plain.items()))


LABELS = {
    "packages": "pkglist transactions",
    "otherpkgs": "otherpkglist transactions",
    "exclude": "exlist excludes",
    "include": "exlist re-includes",
    "sync": "synclist entries",
    "litefile": "litefile rows",
    "postinstall": "postinstall chain",
    "postscripts": "postscripts",
    "postbootscripts": "postbootscripts",
    "attributes": "attributes",
    "unreadable": "unreadable list files",
}


def differences(old: Meaning, new: Meaning) -> list[str]:
    """Human-readable differences between two meanings (empty: they mean the same)."""
    out: list[str] = []
    for name, label in LABELS.items():
        a, b = getattr(old, name), getattr(new, name)
        if a == b:
            continue
        if name in ("postinstall", "postscripts", "postbootscripts", "packages", "otherpkgs"):
            out.append(f"{label}: was {_show(a)}, now {_show(b)}")
        elif name == "attributes":
            out += _attribute_changes(dict(a), dict(b))
        else:
            gone = [x for x in a if x not in b]
            added = [x for x in b if x not in a]
            out += [f"{label}: lost {_show(x)}" for x in gone]
            out += [f"{label}: added {_show(x)}" for x in added]
    return out


def _attribute_changes(a: dict[str, str], b: dict[str, str]) -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            out.append(f"attribute {key}: was {_value(a.get(key))}, now {_value(b.get(key))}")
    return out


def _value(value: Optional[str]) -> str:
    return "(unset)" if value is None else repr(value)


def _show(value: Any) -> str:
    text = repr(_jsonable(value))
    return text if len(text) <= 300 else text[:297] + "..."


def rendered_files(rendered: RenderedDirector, below: DirectorFiles) -> Overlay:
    """A director's rendered tree (by absolute path) over its own files: the site as it
    would land, so a file left on the director reads the same on both sides."""
    layout = rendered.layout
    return Overlay(
        {layout.absolute(rel): (f.data, f.mode) for rel, f in rendered.files.items()}, below
    )


def rendered_meaning(
    rendered: RenderedDirector, name: str, files: Overlay, builtins: Iterable[str]
) -> Meaning:
    """What the site renders for one image means (its stanza attributes, files, litefile)."""
    image = rendered.images[name]
    rows: list[tuple[str, str]] = []
    for rel in image.files:
        if rel.endswith(".litefile.csv"):
            rows = readers.parse_litefile(rendered.files[rel].data.decode())
    return meaning(image.attributes, files, rows, builtins)


def stage_differences(old: Meaning, new: Meaning) -> dict[str, list[str]]:
    """differences() split by the stage that acts on each: genimage (package lists,
    postinstall, build attributes; an unreadable list could be anything, so build),
    the pack (excludes, sync entries packimage copies, litefile rows, pack attributes),
    and the definition (node-time sync entries, postscripts, other attributes)."""
    build_attrs = set(BUILD_ATTRIBUTES)
    pack_attrs = set(PACK_ATTRIBUTES)

    def packed(entry: tuple[Any, ...]) -> bool:
        return not entry[2] and not entry[3]  # no clause, no noderange: xdcp -i copies it

    def only(m: Meaning, stage: Stage) -> Meaning:
        keep: set[str] = {
            Stage.BUILD: {"packages", "otherpkgs", "postinstall", "unreadable"},
            Stage.PACK: {"exclude", "include", "litefile"},
            Stage.DEFINE: {"postscripts", "postbootscripts"},
        }[stage]
        blank = {f: () for f in m.__dataclass_fields__ if f not in keep | {"sync", "attributes"}}
        if stage == Stage.PACK:
            sync = tuple(e for e in m.sync if packed(e))
            attrs = tuple(a for a in m.attributes if a[0] in pack_attrs)
        elif stage == Stage.BUILD:
            sync, attrs = (), tuple(a for a in m.attributes if a[0] in build_attrs)
        else:
            sync = tuple(e for e in m.sync if not packed(e))
            attrs = tuple(a for a in m.attributes if a[0] not in build_attrs | pack_attrs)
        return replace(m, sync=sync, attributes=attrs, **blank)

    return {
        stage: differences(only(old, stage), only(new, stage))
        for stage in (Stage.BUILD, Stage.PACK, Stage.DEFINE)
    }
