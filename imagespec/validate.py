"""Every check a careful admin wants before anything touches a director.

Pure: takes loaded documents and resolutions, returns problems.  Errors and
warnings are both collected, so one run reports everything.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Callable

from .errors import Pos, Problem, suggest
from .load import LoadedProfile, SiteDocs
from .model import COMPUTED_ATTRIBUTES, LITEFILE_OPTIONS, MERGE_TARGETS, SyncEntry
from .render.tree import URL_RE, RenderedDirector, builtin_postscripts
from .resolve import ChainMerge, is_directive

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
PACKAGE_RE = re.compile(r"^[^\s,#]+$")
NODES_RE = re.compile(r"^[^\s()]+$")
PROVMETHODS = ("netboot", "statelite")

# osimage (and linuximage) attributes xCAT knows; mkdef rejects others.
OSIMAGE_ATTRIBUTES = frozenset(
    [
        "imagename",
        "groups",
        "profile",
        "imagetype",
        "description",
        "provmethod",
        "rootfstype",
        "osdistroname",
        "osupdatename",
        "cfmdir",
        "osname",
        "osvers",
        "osarch",
        "synclists",
        "postscripts",
        "postbootscripts",
        "serverrole",
        "isdeletable",
        "kitcomponents",
        "environvar",
        "usercomment",
        "comments",
        "disable",
        "template",
        "boottarget",
        "addkcmdline",
        "pkglist",
        "pkgdir",
        "otherpkglist",
        "otherpkgdir",
        "exlist",
        "postinstall",
        "rootimgdir",
        "kerneldir",
        "nodebootif",
        "otherifce",
        "netdrivers",
        "kernelver",
        "krpmver",
        "permission",
        "dump",
        "crashkernelsize",
        "partitionfile",
        "driverupdatesrc",
    ]
)


def check_site(docs: SiteDocs) -> list[Problem]:
    """Checks of imagespec.yaml: names, attributes, directors."""
    site = docs.site
    problems = _check_image_names(docs)
    problems += _check_attrs(site.model.defaults, lambda n: site.pos("defaults", n), "defaults")
    for dname, distro in site.model.distros.items():
        where = site.at("distros", dname, "attributes")
        problems += _check_attrs(distro.attributes, where, f"distro '{dname}'")
    for iname, image in site.model.images.items():
        where = site.at("images", iname, "attributes")
        problems += _check_attrs(image.attributes, where, f"image '{iname}'")
    problems += _check_directors(docs)
    problems += _check_remote_dirs(docs)
    if not site.model.directors:
        problems.append(
            Problem(site.pos("directors"), "no directors defined; add one under 'directors:'")
        )
    return problems


def _check_image_names(docs: SiteDocs) -> list[Problem]:
    """Names xCAT would refuse, or silently treat as defaults."""
    site = docs.site
    problems = []
    for name in site.model.images:
        pos = site.pos("images", name)
        if "default" in name:
            problems.append(
                Problem(
                    pos,
                    f"image name '{name}' contains 'default': xCAT's stanza reader treats such objects as defaults and never creates them; rename it",
                )
            )
        if not NAME_RE.match(name):
            problems.append(
                Problem(
                    pos,
                    f"image name '{name}' would be rejected by xCAT; use letters, digits, '_', '.', '-'",
                )
            )
    return problems


def _check_directors(docs: SiteDocs) -> list[Problem]:
    site = docs.site
    problems = []
    for dname, director in site.model.directors.items():
        pos = site.pos("directors", dname, "install_root")
        if director.host is not None and not director.install_root.startswith("/"):
            problems.append(
                Problem(
                    pos,
                    f"director '{dname}' is remote (host '{director.host}'): install_root must be an absolute path",
                )
            )
        if ".." in director.install_root.split("/") or ".." in director.prefix.split("/"):
            problems.append(
                Problem(pos, f"director '{dname}': '..' is not allowed in install_root or prefix")
            )
        for oname, override in director.distros.items():
            where = site.at("directors", dname, "distros", oname, "attributes")
            problems += _check_attrs(override.attributes, where, f"director '{dname}'")
    return problems


def _check_remote_dirs(docs: SiteDocs) -> list[Problem]:
    """A remote director cannot use pkgdir/otherpkgdir relative to this machine's site root."""
    from .resolve import effective_distro

    site = docs.site
    problems = []
    for dname, director in site.model.directors.items():
        if director.host is None:
            continue
        for distro in site.model.distros:
            fields = effective_distro(docs, dname, distro)
            for key in ("pkgdir", "otherpkgdir"):
                value, pos = fields[key]
                items = [value] if isinstance(value, str) else list(value or [])
                for item in items:
                    if not item.startswith("/") and not URL_RE.match(item):
                        problems.append(
                            Problem(
                                pos,
                                f"director '{dname}' is remote: {key} '{item}' must be an absolute path on the director or a URL",
                            )
                        )
    return problems


def _check_attrs(
    values: Mapping[str, object], pos_of: Callable[[str], Pos], where: str
) -> list[Problem]:
    problems = []
    for name, value in values.items():
        pos = pos_of(name)
        if name in COMPUTED_ATTRIBUTES:
            problems.append(
                Problem(
                    pos, f"{where}: '{name}' is computed by imagespec and cannot be set; remove it"
                )
            )
        elif name == "objtype":
            problems.append(Problem(pos, f"{where}: 'objtype' is always osimage; remove it"))
        elif name not in OSIMAGE_ATTRIBUTES:
            problems.append(
                Problem(
                    pos,
                    f"{where}: '{name}' is not an osimage attribute xCAT knows; mkdef would reject it",
                    "warning",
                )
            )
        if isinstance(value, str) and value.endswith(":"):
            problems.append(
                Problem(
                    pos,
                    f"{where}: attribute '{name}' ends with ':', which xCAT's stanza reader takes for an object header; drop the ':'",
                )
            )
        if isinstance(value, str) and ("\n" in value or value != value.strip()):
            problems.append(
                Problem(
                    pos,
                    f"{where}: attribute '{name}' must be one line without leading or trailing spaces",
                )
            )
        if name == "provmethod" and value is not None and value not in PROVMETHODS:
            problems.append(
                Problem(
                    pos,
                    f"{where}: provmethod '{value}' is not supported{suggest(str(value), PROVMETHODS)} (imagespec builds {' and '.join(PROVMETHODS)} images)",
                )
            )
    return problems


def check_profiles(docs: SiteDocs) -> list[Problem]:
    """Per-profile checks that need no chain: entry syntax and referenced files."""
    problems: list[Problem] = []
    builtins = builtin_postscripts(docs)
    for loaded in docs.profiles.values():
        problems += _check_attrs(
            dict(loaded.model.attributes),
            loaded.at("attributes"),
            f"profile '{loaded.name}'",
        )
        problems += _check_packages(loaded)
        problems += _check_excludes(loaded)
        problems += _check_scripts(docs, loaded, builtins)
        problems += _check_sync(docs, loaded)
        problems += _check_litefile_entries(loaded)
    return problems


def _entries(loaded: LoadedProfile, list_field: str) -> Iterable[tuple[Pos, str, bool]]:
    """(position, entry without a leading '-', is_removal) for one list."""
    for index, raw in enumerate(getattr(loaded.model, list_field)):
        removal = raw.startswith("-") and len(raw) > 1
        yield loaded.pos(list_field, index), raw[1:] if removal else raw, removal


def _check_packages(loaded: LoadedProfile) -> list[Problem]:
    problems = []
    for list_field in ("packages", "otherpkgs", "erase"):
        for pos, value, _removal in _entries(loaded, list_field):
            if value.startswith("#INCLUDE:"):
                problems.append(
                    Problem(
                        pos,
                        f"{list_field}: #INCLUDE: is not supported; share entries through 'inherits' instead",
                    )
                )
            elif is_directive(value):
                if list_field == "erase":
                    problems.append(
                        Problem(pos, f"erase: '{value}' is a directive; erase takes package names")
                    )
            elif not value:
                problems.append(Problem(pos, f"{list_field}: an empty entry; remove it"))
            elif value == "-":
                problems.append(Problem(pos, f"{list_field}: '-' names no package; remove it"))
            elif value.startswith("-"):
                problems.append(
                    Problem(
                        pos,
                        f"{list_field}: '-{value}' is not a package; to erase a package list it under 'erase:'",
                    )
                )
            elif not PACKAGE_RE.match(value):
                what = "a comma (xCAT would split it)" if "," in value else "spaces or '#'"
                problems.append(
                    Problem(
                        pos, f"{list_field}: '{value}' contains {what}; give one package per entry"
                    )
                )
            elif list_field != "otherpkgs" and "/" in value:
                problems.append(
                    Problem(
                        pos,
                        f"{list_field}: '{value}': xCAT drops the directory part here; subdirectories belong in otherpkgs",
                    )
                )
    return problems


def _check_excludes(loaded: LoadedProfile) -> list[Problem]:
    problems = []
    for pos, value, _removal in _entries(loaded, "exclude"):
        pattern = value[1:] if value.startswith("+") else value
        if not pattern.startswith(("./", "*")):
            problems.append(
                Problem(
                    pos,
                    f"exclude: '{value}' never matches: patterns are relative to the image root and start with './'",
                    "warning",
                )
            )
        elif pattern.endswith("/"):
            problems.append(
                Problem(
                    pos,
                    f"exclude: '{value}' never matches: a pattern ending in '/' matches nothing; drop the '/' (or use '{pattern}*')",
                    "warning",
                )
            )
        if "#" in value or any(c.isspace() for c in value):
            problems.append(Problem(pos, f"exclude: '{value}' may not contain spaces or '#'"))
    return problems


def _safe_rel(path: str) -> bool:
    return bool(path) and not path.startswith("/") and ".." not in path.split("/")


def _check_scripts(
    docs: SiteDocs, loaded: LoadedProfile, builtins: frozenset[str]
) -> list[Problem]:
    problems = []
    for list_field, folder in (
        ("postinstall", "postinstall"),
        ("postscripts", "postscripts"),
        ("postbootscripts", "postscripts"),
    ):
        for pos, value, removal in _entries(loaded, list_field):
            script = value.split()[0] if value.split() else ""
            if "," in value:
                problems.append(
                    Problem(
                        pos,
                        f"{list_field}: '{value}' contains a comma; xCAT splits the list on commas",
                    )
                )
            if removal:
                continue
            if not _safe_rel(script):
                problems.append(
                    Problem(pos, f"{list_field}: '{script}' must be a path relative to {folder}/")
                )
            elif not docs.source.is_file(f"{folder}/{script}") and not (
                folder == "postscripts" and script in builtins
            ):
                hint = (
                    " (not an xCAT built-in either; add it to builtin_postscripts if it is one)"
                    if folder == "postscripts"
                    else ""
                )
                problems.append(
                    Problem(
                        pos,
                        f"{list_field}: '{folder}/{script}' does not exist{hint}; create it or fix the name",
                    )
                )
    return problems


def _check_sync(docs: SiteDocs, loaded: LoadedProfile) -> list[Problem]:
    problems = []
    for index, entry in enumerate(loaded.model.sync):
        pos = loaded.pos("sync", index)
        messages = _sync_dest_problems(entry.dest)
        if not entry.drop:
            messages += _sync_mode_problems(entry) + _sync_source_problems(docs, entry)
        problems += [Problem(pos, f"sync: {message}") for message in messages]
    return problems


def _sync_dest_problems(dest: str) -> list[str]:
    problems = []
    if not dest.startswith("/"):
        problems.append(f"dest '{dest}' must be an absolute path on the node")
    if any(c.isspace() for c in dest) or ";" in dest:
        problems.append(f"dest '{dest}' may not contain spaces or ';' (xCAT strips them)")
    return problems


def _sync_mode_problems(entry: SyncEntry) -> list[str]:
    """What the entry's mode, source count, dest and nodes allow together."""
    dest, mode, problems = entry.dest, entry.mode, []
    if len(entry.sources) > 1 and not dest.endswith("/"):
        problems.append(f"several sources need a directory dest ending in '/'; got '{dest}'")
    if mode in ("append", "merge", "execute", "executealways") and len(entry.sources) > 1:
        problems.append(f"mode {mode} takes one src; split the entry")
    if mode == "merge" and dest not in MERGE_TARGETS:
        targets = ", ".join(sorted(MERGE_TARGETS))
        problems.append(
            f"mode merge only works on {targets}; got '{dest}' (use append for other files)"
        )
    if mode in ("append", "merge") and dest.endswith("/"):
        problems.append(f"mode {mode} needs a file dest, not a directory")
    if entry.nodes is not None and not NODES_RE.match(entry.nodes):
        problems.append(f"nodes '{entry.nodes}' is not a noderange (no spaces or parentheses)")
    return problems


def _sync_source_problems(docs: SiteDocs, entry: SyncEntry) -> list[str]:
    """Every source (and an execute entry's .post script) must exist under synclists/."""
    needed = list(entry.sources)
    if entry.mode == "execute":
        needed += [f"{s}.post" for s in entry.sources]
    problems = []
    for src in needed:
        if not _safe_rel(src):
            problems.append(f"src '{src}' must be a path relative to synclists/")
        elif not docs.source.is_file(f"synclists/{src}"):
            why = ""
            if src.endswith(".post") and entry.mode == "execute":
                why = " (mode execute runs <src>.post on the node)"
            problems.append(f"'synclists/{src}' does not exist{why}; create it or fix the path")
    return problems


def _check_litefile_entries(loaded: LoadedProfile) -> list[Problem]:
    problems = []
    for path, option in loaded.model.litefile.items():
        pos = loaded.pos("litefile", path)
        if not path.startswith("/"):
            problems.append(Problem(pos, f"litefile: '{path}' must be an absolute path"))
        if option is not None and option not in LITEFILE_OPTIONS:
            problems.append(
                Problem(
                    pos,
                    f"litefile: '{option}' is not a litefile option; use one of {', '.join(sorted(LITEFILE_OPTIONS))}",
                )
            )
    return problems


def check_litefile_nesting(merge: ChainMerge, image: str) -> list[Problem]:
    """xCAT's nesting rules on an image's merged litefile rows."""
    problems = []
    rows = merge.litefile
    for parent in sorted(p for p in rows if p.endswith("/")):
        popt = rows[parent].value
        for child in sorted(p for p in rows if p != parent and p.startswith(parent)):
            copt = rows[child].value
            why = _nesting_violation(popt, copt)
            if why:
                problems.append(
                    Problem(
                        rows[child].origin.pos,
                        f"image '{image}': litefile '{child}' ({copt}) under '{parent}' ({popt}): {why}",
                    )
                )
    return problems


def _nesting_violation(parent: str, child: str) -> str:
    popts = set(parent.split(","))
    copts = set(child.split(","))
    if popts & {"ro", "con"}:
        return "nothing may be listed under a ro or con directory"
    if "link" in popts and "link" not in copts:
        return "children of a link directory must be link entries"
    if "persistent" in popts and "persistent" not in copts:
        return "children of a persistent directory must be persistent"
    return ""


def check_rendered(docs: SiteDocs, rendered: RenderedDirector) -> list[Problem]:
    """Checks that need final attributes: rootimgdir clashes, statelite consistency."""
    problems = []
    seen: dict[str, str] = {}
    site = docs.site
    for name, image in sorted(rendered.images.items()):
        pos = site.pos("images", name)
        root = posixpath.normpath(image.rootimgdir)
        if not image.rootimgdir.startswith("/"):
            problems.append(
                Problem(
                    pos, f"image '{name}': rootimgdir '{image.rootimgdir}' must be an absolute path"
                )
            )
        if root in seen:
            problems.append(
                Problem(
                    pos,
                    f"images '{seen[root]}' and '{name}' share rootimgdir {root} on director '{rendered.name}'; set attributes.rootimgdir on one of them",
                )
            )
        seen.setdefault(root, name)
        merge = image.resolved.merge
        if image.statelite:
            problems += check_litefile_nesting(merge, name)
            if merge.sync:
                problems.append(
                    Problem(
                        pos,
                        f"image '{name}' is statelite: xCAT does not apply synclists to statelite images",
                        "warning",
                    )
                )
        elif merge.litefile:
            problems.append(
                Problem(
                    pos,
                    f"image '{name}' is not statelite (provmethod {image.attributes.get('provmethod')}): its litefile entries are ignored",
                    "warning",
                )
            )
    return problems
