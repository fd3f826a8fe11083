"""`adopt`: record the images a director already has as built, without building them.

A site that comes to imagespec (usually through `imagespec import`) has its
osimages defined and built by hand.  Its first apply would rebuild every
image, because state.json records nothing.  adopt compares, per image, what
the director's own definition and the files it names mean with what the
site renders (the same comparison as import's proof of fidelity), and where
they mean the same and the root is really there, records the stages as done:

- build: the definition's package lists, postinstall chain and build
  attributes mean what the site renders, and `<rootimgdir>/rootimg` exists;
- pack: build is adopted, the exclude list, build-time sync entries,
  litefile rows and pack attributes mean the same, and the packed image is
  there (the archive of the director's pack method, or liteimg's structure);
- define: the definition already holds every attribute the site renders
  (usually not: the rendered lists live at new paths, so apply re-defines).

The rootimgdir becomes generation 0 (generations.py), recorded with the
adopted digests, so a later change of pack inputs re-packs a copy of it
instead of running genimage.  Nothing else changes on the director: apply
then syncs the files and defines what differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..actions import BuildStatus, Stage
from ..builders.generations import (
    Generation,
    ImageDirs,
    archive_name,
    keep_as_generation_zero,
    q,
    survey,
)
from ..builders.xcat import observe
from ..errors import UsageError
from ..importer.files import Overlay
from ..importer.meaning import meaning, rendered_files, rendered_meaning, stage_differences
from ..litetree import TableRow, parse_table
from ..plan import cannot_pack, drifted_attributes, missing_director_files
from ..render import RenderedImage
from ..runner import CommandError, Effect
from ..state import ImageState, State, now
from ..transport.files import TransportFiles
from .reconcile import Target, lock_for, read_state

Echo = Callable[[str], None]


@dataclass
class Adoption:
    """One image: the stages recorded as done, and why the others were not."""

    image: str
    stages: list[str] = field(default_factory=list)  # build, pack, define
    reasons: list[str] = field(default_factory=list)
    generation: Optional[int] = None

    @property
    def adopted(self) -> bool:
        return Stage.BUILD in self.stages

    def as_json(self) -> dict[str, Any]:
        return {
            "adopted": self.stages,
            "reasons": self.reasons,
            "generation": self.generation,
        }


@dataclass
class AdoptReport:
    director: str
    commit: str
    dry_run: bool
    images: list[Adoption] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "director": self.director,
            "commit": self.commit,
            "dry_run": self.dry_run,
            "images": {a.image: a.as_json() for a in self.images},
            "summary": {
                "adopted": sorted(a.image for a in self.images if a.adopted),
                "not_adopted": sorted(a.image for a in self.images if not a.adopted),
            },
        }


def adopt(
    target: Target,
    only: set[str],
    wait: bool,
    echo: Echo,
) -> AdoptReport:
    """Record as built the images whose director definition means what the site renders."""
    if target.builder.name != "xcat":
        raise UsageError(
            f"adopt reads the director's osimage definitions with xCAT; director"
            f" '{target.name}' uses the {target.builder.name} builder"
        )
    report = AdoptReport(target.name, target.commit, target.transport.runner.dry_run)
    with lock_for(target, wait, 600.0, echo):
        state = read_state(target)
        target.read_director_files(record=True)
        seen = observe(target.transport)
        if seen.notes or seen.definitions is None:
            raise UsageError(f"cannot read the director's definitions: {'; '.join(seen.notes)}")
        rows = _litefile_table(target)
        files = TransportFiles(target.transport)
        landing = rendered_files(target.rendered, files)  # the site as apply would land it
        for name in sorted(target.rendered.images):
            if only and name not in only:
                continue
            image = target.rendered.images[name]
            definition = seen.definitions.get(name)
            done = _adopt_image(target, files, landing, state, image, definition, rows)
            report.images.append(done)
            if done.stages:
                target.transport.write_atomic(target.state_rel, state.to_json())
    return report


def _adopt_image(
    target: Target,
    files: TransportFiles,
    landing: Overlay,
    state: State,
    image: RenderedImage,
    definition: Optional[dict[str, str]],
    rows: list[TableRow],
) -> Adoption:
    done = Adoption(image.name)
    if image.frozen:
        done.reasons.append("frozen: imagespec never builds it")
        return done
    recorded = state.images.get(image.name)
    if recorded is not None and any(recorded.digests.values()):
        done.reasons.append("already recorded by imagespec: nothing to adopt")
        return done
    if definition is None:
        done.reasons.append(f"no osimage {image.name} on the director: apply defines and builds it")
        return done
    differences = compare_definition(target, files, landing, image, definition, rows)
    found = _built(target, image)
    if differences[Stage.BUILD]:
        done.reasons += [f"build inputs differ: {d}" for d in differences[Stage.BUILD]]
        return done
    if not found.rootimg:
        done.reasons.append(f"{image.rootimgdir}/rootimg does not exist: apply builds it")
        return done
    done.stages.append(Stage.BUILD)
    missing = missing_director_files(image)
    if differences[Stage.PACK]:
        done.reasons += [f"pack inputs differ: {d}" for d in differences[Stage.PACK]]
    elif missing:
        done.reasons += [cannot_pack(path) for path in missing]
    elif not found.packed:
        done.reasons.append(f"not packed as the director packs ({found.wanted}): apply packs it")
    else:
        done.stages.append(Stage.PACK)
    # The definition itself: apply's chdef writes exactly the rendered attributes, so
    # they must already be there word for word (the lists usually moved under the prefix).
    drift = drifted_attributes(image, definition)
    if drift or differences[Stage.DEFINE]:
        what = [*differences[Stage.DEFINE], *(f"{a} differs" for a in drift)]
        done.reasons.append(
            f"the definition is not the rendered one (apply defines it): {'; '.join(what)}"
        )
    else:
        done.stages.append(Stage.DEFINE)
    done.generation = _generation_zero(target, image, done)
    state.images[image.name] = _record(target, image, done)
    return done


def _record(target: Target, image: RenderedImage, done: Adoption) -> ImageState:
    digests: dict[str, Optional[str]] = {
        stage: image.digests[stage] if stage in done.stages else None
        for stage in (Stage.BUILD, Stage.PACK, Stage.DEFINE)
    }
    entry = ImageState(
        digests=digests,
        status=BuildStatus.OK,
        commit=target.commit,
        time=now(),
        generation=done.generation or 0,
        builder=target.builder.name,
    )
    if Stage.DEFINE in done.stages:
        entry.attributes = sorted(image.attributes)
    if Stage.PACK in done.stages:  # the director files as they are now: what the pack used
        entry.director_files = {p: h for p, h in (image.director_hashes or {}).items() if h}
    return entry


def _generation_zero(target: Target, image: RenderedImage, done: Adoption) -> int:
    """rootimgdir as generation 0, recorded with the adopted digests; an image already in
    imagespec's layout (its state was moved aside) keeps the generation in use."""
    dirs = ImageDirs(image.rootimgdir)
    found = survey(target.transport, dirs)
    if found.current is not None:
        return found.current
    digests: dict[str, Optional[str]] = {
        stage: image.digests[stage] for stage in done.stages if stage != Stage.DEFINE
    }
    lines: list[str] = []
    keep_as_generation_zero(
        target.transport,
        dirs,
        Generation(0, digests, target.commit, now(), adopted=True),
        lines.append,
    )
    return 0


@dataclass
class Built:
    rootimg: bool
    packed: bool
    wanted: str  # what the pack leaves, for people


def _built(target: Target, image: RenderedImage) -> Built:
    """Whether rootimgdir holds a root, and the packed image this director's apply makes."""
    settings = target.view.docs.site.model.directors[target.name].build
    if image.statelite:
        # liteimg writes .statelite/litefile.save into the root at every run, and for a
        # ramdisk root the archive rootimg-statelite.gz (statelite.pm lines 464, 574).
        wanted = ["rootimg/.statelite/litefile.save"]
        if image.attributes.get("rootfstype") == "ramdisk":
            wanted.append("rootimg-statelite.gz")
    else:
        wanted = [archive_name(settings.method, settings.compress)]
    checks = " && ".join(f"[ -e {q(w)} ]" for w in wanted)
    script = (
        f"cd {q(image.rootimgdir)} 2>/dev/null || exit 0;"
        f" [ -d rootimg ] && [ -f kernel ] && echo root; {checks} && echo packed; true"
    )
    try:
        output = target.transport.run(["sh", "-c", script], effect=Effect.READ).output
    except CommandError:
        output = ""
    words = output.split()
    return Built("root" in words, "root" in words and "packed" in words, " and ".join(wanted))


def _litefile_table(target: Target) -> list[TableRow]:
    """The enabled rows of the director's litefile table."""
    result = target.transport.run(["tabdump", "litefile"], check=False, effect=Effect.READ)
    return parse_table(result.output) if result.ok else []


def compare_definition(
    target: Target,
    files: TransportFiles,
    landing: Overlay,
    image: RenderedImage,
    definition: dict[str, str],
    rows: list[TableRow],
) -> dict[str, list[str]]:
    """Per stage, what the director's definition means differently from the rendered image
    (importer/meaning.py: the comparison import proves its output with)."""
    builtins = target.view.docs.site.model.builtin_postscripts
    own_rows = [(r.file, r.options) for r in rows if r.image == image.name]
    have = dict(definition)
    have.pop("objtype", None)
    old = meaning(have, files, own_rows, builtins)
    new = rendered_meaning(target.rendered, image.name, landing, builtins)
    return stage_differences(old, new)
