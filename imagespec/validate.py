"""Every check a careful admin wants before anything touches a director.

Pure: takes loaded documents and resolutions, returns problems.  Errors and
warnings are both collected, so one run reports everything.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Callable, Optional

from . import noderange, safe
from .digest import BUILD_ATTRIBUTES, PACK_ATTRIBUTES
from .errors import Pos, Problem, choice_list, suggest, visible
from .load import LoadedProfile, SiteDocs
from .model import (
    LITEFILE_OPTIONS,
    MERGE_TARGETS,
    Distro,
    DistroOverride,
    SyncEntry,
    variant_osimage,
)
from .render.kinds import COMPUTED_ATTRIBUTES, SCRIPTS
from .render.layout import generation_home
from .render.tree import RenderedDirector, RenderedImage, builtin_postscripts
from .resolve import Entry, SyncItem, is_directive, sync_path

PROVMETHODS = ("netboot", "statelite")
# A stanza named default-<type> sets defaults for every later object of that type and
# is never created itself (perl-xCAT/xCAT/DBobjUtils.pm:1739-1745, readFileInput).
# Other names containing "default" are ordinary objects since xCAT 2.14.
DEFAULTS_STANZA_RE = re.compile(r"^default-([^-]+)$")
# The xcat builder builds image X through a temporary osimage X-imagespec-staging.
STAGING_SUFFIX = "-imagespec-staging"
ATTRIBUTE_NAME_RE = re.compile(r"^[a-z][A-Za-z0-9_]*$")
# Attributes holding free text, never passed to a shell by xCAT.
FREE_TEXT_ATTRIBUTES = frozenset({"description", "usercomment"})
# Paths of an image root that every image has; an exclude pattern matching all
# of them empties the packed image.
ESSENTIAL_PATHS = ("./etc/passwd", "./usr/bin/sh", "./usr/lib/systemd/systemd", "./etc", "./usr")
WHY_SHELL = "xCAT passes it to a shell unquoted"

# The attributes of an osimage object of imagetype linux in xCAT 2.19: the osimage
# and linuximage parts of `defspec{osimage}` (perl-xCAT/xCAT/Schema.pm:3183-3378, and
# environvar at 3515).  These are object attributes, not table columns: the tables'
# `comments` and `disable` columns are not attributes (linuximage.comments is
# reached as `usercomment`, Schema.pm:3374-3376).  mkdef skips any other name with
# an error (DBobjectdefs.pm:1658-1665).
OSIMAGE_ATTRIBUTES = frozenset(
    [
        "imagename",
        "groups",
        "profile",
        "imagetype",
        "description",
        "provmethod",
        "rootfstype",
        "nfsrootopts",
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


# What a boot variant may set: attributes only nodeset and the boot loader read, so that
# the variants of an image share its build and its pack.  The build and pack stages read
# none of them: genimage takes osvers, osarch, profile, provmethod, environvar and the
# linuximage pkglist, pkgdir, otherpkglist, otherpkgdir, postinstall, rootimgdir,
# kerneldir, krpmver, nodebootif, otherifce, kernelver, netdrivers, permission,
# driverupdatesrc (xCAT-server/lib/xcat/plugins/genimage.pm:142,148); packimage osvers,
# osarch, profile, provmethod, synclists, environvar, exlist, rootimgdir
# (packimage.pm:154,159); liteimg rootfstype, osvers, osarch, profile, provmethod,
# exlist, rootimgdir (statelite.pm:130,148).  nodebootif is not here: genimage builds
# its driver into the initrd (genimage.pm:148,214-219).
VARIANT_ATTRIBUTES = frozenset(
    {
        # appended to the kernel command line at nodeset by the boot loader plugin, from
        # the linuximage row of the node's provmethod (xnba.pm:826-829 read, 155,191 use;
        # grub2.pm:770-773 read, 138-148 use)
        "addkcmdline",
        # mknetboot: crashkernel= and dump= on the command line (anaconda.pm:298,355-356,798-820)
        "crashkernelsize",
        "dump",
        # mknetboot: the statelite NFS root's mount options (anaconda.pm:287,348,641)
        "nfsrootopts",
        # mknetboot: PARTITION_RH / PARTITION_DOMOUNT_RH on the command line (anaconda.pm:298,313-334,836-841)
        "partitionfile",
        # only where it leaves the pack alone: see variant_rootfstype_problem
        "rootfstype",
        # informational (perl-xCAT/xCAT/Schema.pm:3196-3199, 3374-3376)
        "description",
        "usercomment",
    }
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
    problems += _check_image_directors(docs)
    problems += _check_variants(docs)
    problems += _check_node_maps(docs)
    problems += _check_remote_dirs(docs)
    problems += _check_site_words(docs)
    if not site.model.directors:
        problems.append(
            Problem(site.pos("directors"), "no directors defined; add one under 'directors:'")
        )
    return problems


def _check_node_maps(docs: SiteDocs) -> list[Problem]:
    """A director's `nodes:`: safe noderanges, images (or their boot variants) it builds,
    no node named twice."""
    site = docs.site
    images = site.model.images
    variants = {variant_osimage(i, v): i for i, img in images.items() for v in img.variants}
    problems = []
    for dname, director in site.model.directors.items():
        seen: list[tuple[str, noderange.Expanded]] = []
        for key, image in director.nodes.items():
            pos = site.pos("directors", dname, "nodes", key)
            if not safe.NODES_KEY_RE.match(key):
                problems.append(
                    Problem(
                        pos,
                        f"director '{dname}': '{key}' is not a noderange imagespec passes to"
                        " xCAT; use node names, ranges (cn[001-128]) and groups, comma"
                        " separated",
                    )
                )
                continue
            owner = image if image in images else variants.get(image)
            if owner is None:
                problems.append(
                    Problem(
                        pos,
                        f"director '{dname}': nodes '{key}' boot unknown image '{image}'"
                        f"{suggest(image, [*images, *variants])}",
                    )
                )
            elif not images[owner].on(dname):
                what = f"image '{image}',"
                if owner != image:
                    what = f"'{image}', a variant of image '{owner}',"
                problems.append(
                    Problem(
                        pos,
                        f"director '{dname}': nodes '{key}' boot {what} which"
                        f" director '{dname}' does not build (its directors:"
                        f" {', '.join(images[owner].directors or [])})",
                    )
                )
            try:
                expanded = noderange.expand(key)
            except noderange.NodeRangeError as exc:
                problems.append(Problem(pos, f"director '{dname}': nodes '{key}': {exc}"))
                continue
            for other, other_nodes in seen:
                both = noderange.overlap(expanded, other_nodes)
                if both:
                    some = ", ".join(sorted(both)[:3]) + (", ..." if len(both) > 3 else "")
                    problems.append(
                        Problem(
                            pos,
                            f"director '{dname}': nodes '{key}' overlap '{other}' ({some});"
                            " a node boots one image",
                        )
                    )
            seen.append((key, expanded))
        for index, group in enumerate(director.rollout.reserved):
            if not safe.OBJECT_NAME_RE.match(group):
                problems.append(
                    Problem(
                        site.pos("directors", dname, "rollout", "reserved", index),
                        f"director '{dname}': rollout reserved group '{visible(group)}' is not an"
                        " xCAT group name (letters, digits, '_', '.', '-')",
                    )
                )
    return problems


def _check_variants(docs: SiteDocs) -> list[Problem]:
    """Boot variants: names that make an osimage of their own, and only boot attributes."""
    problems = []
    for iname, image in docs.site.model.images.items():
        for vname, variant in image.variants.items():
            problems += _variant_name_problems(docs, iname, vname)
            where = f"image '{iname}' variant '{vname}'"
            at = docs.site.at("images", iname, "variants", vname, "attributes")
            for name in variant.attributes:
                if name not in VARIANT_ATTRIBUTES:
                    problems.append(
                        Problem(
                            at(name),
                            f"{where}: '{name}' {_not_a_boot_attribute(name)}; a variant may"
                            f" set only {', '.join(sorted(VARIANT_ATTRIBUTES))}: remove it, or"
                            " give those nodes an image of their own",
                        )
                    )
            allowed = {n: v for n, v in variant.attributes.items() if n in VARIANT_ATTRIBUTES}
            problems += _check_attrs(allowed, at, where)
    return problems + _osimage_clashes(docs)


def _not_a_boot_attribute(name: str) -> str:
    """Why an attribute cannot differ between an image and its variants."""
    if name == "objtype":
        return "is always osimage"
    if name in COMPUTED_ATTRIBUTES:
        return "is computed by imagespec from the image's profile and distro"
    if name in BUILD_ATTRIBUTES:
        return "is read by genimage (genimage.pm:142,148), and a variant shares its image's build"
    if name in PACK_ATTRIBUTES:
        return "is read by packimage and liteimg (packimage.pm:154, statelite.pm:130), and a variant shares its image's pack"
    if name not in OSIMAGE_ATTRIBUTES:
        return "is not an osimage attribute xCAT knows"
    return "is not an attribute nodeset reads for a netboot or statelite node"


def _variant_name_problems(docs: SiteDocs, image: str, variant: str) -> list[Problem]:
    """A variant's name and its osimage `<image>-<variant>`, which xCAT must take as a name."""
    pos = docs.site.pos("images", image, "variants", variant)
    full = variant_osimage(image, variant)
    messages = []
    if not safe.VARIANT_NAME_RE.match(variant) or not safe.OBJECT_NAME_RE.match(full):
        messages.append(
            f"variant name '{variant}' may only use lowercase letters, digits and '-',"
            " starting with a letter or digit; rename it"
        )
    elif DEFAULTS_STANZA_RE.match(full):
        messages.append(
            f"its osimage '{full}' is read by xCAT's stanza reader as the defaults for objects"
            " of a type, not as an osimage, so mkdef never creates it; rename the variant"
        )
    if full.endswith(STAGING_SUFFIX):
        messages.append(
            f"its osimage '{full}' ends in '{STAGING_SUFFIX}', which the xcat builder uses for"
            " the temporary osimage each build goes through; rename the variant"
        )
    return [Problem(pos, f"image '{image}' variant '{variant}': {m}") for m in messages]


def _osimage_clashes(docs: SiteDocs) -> list[Problem]:
    """A variant's osimage must not be named like an image or another image's variant:
    both would be one xCAT object, defined twice and removed with either."""
    site = docs.site
    images = site.model.images
    taken: dict[str, str] = {name: f"image '{name}'" for name in images}
    problems = []
    for iname, image in images.items():
        for vname in image.variants:
            full = variant_osimage(iname, vname)
            if full in taken:
                problems.append(
                    Problem(
                        site.pos("images", iname, "variants", vname),
                        f"image '{iname}' variant '{vname}': its osimage '{full}' is the name"
                        f" of {taken[full]}; rename the variant (one xCAT object cannot be both)",
                    )
                )
                continue
            taken[full] = f"variant '{vname}' of image '{iname}'"
    return problems


def _check_image_directors(docs: SiteDocs) -> list[Problem]:
    """`directors:` of an image names directors of the site, at least one."""
    site = docs.site
    known = list(site.model.directors)
    problems = []
    for iname, image in site.model.images.items():
        if image.directors is None:
            continue
        if not image.directors:
            problems.append(
                Problem(
                    site.pos("images", iname, "directors"),
                    f"image '{iname}' has an empty 'directors' list, so no director builds it;"
                    " name one, or remove the key for every director",
                )
            )
        for index, name in enumerate(image.directors):
            if name not in site.model.directors:
                problems.append(
                    Problem(
                        site.pos("images", iname, "directors", index),
                        f"image '{iname}': unknown director '{name}'{suggest(name, known)}",
                    )
                )
    return problems


def _check_image_names(docs: SiteDocs) -> list[Problem]:
    """Names xCAT would refuse, or silently treat as defaults."""
    site = docs.site
    problems = []
    for name in site.model.images:
        pos = site.pos("images", name)
        special = DEFAULTS_STANZA_RE.match(name)
        if special:
            problems.append(
                Problem(
                    pos,
                    f"image name '{name}' is read by xCAT's stanza reader as the defaults for objects of type '{special.group(1)}', not as an osimage, so mkdef never creates it; rename it",
                )
            )
        if not safe.OBJECT_NAME_RE.match(name):
            problems.append(
                Problem(
                    pos,
                    f"image name '{name}' would be rejected by xCAT; use letters, digits, '_', '.', '-'",
                )
            )
        if name.endswith(STAGING_SUFFIX):
            problems.append(
                Problem(
                    pos,
                    f"image name '{name}' ends in '{STAGING_SUFFIX}', which the xcat builder uses for the temporary osimage each build goes through; rename it",
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
        for oname, override in director.distros.items():
            where = site.at("directors", dname, "distros", oname, "attributes")
            problems += _check_attrs(override.attributes, where, f"director '{dname}'")
    default = site.model.default_director
    if default is not None and default not in site.model.directors:
        names = list(site.model.directors)
        problems.append(
            Problem(
                site.pos("default_director"),
                f"default_director '{default}' is not a director"
                f"{suggest(default, names)} (directors: {choice_list(names)})",
            )
        )
    return problems


def _check_site_words(docs: SiteDocs) -> list[Problem]:
    """Site values that become path segments, ssh destinations, git refs or repository URLs."""
    site, model = docs.site, docs.site.model
    problems = []
    if not safe.is_name(model.site):
        problems.append(Problem(site.pos("site"), f"site name '{model.site}': {_NAME_RULE}"))
    for dname, distro in model.distros.items():
        if not safe.is_name(dname):
            problems.append(
                Problem(site.pos("distros", dname), f"distro name '{dname}': {_NAME_RULE}")
            )
        problems += _check_distro_words(docs, ("distros", dname), distro)
    for dname, director in model.directors.items():
        problems += _check_director_words(docs, dname)
        for oname, override in director.distros.items():
            problems += _check_distro_words(docs, ("directors", dname, "distros", oname), override)
    return problems


_NAME_RULE = "use letters, digits, '_', '.', '+', '-' (no '/', and no '.' or '-' first): it becomes a path segment and an xCAT name"


def _check_director_words(docs: SiteDocs, dname: str) -> list[Problem]:
    site = docs.site
    director = site.model.directors[dname]
    at = site.at("directors", dname)
    problems = []
    if not safe.is_name(dname):
        problems.append(
            Problem(site.pos("directors", dname), f"director name '{dname}': {_NAME_RULE}")
        )
    if director.host is not None and not safe.is_host(director.host):
        problems.append(
            Problem(
                at("host"),
                f"director '{dname}': host '{director.host}' is not an ssh destination; give a host name, user@host or an ssh config alias (no '-' first, no spaces)",
            )
        )
    if director.branch is not None and not safe.is_branch(director.branch):
        problems.append(
            Problem(
                at("branch"),
                f"director '{dname}': branch '{director.branch}' is not a plain git branch name (no '-' first, no '..', spaces or shell characters)",
            )
        )
    root = director.install_root
    stripped = root.rstrip("/")
    if stripped != "." and not (safe.is_abs_path(stripped or "/") or safe.is_rel_path(stripped)):
        problems.append(
            Problem(
                at("install_root"),
                f"director '{dname}': install_root '{root}' must be a normalised path of letters, digits and . _ + @ = : , ~ % - (no '..', no spaces: {WHY_SHELL})",
            )
        )
    if director.prefix.strip("/") and not safe.is_rel_path(director.prefix.strip("/")):
        problems.append(
            Problem(
                at("prefix"),
                f"director '{dname}': prefix '{director.prefix}' must be a relative path of safe segments (no '..', no '-' first, no spaces)",
            )
        )
    return problems


def _check_distro_words(
    docs: SiteDocs, key: tuple[str, ...], distro: Distro | DistroOverride
) -> list[Problem]:
    """osvers, osarch and family become path segments; package dirs reach dnf's configuration."""
    at = docs.site.at(*key)
    problems = []
    for name in ("osvers", "osarch", "family"):
        value = getattr(distro, name)
        if value is not None and not safe.is_name(value):
            problems.append(Problem(at(name), f"{name} '{value}': {_NAME_RULE}"))
    for name in ("pkgdir", "otherpkgdir"):
        value = getattr(distro, name)
        items = value.split(",") if isinstance(value, str) else list(value or [])
        for item in items:
            if not safe.is_repo_location(item.strip()):
                problems.append(
                    Problem(
                        at(name),
                        f"{name} '{item.strip()}' must be a URL (http, https, ftp, file) or a normalised path, without spaces, quotes, '..' or shell characters: it reaches dnf's configuration and xCAT's shell commands",
                    )
                )
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
                    if not item.startswith("/") and not safe.SCHEME_RE.match(item):
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
        problems += [Problem(pos, f"{where}: {m}") for m in _attribute_problems(name, value)]
        if name == "provmethod" and value is not None and value not in PROVMETHODS:
            problems.append(
                Problem(
                    pos,
                    f"{where}: provmethod '{value}' is not supported{suggest(str(value), PROVMETHODS)} (imagespec builds {' and '.join(PROVMETHODS)} images)",
                )
            )
    return problems


def _attribute_problems(name: str, value: object) -> list[str]:
    """What xCAT would misread or a shell would run: names, quotes, shell characters."""
    if not ATTRIBUTE_NAME_RE.match(name):
        return [
            f"'{name}' is not an attribute name (letters, digits and '_', a lowercase letter first)"
        ]
    if not isinstance(value, str) or not value or value != value.strip() or "\n" in value:
        return []  # empty, or already reported as not one trimmed line
    if value.startswith('"') or value.endswith('"'):
        # DBobjUtils.pm readFileInput strips them: s/^\s*"\s*// and s/\s*"\s*$//.
        return [
            f"attribute '{name}' starts or ends with '\"', which xCAT's stanza reader strips; remove the quotes"
        ]
    if name in FREE_TEXT_ATTRIBUTES:
        return []
    if name == "environvar":
        bad = [pair for pair in value.split(",") if not safe.ENV_PAIR_RE.match(pair)]
        if bad:
            return [
                f"environvar '{bad[0]}' must be NAME=value (comma-separated pairs, values of letters, digits and . : / = @ % + ~ - only): genimage exports them through a shell"
            ]
        return []
    words = value.split(" ") if name == "addkcmdline" else [value]
    bad = [word for word in words if not safe.is_shell_word(word)]
    if bad:
        spaces = " (one space between words)" if name == "addkcmdline" else ""
        return [
            f"attribute '{name}' value '{value}' may only use letters, digits and . , : / = @ % + ~ -{spaces}, with no '-' first: {WHY_SHELL}"
        ]
    return []


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
    for list_field in ("packages", "otherpkgs", "erase", "erase_first"):
        for pos, value, _removal in _entries(loaded, list_field):
            message = _package_problem(list_field, value)
            if message:
                problems.append(Problem(pos, f"{list_field}: {message}"))
    return problems


def _package_problem(list_field: str, value: str) -> str:
    """Why one package-list entry (without its removal '-') is wrong, or ''."""
    if value.startswith("#INCLUDE:"):
        return "#INCLUDE: is not supported; share entries through 'inherits' instead"
    if is_directive(value):
        if list_field in ("erase", "erase_first"):
            return f"'{value}' is a directive; {list_field} takes package names"
        if value.startswith("#ENV:") and not safe.ENV_DIRECTIVE_RE.match(value):
            return f"'{value}' must read #ENV:NAME=value# with a value of letters, digits and . : / = @ % + ~ - only: xCAT splits the list on ',' and runs the pair in a shell"
        return ""
    if not value:
        return "an empty entry; remove it"
    if value == "-":
        return "'-' names no package; remove it"
    if value.startswith("-"):
        return f"'-{value}' is not a package; to erase a package list it under 'erase:'"
    if "," in value or "#" in value or any(c.isspace() for c in value):
        what = "a comma (xCAT would split it)" if "," in value else "spaces or '#'"
        return f"'{value}' contains {what}; give one package per entry"
    if list_field != "otherpkgs" and "/" in value:
        return f"'{value}': xCAT drops the directory part here; subdirectories belong in otherpkgs"
    directory, _, name = value.rpartition("/")
    if not safe.PACKAGE_RE.match(name) or (directory and not safe.is_rel_path(directory)):
        return (
            f"'{value}' is not a package name: genimage puts package names unquoted into a shell"
            " command (rh/genimage: system(\"$envlist $yumcmd install $pkgnames\")), where '*'"
            " matches files and ';' runs commands; use letters, digits and . _ + - : ~ ^ (or @group)"
        )
    return ""


def _check_excludes(loaded: LoadedProfile) -> list[Problem]:
    problems = []
    for pos, value, removal in _entries(loaded, "exclude"):
        pattern = value[1:] if value.startswith("+") else value
        problems += [Problem(pos, f"exclude: {m}") for m in _exclude_problems(value, removal)]
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
    return problems


def _exclude_problems(value: str, removal: bool) -> list[str]:
    """Characters packimage's shell would misread, and a pattern that empties the image."""
    if "#" in value or any(c.isspace() for c in value):
        return [f"'{value}' may not contain spaces or '#'"]
    pattern = value[1:] if value.startswith("+") else value
    if not safe.EXCLUDE_RE.match(pattern):
        return [
            f"'{value}' may only use letters, digits, the globs * ? [ ] and . , : / = @ % + ~ -:"
            " packimage wraps each pattern in single quotes for a shell (packimage.pm: '!' -path '...')"
        ]
    if (
        not removal
        and not value.startswith("+")
        and all(fnmatch.fnmatchcase(path, pattern) for path in ESSENTIAL_PATHS)
    ):
        return [
            f"'{value}' matches everything in the image ({', '.join(ESSENTIAL_PATHS[:2])} ...):"
            " the packed image would be empty; exclude something narrower"
        ]
    return []


def _check_scripts(
    docs: SiteDocs, loaded: LoadedProfile, builtins: frozenset[str]
) -> list[Problem]:
    problems = []
    for kind in SCRIPTS:
        list_field, folder = kind.field, kind.folder
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
            problems += [
                Problem(pos, f"{list_field}: argument '{arg}' {_ARG_RULE}")
                for arg in value.split()[1:]
                if not safe.SHELL_WORD_RE.match(arg)
            ]
            if not safe.is_rel_path(script):
                problems.append(
                    Problem(
                        pos,
                        f"{list_field}: '{script}' must be a path relative to {folder}/ of letters, digits and . _ + @ = : , ~ % - (no '..', no '-' first)",
                    )
                )
            elif not docs.source.is_file(f"{folder}/{script}") and not (
                kind.builtins and script in builtins
            ):
                hint = (
                    " (not an xCAT built-in either; add it to builtin_postscripts if it is one)"
                    if kind.builtins
                    else ""
                )
                problems.append(
                    Problem(
                        pos,
                        f"{list_field}: '{folder}/{script}' does not exist{hint}; create it or fix the name",
                    )
                )
    return problems


_ARG_RULE = (
    "may only use letters, digits and . , : / = @ % + ~ - (no quotes, '$' or backticks):"
    " script arguments reach a shell on the director or the node"
)


def _check_sync(docs: SiteDocs, loaded: LoadedProfile) -> list[Problem]:
    problems = []
    for index, entry in enumerate(loaded.model.sync):
        pos = loaded.pos("sync", index)
        messages = _sync_dest_problems(entry.dest) + _sync_path_clashes(entry)
        if not entry.drop:
            messages += _sync_mode_problems(entry) + _sync_source_problems(docs, entry)
        else:
            messages += [m for src in entry.sources if (m := _src_path_problem(src))]
        problems += [Problem(pos, f"sync: {message}") for message in messages]
    return problems


def _sync_dest_problems(dest: str) -> list[str]:
    problems = []
    if not dest.startswith("/"):
        problems.append(f"dest '{dest}' must be an absolute path on the node")
    if any(c.isspace() for c in dest) or ";" in dest:
        problems.append(f"dest '{dest}' may not contain spaces or ';' (xCAT strips them)")
    elif dest.startswith("/") and not safe.is_abs_path(dest):
        problems.append(
            f"dest '{dest}' must be a normalised absolute path inside the image: no '..', '.' or"
            " empty segments, no segment starting with '-', only letters, digits and . _ + @ = : , ~ % -"
        )
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
    if mode in ("append", "merge") and entry.nodes is not None:
        problems.append(_CLAUSE_WITH_NODES[mode])
    if entry.nodes is not None and not safe.NODERANGE_RE.match(entry.nodes):
        problems.append(f"nodes '{entry.nodes}' is not a noderange (no spaces or parentheses)")
    return problems


# xCAT's APPEND: and MERGE: clause lines take no noderange: the whole line is queued
# for every node of the sync (perl-xCAT/xCAT/DSHCLI.pm:5188-5195 and 5211-5218, with
# build_append_rsync/build_merge_rsync at 5429-5445 and 5546-5563 looping over all
# nodes), and the text after '->', noderange included, becomes the target.
_CLAUSE_WITH_NODES = {
    "append": "mode append cannot be limited with 'nodes': xCAT appends on every node of"
    " the image and passes '(nodes) dest' to its append script as the file to append to"
    " (DSHCLI.pm:6060-6095); remove 'nodes', or give those nodes an image of their own",
    "merge": "mode merge cannot be limited with 'nodes': xCAT takes '(nodes) dest' for the"
    " file to merge and refuses it for every node (DSHCLI.pm:6201-6212); remove 'nodes',"
    " or give those nodes an image of their own",
}


def _src_path_problem(src: str) -> str:
    if safe.is_rel_path(src):
        return ""
    return f"src '{src}' must be a path relative to synclists/ (no '..', no '-' first, only letters, digits and . _ + @ = : , ~ % -)"


def _director_file_problem(src: str) -> str:
    return (
        f"src '{src}' is not a file path imagespec reads on the director: write an absolute,"
        " normalised path of a file (no '..', '.', '//' or trailing '/'), with only letters,"
        " digits and / . _ + @ = : ~ % - (no spaces, '->', ',', ';', '#', '(', ')', '$' or"
        " '-' first in a segment)"
    )


def _sync_path_clashes(entry: SyncEntry) -> list[str]:
    """Two sources of one entry with the same file name write the same path of a
    directory dest; the synclist could not say which one the image gets."""
    seen: dict[str, str] = {}
    problems = []
    for src in entry.sources:
        path = sync_path(entry.dest, src)
        if path in seen and entry.dest.endswith("/"):
            problems.append(
                f"'{seen[path]}' and '{src}' would both be written to {path}; keep one of them, or sync one to a path of its own in another entry"
            )
        seen.setdefault(path, src)
    return problems


def _sync_source_problems(docs: SiteDocs, entry: SyncEntry) -> list[str]:
    """Every source (and an execute entry's .post script) must exist under synclists/;
    a director file is never looked up there (nor anywhere: it is not in git)."""
    needed = list(entry.sources)
    if entry.mode == "execute":
        needed += [f"{s}.post" for s in entry.sources]
    if entry.from_director:
        return [_director_file_problem(src) for src in needed if not safe.is_director_file(src)]
    problems = []
    for src in needed:
        if _src_path_problem(src):
            problems.append(_src_path_problem(src))
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
        elif not safe.is_abs_path(path):
            problems.append(
                Problem(
                    pos,
                    f"litefile: '{path}' must be a normalised absolute path inside the image (no '..', '.' or empty segments, no '-' first, only letters, digits and . _ + @ = : , ~ % -)",
                )
            )
        if option is not None and option not in LITEFILE_OPTIONS:
            problems.append(
                Problem(
                    pos,
                    f"litefile: '{option}' is not a litefile option; use one of {', '.join(sorted(LITEFILE_OPTIONS))}",
                )
            )
    return problems


# ---------------------------------------------------------------- litefile rows as liteimg sees them
#
# liteimg checks an image's rows before it changes the root (statelite.pm, process_request
# of liteimg, lines 269-352), but only after genimage has run: everything it refuses is
# checked here first, on the rows it really gets.

MTAB = "/etc/mtab"


def liteimg_options(rows: Mapping[str, Entry]) -> dict[str, str]:
    """The image's rows as liteimg checks them.

    ilitefile always lists /etc/mtab as tmpfs,rw, whatever the table says, and adds it
    when absent (xCAT-server/lib/xcat/plugins/litetree.pm:395-401, 414-417); liteimg then
    rewrites tmpfs,rw to link before any check (statelite.pm:277-280).
    """
    options = {path: entry.value for path, entry in rows.items()}
    options[MTAB] = "tmpfs,rw"
    return {path: "link" if o == "tmpfs,rw" else o for path, o in options.items()}


def liteimg_parent(path: str, paths: Collection[str]) -> Optional[str]:
    """The row liteimg pairs with `path` as its parent (parseLiteFiles, statelite.pm:729-744).

    It walks up the path's directories and stops at the first one that exactly one
    listed row ends with: the nearest listed ancestor, or a row that only ends the
    same way ('/var/lib/' for '/lib/x'; itself for '/a/a/').  None: no parent.
    """
    parent = posixpath.dirname(path.rstrip("/"))
    while parent != "/":
        suffix = parent.rstrip("/") + "/"
        found = [p for p in paths if p.endswith(suffix)]
        if len(found) == 1:
            return found[0]
        parent = posixpath.dirname(suffix.rstrip("/"))
    return None


def liteimg_children(options: Mapping[str, str]) -> dict[str, list[str]]:
    """Parent -> the rows liteimg pairs with it, for parents with rows under them.

    Rows are taken in ilitefile's order (sorted, litetree.pm:257); a row that is
    already some row's parent is not looked at again (statelite.pm:731), so its own
    parent is never checked.
    """
    pairs: dict[str, list[str]] = {}
    for path in sorted(options):
        if path in pairs:
            continue
        parent = liteimg_parent(path, options)
        if parent is None:
            pairs[path] = []
        else:
            pairs.setdefault(parent, []).append(path)
    return {parent: children for parent, children in pairs.items() if children}


def liteimg_refusal(parent: str, child: str) -> str:
    """Why liteimg refuses `child` (an option) under `parent` (an option), or ''.

    statelite.pm:332-341 would also refuse a link row under a directory that is not
    link, but it compares the path with `!=` (numbers), so the rule never fires and is
    not reproduced.
    """
    if parent.endswith(("ro", "con")):
        return "liteimg refuses any row under a ro or con directory (statelite.pm:315)"
    if "link" in parent and child == "link,ro":
        return "liteimg refuses link,ro under a link directory (statelite.pm:323)"
    if "link" in parent and "link" not in child:
        return "under a link directory liteimg allows only link rows (statelite.pm:327)"
    if "persistent" in parent and "persistent" not in child:
        return "under a persistent directory liteimg allows only persistent rows (statelite.pm:343)"
    return ""


def check_litefile(rows: Mapping[str, Entry], image: str, pos: Pos) -> list[Problem]:
    """Every check liteimg makes on an image's rows before it touches the root."""
    options = liteimg_options(rows)
    problems = []
    if MTAB in rows and rows[MTAB].value not in ("tmpfs,rw", "link"):
        problems.append(_mtab_ignored(rows[MTAB], image))
    for path in sorted(rows):
        if "con" in options[path] and path.endswith("/"):
            problems.append(
                Problem(
                    rows[path].origin.pos,
                    f"image '{image}': litefile '{path}' ({rows[path].value}) is a directory, and liteimg refuses con on a directory (statelite.pm:296); give it another option or list its files",
                )
            )
    for parent, children in sorted(liteimg_children(options).items()):
        for child in children:
            why = liteimg_refusal(options[parent], options[child])
            if why:
                where = rows[child] if child in rows else rows.get(parent)
                problems.append(
                    Problem(
                        where.origin.pos if where else pos,
                        _nesting_message(image, rows, parent, child, why),
                    )
                )
    return problems


def _shown(rows: Mapping[str, Entry], path: str) -> str:
    """A row's option as written, and what liteimg reads when that differs."""
    if path == MTAB:
        return "link, a row xCAT adds to every statelite image"
    option = rows[path].value
    return "tmpfs,rw, which liteimg reads as link" if option == "tmpfs,rw" else option


def _nesting_message(
    image: str, rows: Mapping[str, Entry], parent: str, child: str, why: str
) -> str:
    pairing = (
        ""
        if child != parent and child.startswith(parent)
        else f" (liteimg takes '{parent}' for the parent of '{child}' because the path ends the same way, statelite.pm:739)"
    )
    fix = f"change '{parent}'" if child in (MTAB, parent) else f"change '{child}' or '{parent}'"
    return (
        f"image '{image}': litefile '{child}' ({_shown(rows, child)}) under '{parent}'"
        f" ({_shown(rows, parent)}): {why}{pairing}; {fix}"
    )


def _mtab_ignored(entry: Entry, image: str) -> Problem:
    return Problem(
        entry.origin.pos,
        f"image '{image}': litefile '{MTAB}' ({entry.value}): xCAT always lists /etc/mtab as tmpfs,rw, read as link (litetree.pm:395-401), whatever the option; write link",
        "warning",
    )


def _rootimgdir_problems(rendered: RenderedDirector, rootimgdir: str) -> list[str]:
    """A rootimgdir must be a directory of its own below install_root, clear of imagespec's files.

    The native builder replaces rootimgdir and keeps generations beside it, and
    xCAT's genimage writes into it: anywhere else it would overwrite or delete
    files the image does not own.
    """
    root = rootimgdir.rstrip("/")
    install_root = rendered.layout.install_root
    if not safe.is_abs_path(root):
        return [
            f"rootimgdir '{rootimgdir}' must be a normalised absolute path of letters, digits and . _ + @ = : , ~ % - (no '..', no spaces: {WHY_SHELL})"
        ]
    if root == install_root or not safe.is_under(root, install_root):
        return [
            f"rootimgdir '{rootimgdir}' must be a directory below the director's install_root {install_root}"
        ]
    for reserved in rendered.layout.reserved_dirs():
        if safe.is_under(root, reserved) or safe.is_under(reserved, root):
            return [
                f"rootimgdir '{rootimgdir}' overlaps {reserved}, where imagespec keeps the files it syncs and its state; choose another directory"
            ]
    return []


def _nested_image_dirs(docs: SiteDocs, rendered: RenderedDirector) -> list[Problem]:
    """No image's rootimgdir may lie in (or hold) another image's rootimgdir or generation store."""
    owners: dict[str, tuple[str, str]] = {}
    for name, image in sorted(rendered.images.items()):
        root = posixpath.normpath(image.rootimgdir)
        owners.setdefault(root, (name, "rootimgdir"))
        owners.setdefault(generation_home(root), (name, "generation store"))
    problems = []
    for path, (name, what) in sorted(owners.items()):
        for parent in _parents(path):
            other, other_what = owners.get(parent, (name, ""))
            if other != name:
                problems.append(
                    Problem(
                        docs.site.pos("images", name),
                        f"image '{name}': its {what} {path} lies inside image '{other}''s {other_what} {parent} on director '{rendered.name}'; give each image a rootimgdir of its own",
                    )
                )
    return problems


def _parents(path: str) -> list[str]:
    found = []
    while path not in ("/", ""):
        path = posixpath.dirname(path)
        found.append(path)
    return found


def _director_files_in_tree(rendered: RenderedDirector, items: Iterable[SyncItem]) -> list[Problem]:
    """A director file may not lie where imagespec writes (written_dirs): that is imagespec's
    own output, which the apply replaces, so the image would get last apply's copy of it."""
    problems = []
    for item in items:
        for src in item.copied_sources if item.director else ():
            inside = [d for d in rendered.layout.written_dirs() if safe.is_under(src, d)]
            if inside:
                problems.append(
                    Problem(
                        item.origin.pos,
                        f"sync: director file '{src}' lies in {inside[0]}, where imagespec"
                        f" writes its own files on director '{rendered.name}'; keep the file"
                        " elsewhere on the director (e.g. /etc or /root/secrets)",
                    )
                )
    return problems


def _statelite_sync_problems(items: Iterable[SyncItem], image: str) -> list[Problem]:
    """Sync entries that never take effect on a statelite image's nodes (warnings).

    liteimg copies the plain entries without a noderange into the root
    (statelite.pm:234-244 runs `xdcp -i`, whose rsync_to_image skips noderange lines
    and stops at the first clause header, DSHCLI.pm:4999-5012).  At boot the syncfiles
    postscript exits at once on a statelite node (xCAT/postscripts/syncfiles:16-21), so
    entries limited to nodes and the APPEND:, MERGE: and EXECUTEALWAYS: clauses never
    apply there; only an admin's `updatenode -F` would.
    """
    problems = []
    for item in items:
        what = _lost_at_boot(item)
        if what:
            problems.append(
                Problem(
                    item.origin.pos,
                    f"image '{image}' is statelite: the sync entry for '{item.dest}' {what}:"
                    " liteimg copies only plain entries without nodes into the root, and the"
                    " syncfiles postscript does nothing on statelite nodes; drop it in the"
                    " image's profile, or give those nodes a netboot image",
                    "warning",
                )
            )
    return problems


def _lost_at_boot(item: SyncItem) -> str:
    """What of a sync entry a statelite node never gets, or ''."""
    if item.nodes is not None:
        return f"(nodes {item.nodes}) never reaches its nodes"
    if item.mode in ("append", "merge"):
        return f"(mode {item.mode}) is never applied"
    if item.mode == "executealways":
        return "(mode executealways) is copied into the root but never run"
    return ""


def _variant_rootfstype_problems(docs: SiteDocs, image: RenderedImage) -> list[Problem]:
    """A variant's rootfstype, allowed only where the image's pack already boots it."""
    problems = []
    for variant in image.variants.values():
        if "rootfstype" not in variant.settings:
            continue
        value, pos = variant.settings["rootfstype"]
        why = variant_rootfstype_problem(image.statelite, image.attributes.get("rootfstype"), value)
        if why:
            problems.append(
                Problem(pos, f"image '{image.name}' variant '{variant.variant}': {why}")
            )
    return problems


def variant_rootfstype_problem(statelite: bool, own: Optional[str], value: Optional[str]) -> str:
    """Why a variant's rootfstype would need a pack its image does not make, or ''.

    Only statelite nodes read rootfstype: every use in mknetboot is in a statelite
    branch (anaconda.pm:470,532,544,619,685,863) and packimage never reads it
    (packimage.pm:154,159).  liteimg prepares the root the same way for nfs and
    ramdisk and, for ramdisk only, also packs it into rootimg-statelite.gz
    (statelite.pm:484-590).  So an NFS-root variant of a ramdisk image boots the root
    its image's liteimg already prepared; a ramdisk variant of an NFS-root image would
    need an archive that liteimg never made.  Unset means nfs (Schema.pm:789).
    """
    if value is not None and value not in ("nfs", "ramdisk"):
        return f"rootfstype '{value}' is neither nfs nor ramdisk, the values xCAT knows (Schema.pm:789); fix it"
    if not statelite:
        return (
            "rootfstype does nothing for a netboot image: only statelite nodes read it"
            " (anaconda.pm mknetboot), and packimage never does; remove it"
        )
    if (value or "nfs") == "ramdisk" and (own or "nfs") != "ramdisk":
        return (
            "a ramdisk root boots rootimg-statelite.gz, which liteimg packs only when the"
            " image's own rootfstype is ramdisk (statelite.pm:484), so this variant would"
            " change the image's pack; set rootfstype: ramdisk on the image (its variants"
            " may then boot the same root over NFS with rootfstype: nfs), or give those"
            " nodes an image of their own"
        )
    return ""


def check_rendered(docs: SiteDocs, rendered: RenderedDirector) -> list[Problem]:
    """Checks that need final attributes: rootimgdir clashes, statelite consistency."""
    problems = _nested_image_dirs(docs, rendered)
    seen: dict[str, str] = {}
    site = docs.site
    for name, image in sorted(rendered.images.items()):
        pos = site.pos("images", name)
        root = posixpath.normpath(image.rootimgdir)
        if root in seen:
            problems.append(
                Problem(
                    pos,
                    f"images '{seen[root]}' and '{name}' share rootimgdir {root} on director '{rendered.name}'; set attributes.rootimgdir on one of them",
                )
            )
        seen.setdefault(root, name)
        where = image.resolved.attributes.get("rootimgdir")
        problems += [
            Problem(where.origin.pos if where else pos, f"image '{name}': {m}")
            for m in _rootimgdir_problems(rendered, image.rootimgdir)
        ]
        problems += _variant_rootfstype_problems(docs, image)
        merge = image.resolved.merge
        problems += _director_files_in_tree(rendered, merge.sync)
        if image.statelite:
            problems += check_litefile(merge.litefile, name, pos)
            problems += _statelite_sync_problems(merge.sync, name)
        elif merge.litefile:
            problems.append(
                Problem(
                    pos,
                    f"image '{name}' is not statelite (provmethod {image.attributes.get('provmethod')}): its litefile entries are ignored",
                    "warning",
                )
            )
    return problems
