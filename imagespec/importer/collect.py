"""One osimage -> its entries per profile key, each entry remembering the xCAT file it came from.

This is where the director's values are judged: every value that becomes a
path, a file name, a YAML key or a profile name is checked with safe.py, and
what imagespec cannot express is recorded as a loss of that image (the
fidelity proof then shows what it changes).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Optional

from .. import safe
from ..model import LITEFILE_OPTIONS, XCAT_BUILTIN_POSTSCRIPTS
from ..render import readers
from ..render.kinds import COMPUTED_ATTRIBUTES
from . import dispatch
from .files import DirectorFiles, normal
from .lists import ListRead, read_list, split_attribute
from .meaning import default_rootimgdir, script_entries
from .stanzas import ImportInputError, LiteRow, Osimage

# Attributes imagespec computes, or takes from the distro: never copied as attributes.
COMPUTED = COMPUTED_ATTRIBUTES | {"pkgdir", "otherpkgdir"}
# Names that say a file holds a secret, whatever its mode (a sync source never copied into git).
SECRET_NAME = re.compile(
    r"(shadow|gshadow|secret|passw|\.key$|key\.|munge|\.pem$|\.p12$|^id_|krb5\.keytab|\.keytab$|token)",
    re.IGNORECASE,
)
LIST_KINDS = (
    "packages",
    "otherpkgs",
    "erase_first",
    "erase",
    "exclude",
    "sync",
    "postinstall",
    "postscripts",
    "postbootscripts",
    "litefile",
    "attributes",
)


@dataclass(frozen=True)
class Item:
    """One profile entry and the director file it came from ("" when from an attribute)."""

    kind: str
    value: Any  # str; sync: tuple of (key, value) pairs; litefile/attributes: (key, value)
    origin: str = ""

    @property
    def key(self) -> tuple[str, Any]:
        return (self.kind, self.value)


@dataclass
class Collected:
    """What one osimage becomes before factoring."""

    name: str
    profile: str
    osvers: str
    osarch: str
    family: str
    pkgdir: str
    otherpkgdir: str
    items: list[Item] = field(default_factory=list)
    image_attributes: dict[str, Optional[str]] = field(default_factory=dict)
    losses: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # xCAT files read (provenance)
    director_sources: list[str] = field(default_factory=list)
    missing_postscripts: list[str] = field(default_factory=list)


@dataclass
class Copies:
    """Files the new site holds: site path -> (bytes, mode), and which director file each is."""

    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)

    def add(self, folder: str, name: str, data: bytes, mode: int, origin: str) -> str:
        """A unique name in folder for these bytes (`name`, else `name-2` ...)."""
        stem, number = name, 1
        while True:
            rel = f"{folder}/{name}"
            if rel not in self.files or self.files[rel] == (data, mode):
                self.files[rel] = (data, mode)
                self.origin.setdefault(rel, origin)
                return name
            number += 1
            name = f"{stem}-{number}"


class Collector:
    """Turns osimages into Collected values, sharing the list cache and the copied files."""

    def __init__(
        self,
        files: DirectorFiles,
        lite_rows: list[LiteRow],
        builtins: Iterable[str] = (),
    ):
        self.files = files
        self.root = files.install_root
        self.lite_rows = lite_rows
        self.builtins = XCAT_BUILTIN_POSTSCRIPTS | frozenset(builtins)
        self.copies = Copies()
        self.reads: dict[str, ListRead] = {}
        self.includers: dict[str, set[str]] = {}

    # -- lists, with the include graph of every image known first

    def preload(self, osimages: Iterable[Osimage]) -> None:
        """Read every list file once, so that an include's users are known before factoring."""
        for image in osimages:
            for attr in ("pkglist", "otherpkglist", "exlist"):
                for path in split_attribute(image.attributes.get(attr, "")):
                    self._read(path, attr == "exlist", image.name)

    def _read(self, path: str, exlist: bool, image: str) -> ListRead:
        norm = normal(path)
        if norm is None:
            raise ImportInputError(f"osimage {image}: '{path}' is not a plain absolute path")
        if norm not in self.reads:
            read = read_list(self.files, norm, strip_inline_comments=exlist)
            self.reads[norm] = read
            for parent, children in read.includes.items():
                for child in children:
                    self.includers.setdefault(child, set()).add(parent)
        return self.reads[norm]

    def origin_of(self, line_file: str, included_from: tuple[str, ...]) -> str:
        """The file an included line is credited to: itself when ≥2 files include it, else
        the nearest including file that is a unit of its own (included lines are inlined)."""
        for candidate in (line_file, *reversed(included_from)):
            if not self.includers.get(candidate) or len(self.includers[candidate]) >= 2:
                return candidate
        return included_from[0] if included_from else line_file

    # -- one image

    def collect(self, image: Osimage) -> Collected:
        attrs = image.attributes
        profile = attrs.get("profile", "")
        if not safe.OBJECT_NAME_RE.match(profile):
            raise ImportInputError(
                f"{image.where}: osimage {image.name}: profile '{profile}' cannot be a profile"
                " name (letters, digits, '_', '.', '-'; no '/' or '..'); fix it on the director"
            )
        for key in ("osvers", "osarch"):
            if not safe.is_name(attrs.get(key, "")):
                raise ImportInputError(
                    f"{image.where}: osimage {image.name}: {key} '{attrs.get(key, '')}' is"
                    " missing or not a plain name"
                )
        out = Collected(
            name=image.name,
            profile=profile,
            osvers=attrs["osvers"],
            osarch=attrs["osarch"],
            family=self._family(attrs),
            pkgdir=attrs.get("pkgdir", ""),
            otherpkgdir=attrs.get("otherpkgdir", ""),
        )
        self._packages(image, out)
        self._otherpkgs(image, out)
        self._exlist(image, out)
        self._synclists(image, out)
        self._postinstall(image, out)
        for kind in ("postscripts", "postbootscripts"):
            self._postscripts(kind, attrs.get(kind, ""), out)
        self._litefile(image, out)
        self._attributes(image, out)
        return out

    def _family(self, attrs: dict[str, str]) -> str:
        """The path segment of rendered files: the directory of the pkglist
        (custom/netboot/<family>/...), else the letters of osvers."""
        for path in split_attribute(attrs.get("pkglist", "")):
            parts = path.split("/")
            if "netboot" in parts[:-1]:
                after = parts[parts.index("netboot") + 1 : -1]
                if after and safe.is_name(after[0]):
                    return after[0]
        letters = re.match(r"[A-Za-z]+", attrs.get("osvers", ""))
        return letters.group(0) if letters else "linux"

    def _lines(self, image: Osimage, attr: str, out: Collected) -> list[tuple[str, str]]:
        """(text, origin) of every kept line of the attribute's files, in order."""
        lines = []
        for path in split_attribute(image.attributes.get(attr, "")):
            read = self._read(path, attr == "exlist", image.name)
            out.files += [f for f in read.includes if f not in out.files]
            for line in read.lines:
                lines.append((line.text, self.origin_of(line.file, line.included_from)))
        return lines

    def _packages(self, image: Osimage, out: Collected) -> None:
        for text, origin in self._lines(image, "pkglist", out):
            if _directive(text):
                out.items.append(Item("packages", text.strip(), origin))
                continue
            for entry in (p.strip() for p in text.split(",")):
                if not entry:
                    continue
                if entry.startswith("-"):
                    out.notes.append(
                        f"pkglist entry '{entry}' ({origin}) left out: genimage ignores erase"
                        " lines in the base pkglist"
                    )
                    continue
                name = entry if entry.startswith("@") else posixpath.basename(entry)
                if name != entry:
                    out.notes.append(
                        f"pkglist entry '{entry}' imported as '{name}' (genimage drops the directory)"
                    )
                if not safe.PACKAGE_RE.match(name):
                    out.losses.append(
                        f"pkglist entry '{entry}' ({origin}) is not a package name imagespec accepts"
                    )
                    continue
                out.items.append(Item("packages", name, origin))

    def _otherpkgs(self, image: Osimage, out: Collected) -> None:
        section = 0
        for text, origin in self._lines(image, "otherpkglist", out):
            if _directive(text):
                section += text.startswith(readers.NEW_INSTALL_LIST)
                out.items.append(Item("otherpkgs", text.strip(), origin))
                continue
            for entry in (p.strip() for p in text.split(",")):
                if entry:
                    self._otherpkg(entry, origin, section, out)

    def _otherpkg(self, entry: str, origin: str, section: int, out: Collected) -> None:
        if entry.startswith("--"):
            kind, name = "erase", posixpath.basename(entry[2:])
        elif entry.startswith("-"):
            kind, name = "erase_first", posixpath.basename(entry[1:])
        else:
            kind, name = "otherpkgs", entry
        directory, _, base = name.rpartition("/")
        if not safe.PACKAGE_RE.match(base) or (directory and not safe.is_rel_path(directory)):
            out.losses.append(
                f"otherpkglist entry '{entry}' ({origin}) is not a package name imagespec accepts"
            )
            return
        if kind == "erase_first" and section > 0:
            out.losses.append(
                f"otherpkglist entry '{entry}' ({origin}) is in a later #NEW_INSTALL_LIST#"
                " section; imagespec erases before the first install only"
            )
            return
        out.items.append(Item(kind, name, origin))

    def _exlist(self, image: Osimage, out: Collected) -> None:
        for text, origin in self._lines(image, "exlist", out):
            pattern = text.strip()
            body = pattern[1:] if pattern.startswith("+") else pattern
            if not safe.EXCLUDE_RE.match(body):
                out.losses.append(
                    f"exlist line '{pattern}' ({origin}) has characters imagespec refuses"
                )
                continue
            out.items.append(Item("exclude", pattern, origin))

    # -- sync

    def _synclists(self, image: Osimage, out: Collected) -> None:
        attr = image.attributes.get("synclists", "")
        if not attr:
            out.notes.append(
                "no synclists attribute: imagespec always sets one, so packimage no longer falls"
                " back to /install/custom/netboot/<platform>/<profile>*.synclist"
            )
        for path in split_attribute(attr):
            norm = normal(path)
            data = self.files.read(norm) if norm else None
            if norm is None or data is None:
                out.losses.append(f"synclist {path} cannot be read; its entries are not imported")
                continue
            out.files.append(norm)
            for item in self._sync_items(
                readers.parse_synclist(data.decode("utf-8", "replace")), norm, out
            ):
                out.items.append(item)

    def _sync_items(self, lines: list[readers.SyncLine], origin: str, out: Collected) -> list[Item]:
        runs = {line.sources[0]: line.clause for line in lines if line.clause.startswith("EXECUTE")}
        companions = {
            f"{src[:-5]}"
            for src, clause in runs.items()
            if clause == "EXECUTE" and src.endswith(".post")
        }
        items = []
        for line in lines:
            if line.clause.startswith("EXECUTE"):
                continue
            if line.clause == "" and all(
                s.endswith(".post") and s[:-5] in companions for s in line.sources
            ):
                continue  # the .post companion line imagespec renders again for mode execute
            mode = line.clause.lower() if line.clause else "copy"
            if mode == "copy":
                if any(s in companions for s in line.sources):
                    mode = "execute"
                elif any(runs.get(s) == "EXECUTEALWAYS" for s in line.sources):
                    mode = "executealways"
            for src in line.sources:
                entry = self._sync_entry(src, line, mode, origin, out)
                if entry is not None:
                    items.append(Item("sync", entry, origin))
        for src, clause in runs.items():
            known = (
                src[:-5] in companions
                if clause == "EXECUTE"
                else any(src in line.sources for line in lines if not line.clause)
            )
            if not known:
                out.losses.append(
                    f"synclist {origin}: {clause}: {src} runs a script no entry syncs"
                )
        return items

    def _sync_entry(
        self, src: str, line: readers.SyncLine, mode: str, origin: str, out: Collected
    ) -> Optional[tuple[tuple[str, str], ...]]:
        dest = line.dest
        if len(line.sources) > 1 and not dest.endswith("/"):
            dest += "/"
        if not safe.is_abs_path(dest):
            out.losses.append(
                f"synclist {origin}: destination '{line.dest}' is not a plain absolute path"
            )
            return None
        if line.nodes is not None and not safe.NODERANGE_RE.match(line.nodes):
            out.losses.append(
                f"synclist {origin}: node range '{line.nodes}' has characters imagespec refuses"
            )
            return None
        norm = normal(src)
        if norm is None:
            out.losses.append(f"synclist {origin}: source '{src}' is not a plain absolute path")
            return None
        entry: dict[str, str] = {}
        if self._kept_on_director(norm):
            entry = {"src": norm, "dest": dest, "from": "director"}
            if norm not in out.director_sources:
                out.director_sources.append(norm)
        else:
            data = self.files.read(norm)
            mode_bits = self.files.mode(norm)
            assert data is not None and mode_bits is not None
            rel = posixpath.relpath(norm, self.root)
            name = self.copies.add("synclists", rel, data, mode_bits, norm)
            entry = {"src": name, "dest": dest}
        if mode != "copy":
            entry["mode"] = mode
        if line.nodes:
            entry["nodes"] = line.nodes
        return tuple(entry.items())

    def _kept_on_director(self, path: str) -> bool:
        """Outside the install root, unreadable, or secret: named on the director, never copied."""
        if not safe.is_under(path, self.root) or self.files.read(path) is None:
            return True
        mode = self.files.mode(path) or 0
        return not mode & 0o004 or bool(SECRET_NAME.search(posixpath.basename(path)))

    # -- scripts

    def _postinstall(self, image: Osimage, out: Collected) -> None:
        for path, args in script_entries(image.attributes.get("postinstall", "")):
            if not _args_ok(args, out, f"postinstall {path}"):
                continue
            norm = normal(path)
            data = self.files.read(norm) if norm else None
            if norm is None or data is None:
                out.losses.append(
                    f"postinstall {path} cannot be read (outside the install root, missing, or a link leaving it); not imported"
                )
                continue
            out.files.append(norm)
            directory = dispatch.dispatcher_dir(norm, data)
            if directory is None:
                if self.files.is_dir(f"{norm}.d"):
                    out.losses.append(
                        f"postinstall {norm} is not a dispatcher imagespec recognises; the scripts it may run from {norm}.d stay on the director and are not imported"
                    )
                self._script(posixpath.basename(norm), data, args, norm, norm, out)
                continue
            if not self.files.readable(directory):
                out.losses.append(
                    f"postinstall {norm} runs the scripts of {directory}, which cannot be read here; not imported"
                )
                continue
            out.notes.append(
                f"postinstall {norm} is a dispatcher: expanded into the scripts of {directory}"
            )
            for script in dispatch.expand(self.files, directory):
                if script.data is None:
                    out.losses.append(f"postinstall {script.path}: {script.problem}; not imported")
                    continue
                self._script(script.name, script.data, args, script.path, norm, out)

    def _script(
        self, name: str, data: bytes, args: tuple[str, ...], path: str, origin: str, out: Collected
    ) -> None:
        if not safe.is_rel_path(name):
            out.losses.append(f"postinstall {path}: the name '{name}' cannot be a file name here")
            return
        stored = self.copies.add("postinstall", name, data, 0o755, path)
        out.items.append(Item("postinstall", " ".join([stored, *args]), origin))

    def _postscripts(self, kind: str, value: str, out: Collected) -> None:
        for name, args in script_entries(value):
            if not _args_ok(args, out, f"{kind} {name}"):
                continue
            if not safe.is_rel_path(name) or name.startswith("/"):
                out.losses.append(
                    f"{kind} '{name}' is not a path below /install/postscripts; not imported"
                )
                continue
            path = posixpath.join(self.root, "postscripts", name)
            data = self.files.read(path)
            if name in XCAT_BUILTIN_POSTSCRIPTS:
                stored = name
            elif data is None:
                stored = name
                if name not in out.missing_postscripts:
                    out.missing_postscripts.append(name)
            else:
                stored = self.copies.add("postscripts", name, data, 0o755, path)
            out.items.append(Item(kind, " ".join([stored, *args])))

    # -- litefile and attributes

    def _litefile(self, image: Osimage, out: Collected) -> None:
        for row in self.lite_rows:
            if row.image != image.name or row.disabled:
                continue
            option = row.options.strip() or "tmpfs,rw"
            if not safe.is_abs_path(row.file) or option not in LITEFILE_OPTIONS:
                out.losses.append(f"litefile row {row.file} ({row.options}) cannot be expressed")
                continue
            out.items.append(Item("litefile", (row.file, option)))

    def _attributes(self, image: Osimage, out: Collected) -> None:
        attrs = image.attributes
        for key, value in sorted(attrs.items()):
            if key in COMPUTED or value == "":
                continue
            if key == "rootimgdir":  # one image's own place, never shared
                if posixpath.normpath(value) != default_rootimgdir(attrs, self.root):
                    out.image_attributes[key] = value
                continue
            out.items.append(Item("attributes", (key, value)))
        for key in ("imagetype", "osname", "provmethod"):
            if key not in attrs:
                out.image_attributes[key] = None  # imagespec's built-in default would add it


def _directive(text: str) -> bool:
    return text.startswith(readers.NEW_INSTALL_LIST) or bool(readers.ENV_DIRECTIVE.match(text))


def _args_ok(args: tuple[str, ...], out: Collected, what: str) -> bool:
    bad = [a for a in args if not safe.SHELL_WORD_RE.match(a)]
    if bad:
        out.losses.append(
            f"{what}: argument(s) {', '.join(bad)} are not shell-safe words; not imported"
        )
    return not bad
