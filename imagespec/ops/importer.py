"""`imagespec import`: an xCAT site's osimages and flat files -> a new, factored imagespec site.

Reads the stanzas and litefile rows it is given, the files they name through
a DirectorFiles, factors the images into profiles, writes the site in memory,
renders it with the project's own pipeline and proves, image by image, that
the rendered files mean what the originals meant (importer/meaning.py).
Then the site is written to --out atomically.  Never prints.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UsageError
from ..importer.collect import Collected, Collector
from ..importer.factor import Factored, factor
from ..importer.files import DirectorFiles
from ..importer.meaning import differences, meaning, rendered_files, rendered_meaning
from ..importer.stanzas import (
    ImportInputError,
    LiteRow,
    Osimage,
    parse_litefile_rows,
    parse_osimages,
)
from ..importer.write import ImageSpec, SiteSettings, profile_files, site_yaml
from ..safe import is_name, is_rel_path
from ..site import validate_site
from ..source import MemorySource


@dataclass
class ImportRequest:
    stanzas: str
    stanzas_label: str
    litefile: str
    litefile_label: str
    files: DirectorFiles
    settings: SiteSettings


@dataclass
class ImageResult:
    name: str
    profile: str
    chain: list[str]
    losses: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not self.losses


@dataclass
class ImportResult:
    out: Path
    images: dict[str, ImageResult]
    profiles: dict[str, dict[str, Any]]
    hoisted: dict[str, int]
    director_files: list[str]
    builtins: list[str]
    site_rows: list[dict[str, str]]
    settings: SiteSettings

    @property
    def losses(self) -> int:
        return sum(len(i.losses) for i in self.images.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "director": self.settings.director,
            "prefix": self.settings.prefix,
            "images": {
                n: {"profile": i.profile, "chain": i.chain, "losses": i.losses, "notes": i.notes}
                for n, i in sorted(self.images.items())
            },
            "profiles": self.profiles,
            "director_files": self.director_files,
            "builtins": self.builtins,
            "site_rows": self.site_rows,
        }


class SiteFiles(MemorySource):
    """The imported site in memory, with each file's mode (sync sources keep theirs)."""

    def __init__(self, files: dict[str, tuple[bytes, int]], root: Path):
        super().__init__({k: v[0] for k, v in files.items()}, root)
        self.modes = {k: v[1] for k, v in files.items()}

    def mode(self, rel: str) -> int:
        return self.modes.get(rel, 0o644)


def check_settings(settings: SiteSettings) -> None:
    for what, value in (("--name", settings.director), ("--site-name", settings.site)):
        if not is_name(value):
            raise UsageError(f"{what} '{value}' must be a plain name (letters, digits, _ . + -)")
    if settings.prefix and not is_rel_path(settings.prefix):
        raise UsageError(f"--prefix '{settings.prefix}' must be a relative path of plain names")
    if not settings.install_root.startswith("/"):
        raise UsageError("--install-root must be an absolute path on the director")


def check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} exists and is not an empty directory; choose a new --out")


def run_import(request: ImportRequest, out: Path) -> ImportResult:
    """Import, prove and write the site; the result lists every loss per image."""
    settings = request.settings
    check_settings(settings)
    check_out(out)
    osimages = parse_osimages(request.stanzas, request.stanzas_label)
    if not osimages:
        raise ImportInputError(f"{request.stanzas_label}: no osimage definitions found")
    rows = parse_litefile_rows(request.litefile, request.litefile_label) if request.litefile else []
    collector = Collector(request.files, rows)
    collector.preload(osimages[n] for n in sorted(osimages))
    collected = [collector.collect(osimages[n]) for n in sorted(osimages)]
    defaults = _take_defaults(collected)
    _per_image_attributes(collected)
    factored = factor(collected)
    distros, image_distro, distro_losses = _distros(collected, settings.install_root)
    builtins = sorted({s for c in collected for s in c.missing_postscripts})
    images = {
        c.name: ImageSpec(factored.leaf_of[c.name], image_distro[c.name], dict(c.image_attributes))
        for c in collected
    }
    files: dict[str, tuple[bytes, int]] = dict(collector.copies.files)
    files["imagespec.yaml"] = (
        site_yaml(settings, defaults, distros, images, builtins, request.stanzas_label),
        0o644,
    )
    files.update({k: (v, 0o644) for k, v in profile_files(factored).items()})
    results = _prove(request, osimages, rows, collected, factored, files, distro_losses)
    _write(out, files)
    return ImportResult(
        out=out,
        images=results,
        profiles=_profiles_summary(factored),
        hoisted=factored.hoisted,
        director_files=sorted({p for c in collected for p in c.director_sources}),
        builtins=builtins,
        site_rows=[
            {"image": r.image, "file": r.file, "options": r.options}
            for r in rows
            if r.image not in osimages and not r.disabled
        ],
        settings=settings,
    )


def _take_defaults(collected: list[Collected]) -> dict[str, str]:
    """Attributes every image sets to the same value go to `defaults:`."""
    sets = [{i.value for i in c.items if i.kind == "attributes"} for c in collected]
    common = set.intersection(*sets) if sets else set()
    for c in collected:
        c.items = [i for i in c.items if not (i.kind == "attributes" and i.value in common)]
    return dict(sorted(common))


def _per_image_attributes(collected: list[Collected]) -> None:
    """Images sharing an xCAT profile share a leaf: their differing attributes go to the image."""
    by_profile: dict[str, list[Collected]] = {}
    for c in collected:
        by_profile.setdefault(c.profile, []).append(c)
    for group in by_profile.values():
        if len(group) < 2:
            continue
        sets = [{i.value for i in c.items if i.kind == "attributes"} for c in group]
        common = set.intersection(*sets)
        for c in group:
            for item in [i for i in c.items if i.kind == "attributes" and i.value not in common]:
                c.image_attributes[item.value[0]] = item.value[1]
            c.items = [i for i in c.items if not (i.kind == "attributes" and i.value not in common)]


def _distros(
    collected: list[Collected], install_root: str
) -> tuple[dict[str, dict[str, Any]], dict[str, str], dict[str, list[str]]]:
    """One distro per (osvers, osarch, family, pkgdir, otherpkgdir)."""
    distros: dict[str, dict[str, Any]] = {}
    keys: dict[tuple[str, ...], str] = {}
    image_distro: dict[str, str] = {}
    losses: dict[str, list[str]] = {}
    for c in collected:
        pkgdir = c.pkgdir
        if not pkgdir:
            pkgdir = posixpath.join(install_root, c.osvers, c.osarch)
            losses.setdefault(c.name, []).append(
                f"no pkgdir: imagespec needs one; set to {pkgdir}, xCAT's usual place"
            )
        key = (c.osvers, c.osarch, c.family, pkgdir, c.otherpkgdir)
        if key not in keys:
            base = f"{c.osvers}-{c.osarch}"
            name, number = base, 1
            while name in distros:
                number += 1
                name = f"{base}-{number}"
            parts = [p.strip() for p in pkgdir.split(",") if p.strip()]
            values: dict[str, Any] = {
                "osvers": c.osvers,
                "osarch": c.osarch,
                "family": c.family,
                "pkgdir": parts[0] if len(parts) == 1 else parts,
            }
            if c.otherpkgdir:
                values["otherpkgdir"] = c.otherpkgdir
            distros[name] = values
            keys[key] = name
        image_distro[c.name] = keys[key]
    return distros, image_distro, losses


def _prove(
    request: ImportRequest,
    osimages: dict[str, Osimage],
    rows: list[LiteRow],
    collected: list[Collected],
    factored: Factored,
    files: dict[str, tuple[bytes, int]],
    distro_losses: dict[str, list[str]],
) -> dict[str, ImageResult]:
    """Render the new site and compare each image's meaning with the original's."""
    settings = request.settings
    source = SiteFiles(files, Path("/imported-site"))
    try:
        view = validate_site(source, strict=True)
    except ConfigError as exc:
        raise ImportInputError(
            "the imported site does not validate (a value from the director that imagespec"
            " refuses; fix it there, then import again):\n" + "\n".join(exc.lines())
        ) from None
    rendered = view.render(settings.director)
    overlay = rendered_files(rendered, request.files)
    builtins = view.docs.site.model.builtin_postscripts
    results = {}
    for c in collected:
        own_rows = [(r.file, r.options) for r in rows if r.image == c.name and not r.disabled]
        old = meaning(osimages[c.name].attributes, request.files, own_rows, builtins)
        image = rendered.images[c.name]
        new = rendered_meaning(rendered, c.name, overlay, builtins)
        result = ImageResult(c.name, image.profile, list(image.resolved.chain))
        result.losses = [
            *c.losses,
            *factored.losses.get(c.name, []),
            *distro_losses.get(c.name, []),
            *differences(old, new),
        ]
        result.notes = list(c.notes)
        results[c.name] = result
    return results


def _profiles_summary(factored: Factored) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "made": spec.made,
            "inherits": spec.inherits,
            "images": sorted(spec.images),
            "entries": len(spec.items),
            "files": spec.files,
        }
        for name, spec in sorted(factored.profiles.items())
    }


def _write(out: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """Write into a sibling temporary directory, then rename it into place."""
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for rel, (data, mode) in sorted(files.items()):
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(mode)
        staging.chmod(0o755)
        if out.exists():
            out.rmdir()
        os.rename(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


__all__ = ["ImportRequest", "ImportResult", "run_import"]
