"""The xCAT builder: definitions with mkdef/chdef, builds with genimage, packimage and liteimg.

xCAT builds in place: rh/genimage installs into the existing
`<rootimgdir>/rootimg` and never clears it (it only mkpaths it), and
packimage rewrites the archive nodes boot from.  So imagespec never points
xCAT at the root nodes use.  Each build goes through a staging osimage, a
copy of the image's definition named `<image>-imagespec-staging` whose
rootimgdir is the image's staging directory (`.<base>.imagespec/staging`
next to rootimgdir, see generations.py):

    genimage   empty staging -> define the staging osimage -> genimage it
    pack       packimage (or liteimg) the staging osimage -> staging becomes
               generation N -> rootimgdir (a symlink) switches to it at once
               -> the staging osimage is removed

A failed genimage or pack leaves the generation in use untouched; rollback
switches the symlink back.  The image's own definition always names
rootimgdir itself, so nodeset copies the kernel and initrd of the generation
in use (anaconda.pm mknetboot reads `<rootimgdir>/kernel`).

Commands run on the director (over ssh for a remote one) through the
director's transport, so --dry-run prints exactly these command lines.
"""

from __future__ import annotations

import posixpath
import re
from typing import Optional

from ..litetree import parse_table
from ..model import BuildOptions
from ..plan import Observed, boot_changes
from ..render import RenderedDirector, RenderedImage, RenderedVariant
from ..render.formats import litefile_csv_rows, stanza
from ..runner import CommandError, Effect, Result
from ..safe import OBJECT_NAME_RE
from ..state import ImageState, now
from ..transport.base import Transport
from ..validate import STAGING_SUFFIX, VARIANT_ATTRIBUTES
from . import Log, run_logged
from .generations import (
    BuildError,
    Generation,
    ImageDirs,
    adopt_foreign,
    build_digests,
    kept_generation,
    kept_match,
    litefile_rows,
    mark_built,
    promote,
    prune,
    q,
    survey,
    switch,
    write_text,
)
from .xcatnodes import first_line, node_names, nothing_found

# Written into staging before liteimg runs on it.  liteimg deletes or empties the
# paths of rows removed or changed since its last run on a root (statelite.pm
# recoverFiles), so a root it ran on once is never given to it again.
LITEIMG_MARK = "liteimg.started"
# The kernel and initrds genimage leaves in rootimgdir, which a re-pack keeps.
BOOT_FILES = ("kernel", "initrd-stateless.gz", "initrd-statelite.gz", "initrd.gz")


def staging_name(image: str) -> str:
    """The temporary osimage a build goes through (never the one nodes boot)."""
    return f"{image}{STAGING_SUFFIX}"


# ------------------------------------------------------------------ reading xCAT's database


def parse_stanzas(text: str) -> dict[str, dict[str, str]]:
    """`lsdef -z` output -> {object: {attribute: value}} (objtype left out)."""
    objects: dict[str, dict[str, str]] = {}
    current: Optional[dict[str, str]] = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace() and line.rstrip().endswith(":"):
            current = objects.setdefault(line.rstrip()[:-1].strip(), {})
            continue
        if current is None or "=" not in line:
            continue
        key, _, value = line.strip().partition("=")
        if key != "objtype":
            current[key.strip()] = value
    return objects


NODE_LINE = re.compile(r"^(\S+):\s+provmethod=(.*)$")


def parse_provmethods(text: str) -> dict[str, list[str]]:
    """`lsdef -t node -i provmethod -c` output -> {image: [nodes]} (sorted)."""
    nodes: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = NODE_LINE.match(line.strip())
        if match and match.group(2).strip():
            nodes.setdefault(match.group(2).strip(), []).append(match.group(1))
    return {image: sorted(names) for image, names in nodes.items()}


def observe(transport: Transport) -> Observed:
    """Every osimage definition and every node's provmethod: two read-only lsdef calls."""
    seen = Observed()
    try:
        result = transport.run(["lsdef", "-t", "osimage", "-z"], check=False, effect=Effect.READ)
        if result.ok or nothing_found(result):
            seen.definitions = parse_stanzas(result.output) if result.ok else {}
        else:
            seen.notes.append(f"osimage definitions not read: {first_line(result.output)}")
        result = transport.run(
            ["lsdef", "-t", "node", "-i", "provmethod", "-c"], check=False, effect=Effect.READ
        )
        if result.ok or nothing_found(result):
            seen.nodes = parse_provmethods(result.output) if result.ok else {}
        else:
            seen.notes.append(f"nodes not read: {first_line(result.output)}")
    except CommandError as exc:  # the director could not run lsdef at all
        seen.notes.append(f"xCAT not reachable: {exc}")
    return seen


# ------------------------------------------------------------------ the builder


class XcatBuilder:
    name = "xcat"

    def __init__(
        self, transport: Transport, options: BuildOptions, rendered: RenderedDirector, commit: str
    ):
        self.transport = transport
        self.options = options
        self.rendered = rendered
        self.commit = commit

    def _run(
        self,
        argv: list[str],
        log: Log,
        stdin_path: Optional[str] = None,
        input_data: Optional[bytes] = None,
        check: bool = True,
    ) -> Result:
        return run_logged(self.transport, argv, log, stdin_path, input_data, check)

    # ------------------------------------------------------------ define

    def read_definition(self, name: str) -> Optional[dict[str, str]]:
        """The osimage as xCAT holds it now, or None when there is none."""
        result = self.transport.run(
            ["lsdef", "-t", "osimage", "-z", "-o", name], check=False, effect=Effect.READ
        )
        if nothing_found(result):
            return None
        if not result.ok:
            raise CommandError(
                ["lsdef", "-t", "osimage", "-z", "-o", name], result.returncode, result.output
            )
        return parse_stanzas(result.output).get(name)

    def define(self, image: RenderedImage, previous: Optional[ImageState], log: Log) -> bool:
        """Create or update the definition and its boot variants'; True when nodeset must follow.

        mkdef only for a new object; otherwise chdef -z, which changes only the
        attributes in the stanza, so attributes set outside imagespec (groups,
        usercomment) survive.  `mkdef -f` would delete the object first and
        lose them (DBobjectdefs.pm).  An attribute imagespec set before and no
        longer renders is unset with an empty value (`attr=`).  Each variant is
        defined the same way; the variants defined last time and no longer
        rendered are removed.
        """
        have = self.read_definition(image.name)
        ours_before = set(previous.attributes) if previous else set()
        self._put(image.name, image.stanza_path, image.attributes, have, ours_before, {}, log)
        changes = boot_changes(image, have)
        if changes:
            log(f"boot attributes change ({', '.join(changes)}): nodeset follows")
        boot = bool(changes)
        for variant in image.variants.values():
            boot = (
                self._define_variant(variant, (have or {}).get("groups"), ours_before, log) or boot
            )
        self._drop_variants(image, previous, log)
        if image.statelite and image.variants:
            self._copy_rows_to_variants(image, log)
        return boot

    def _put(
        self,
        name: str,
        stanza_path: str,
        attributes: dict[str, str],
        have: Optional[dict[str, str]],
        ours_before: set[str],
        extra: dict[str, str],
        log: Log,
    ) -> None:
        """mkdef a new object, else chdef -z it, unsetting what imagespec set before and no
        longer renders.  `extra`: attributes to set beside the rendered stanza's."""
        path = posixpath.join(self.transport.root, stanza_path)
        gone = sorted(a for a in ours_before - set(attributes) if have and a in have)
        command = ["mkdef", "-z"] if have is None else ["chdef", "-z"]
        if not gone and not extra:
            self._run(command, log, stdin_path=path)
            return
        if gone:
            log(f"unsetting attributes imagespec no longer sets on {name}: {', '.join(gone)}")
        data = stanza(name, {**attributes, **extra}) + "".join(f"    {a}=\n" for a in gone).encode()
        self._run(command, log, input_data=data)

    def _define_variant(
        self, variant: RenderedVariant, groups: Optional[str], ours_before: set[str], log: Log
    ) -> bool:
        """A boot variant's osimage; True when a node booting it needs nodeset.

        The object is imagespec's: of the attributes a variant may set, those no
        longer rendered are unset.  It takes the image's `groups` (set outside
        imagespec), so that a statelite variant's nodes get the same litefile
        group rows as the image's (litetree.pm:343-348).
        """
        have = self.read_definition(variant.name)
        extra = {"groups": groups} if groups and (have or {}).get("groups") != groups else {}
        unset = ours_before | VARIANT_ATTRIBUTES
        self._put(variant.name, variant.stanza_path, variant.attributes, have, unset, extra, log)
        if have is None:
            log(f"new boot variant {variant.name}: nodeset follows for its nodes")
            return True
        changes = boot_changes(variant, have)
        if changes:
            log(f"boot attributes of {variant.name} change ({', '.join(changes)}): nodeset follows")
        return bool(changes)

    def _drop_variants(
        self, image: RenderedImage, previous: Optional[ImageState], log: Log
    ) -> None:
        """Remove the variant osimages imagespec defined for the image and no longer renders
        (only those: state.json names them), with their litefile rows."""
        stale = sorted(set(previous.variants if previous else []) - set(image.variants))
        live = self.rendered.osimages
        for name in stale:
            if name in live:  # now another image's (validate refuses two owners at once)
                log(f"{name} is now defined for image {live[name]}: not removed")
                continue
            log(f"boot variant {name} is no longer in the site: removing its definition")
            self.undefine(name, log)
            self._run(["tabch", "-d", f"image={name}", "litefile"], log, check=False)

    def _copy_rows_to_variants(self, image: RenderedImage, log: Log) -> None:
        """A statelite node asks for the litefile rows of its provmethod (litetree.pm:156-179,
        343-359), so each variant gets the rows the image has on the director now.  The
        rendered rows are loaded for the image and its variants together before liteimg."""
        result = self.transport.run(["tabdump", "litefile"], effect=Effect.READ)
        rows = [(r.file, r.options) for r in parse_table(result.output) if r.image == image.name]
        for name in image.variants:
            self._replace_rows(name, rows, log)

    # ------------------------------------------------------------ staging osimage

    def _define_staging(self, image: RenderedImage, dirs: ImageDirs, log: Log) -> str:
        """The staging osimage: the image's definition, rootimgdir pointing at staging.

        `groups` is copied from the image's own definition, so liteimg applies
        the same litefile group rows (statelite.pm).  The staging object is
        imagespec's alone: mkdef -f replaces it whole.
        """
        name = staging_name(image.name)
        attributes = dict(image.attributes, rootimgdir=dirs.staging)
        have = self.read_definition(image.name) or {}
        if have.get("groups"):
            attributes["groups"] = have["groups"]
        self._run(["mkdef", "-z", "-f"], log, input_data=stanza(name, attributes))
        return name

    def _drop_staging(self, image: RenderedImage, log: Log) -> None:
        name = staging_name(image.name)
        self._run(["rmdef", "-t", "osimage", "-o", name], log, check=False)
        if image.statelite:
            self._run(["tabch", "-d", f"image={name}", "litefile"], log, check=False)

    # ------------------------------------------------------------ genimage

    def kept(self, image: RenderedImage) -> Optional[int]:
        return kept_generation(self.transport, image)

    def genimage(self, image: RenderedImage, log: Log) -> None:
        """genimage into an empty staging root: nothing of an earlier build survives."""
        dirs = ImageDirs(image.rootimgdir)
        self._run(["rm", "-rf", dirs.staging], log)
        self._run(["mkdir", "-p", dirs.staging], log)
        name = self._define_staging(image, dirs, log)
        self._run(["genimage", name], log)
        mark_built(self.transport, dirs, image.digests["build"], self.commit, log)

    # ------------------------------------------------------------ pack

    def pack(self, image: RenderedImage, log: Log) -> Optional[int]:
        """Pack staging and switch rootimgdir to it as a new generation."""
        dirs = ImageDirs(image.rootimgdir)
        found = survey(self.transport, dirs)
        adopt_foreign(self.transport, found, log)
        digests = {"build": image.digests["build"], "pack": image.digests["pack"]}
        kept = kept_match(found, image)
        if kept is not None:
            log(f"generation {kept} was built and packed from these inputs: switching to it")
            switch(self.transport, dirs, kept, log)
            return kept
        fresh = found.staging_build in build_digests(image)
        if fresh and image.statelite and self._liteimg_ran(dirs):
            log("liteimg already ran on the staging root (a failed pack): building it again")
            fresh = False
        if not fresh:
            self._prepare_staging(image, found.current, dirs, log)
        name = self._define_staging(image, dirs, log)
        if image.statelite:
            self._load_litefile(image, name, log)
            write_text(self.transport, f"{dirs.staging}/{LITEIMG_MARK}", b"", log)
            self._run(["liteimg", name], log)
        else:
            opts = self.options
            self._run(["packimage", "-m", opts.method, "-c", opts.compress, name], log)
        generation = Generation(found.highest + 1, dict(digests), self.commit, now())
        promote(self.transport, found, generation, log)
        self._drop_staging(image, log)
        gone = prune(self.transport, found, self.options.generations, log)
        if gone:
            log(f"removed old generation(s) {', '.join(map(str, gone))}")
        return generation.number

    def _liteimg_ran(self, dirs: ImageDirs) -> bool:
        """Whether liteimg started on the staging root: it must never run there twice."""
        query = f"test -e {q(dirs.staging)}/{LITEIMG_MARK} && echo yes || true"
        return self.transport.run(["sh", "-c", query], effect=Effect.READ).output.strip() == "yes"

    def _prepare_staging(
        self, image: RenderedImage, current: Optional[int], dirs: ImageDirs, log: Log
    ) -> None:
        """Staging needs a root built from these build inputs before packing.

        A statelite root is always built afresh: liteimg moves files into
        .default and, for rows removed or changed since its last run, deletes
        or empties their paths (statelite.pm recoverFiles), so running it again
        on a root it already changed loses files.  A netboot root is copied
        from the generation in use (copy-on-write where the file system can):
        packimage writes into the root it packs (/etc/shadow, /xcatpost,
        /etc/localtime; packimage.pm), so hard links would change the
        generation nodes boot.
        """
        if image.statelite or current is None:
            why = "statelite: liteimg needs a root it never ran on" if image.statelite else ""
            log(f"building a fresh root{f' ({why})' if why else ''}")
            self.genimage(image, log)
            return
        source = dirs.gen(current)
        log(f"re-packing a copy of generation {current}; the build inputs did not change")
        script = (
            f"rm -rf {q(dirs.staging)} && mkdir -p {q(dirs.staging)}"
            f" && cp -a --reflink=auto {q(source)}/rootimg {q(dirs.staging)}/rootimg"
            f" && for f in {' '.join(BOOT_FILES)}; do"
            f' [ ! -e {q(source)}/"$f" ] || cp -p {q(source)}/"$f" {q(dirs.staging)}/ || exit 1;'
            " done"
        )
        self._run(["sh", "-c", script], log)

    def _load_litefile(self, image: RenderedImage, name: str, log: Log) -> None:
        """Replace the litefile rows of the image and of its staging osimage.

        liteimg reads the staging osimage's rows; nodes booting the image (or
        one of its variants) read the image's (or the variant's) own.  tabrestore
        takes the table name from the file name.
        """
        rows = litefile_rows(self.rendered, image)
        for owner in (image.name, name, *image.variants):
            self._replace_rows(owner, rows, log)

    def _replace_rows(self, owner: str, rows: list[tuple[str, str]], log: Log) -> None:
        """The litefile rows of one osimage, replaced by `rows`."""
        self._run(["tabch", "-d", f"image={owner}", "litefile"], log)
        script = (
            'd=$(mktemp -d) && cat > "$d/litefile.csv" && '
            'tabrestore -a "$d/litefile.csv"; rc=$?; rm -rf "$d"; exit $rc'
        )
        self._run(["sh", "-c", script], log, input_data=litefile_csv_rows(owner, rows))

    # ------------------------------------------------------------ boot

    def nodes_of(self, name: str) -> list[str]:
        """The nodes whose provmethod is the image: those nodeset must be run for."""
        argv = ["lsdef", "-t", "node", "-w", f"provmethod=={name}", "-i", "provmethod", "-c"]
        result = self.transport.run(argv, check=False, effect=Effect.READ)
        if nothing_found(result):
            return []
        if not result.ok:
            raise CommandError(argv, result.returncode, result.output)
        return parse_provmethods(result.output).get(name, [])

    def nodeset(self, image: RenderedImage, log: Log) -> Optional[dict[str, str]]:
        """Copy the image's kernel and initrd for its nodes (xCAT's nodeset), once for the
        nodes of the image and once for those of each boot variant.

        Returns {node: osimage} for the nodes it ran for.
        """
        sets: dict[str, str] = {}
        for name in (image.name, *image.variants):
            nodes = self.nodes_of(name)
            odd = [n for n in nodes if not OBJECT_NAME_RE.match(n)]
            if odd:
                raise BuildError(
                    f"xCAT lists node names imagespec will not pass to nodeset:"
                    f" {', '.join(odd[:3])}; run nodeset for the nodes of {name} by hand"
                )
            if nodes:
                self._run(["nodeset", ",".join(nodes), f"osimage={name}"], log)
                sets.update(dict.fromkeys(nodes, name))
        if not sets:
            variants = " or one of its variants" if image.variants else ""
            log(f"no node has provmethod {image.name}{variants}: no nodeset needed")
        return sets

    def nodeset_range(self, nodes: str, image: str, log: Log) -> dict[str, str]:
        """nodeset for a noderange of a `nodes:` map (xCAT expands ranges and groups).

        Returns {node: image} for the nodes xCAT expanded the range to.
        """
        self._run(["nodeset", nodes, f"osimage={image}"], log)
        return dict.fromkeys(node_names(self.transport, nodes), image)

    def undefine(self, name: str, log: Log) -> None:
        """rmdef; a definition already gone is what was wanted."""
        argv = ["rmdef", "-t", "osimage", "-o", name]
        result = self._run(argv, log, check=False)
        if not result.ok and not nothing_found(result):
            raise CommandError(argv, result.returncode, result.output)


class NoBuilder:
    """Builder `none`: images are built outside imagespec; only files are delivered."""

    name = "none"

    def define(self, image: RenderedImage, previous: Optional[ImageState], log: Log) -> bool:
        return False

    def kept(self, image: RenderedImage) -> Optional[int]:
        return None

    def genimage(self, image: RenderedImage, log: Log) -> None:
        return None

    def pack(self, image: RenderedImage, log: Log) -> Optional[int]:
        return None

    def undefine(self, name: str, log: Log) -> None:
        return None

    def nodeset(self, image: RenderedImage, log: Log) -> Optional[dict[str, str]]:
        return None
