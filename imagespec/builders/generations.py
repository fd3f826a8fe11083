"""Image generations of the native builder: staging, atomic switch, retention, rollback.

Layout next to an image's rootimgdir R (same file system, so renames are atomic):

    R -> .<name>.imagespec/<N>          a symlink: the generation in use
    .<name>.imagespec/staging/          the generation being built
    .<name>.imagespec/<N>/              rootimg/, kernel, initrd-*, the packed image,
                                        generation.json (digests, commit, time),
                                        packages.json (the installed packages)

xCAT reads everything through R, so switching generations is one rename of a
symlink.  A real directory found at R (built before imagespec, or by xCAT) is
adopted as generation 0 and never removed automatically.
"""

from __future__ import annotations

import json
import posixpath
import shlex
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import ImagespecError
from ..packages import MANIFEST_FILE, QUERY_FORMAT, manifest_bytes, parse_query
from ..render import RenderedDirector, RenderedImage
from ..render.layout import generation_home
from ..render.readers import parse_litefile
from ..runner import Effect
from ..state import now
from ..transport.base import Transport
from . import Log, run_logged

GENERATION_FILE = "generation.json"
BUILD_FILE = "build.json"


class BuildError(ImagespecError):
    """The native builder cannot build an image; the message says what to do."""


def q(path: str) -> str:
    return shlex.quote(path)


# What packimage leaves in rootimgdir (packimage.pm): cpio archives by compression.
CPIO_ARCHIVES = {"gzip": "rootimg.cpio.gz", "pigz": "rootimg.cpio.gz", "xz": "rootimg.cpio.xz"}


def archive_name(method: str, compress: str) -> str:
    """The packed image's file name in rootimgdir for a pack method and compression."""
    return "rootimg.sfs" if method == "squashfs" else CPIO_ARCHIVES[compress]


@dataclass(frozen=True)
class ImageDirs:
    rootimgdir: str

    @property
    def parent(self) -> str:
        return posixpath.dirname(self.rootimgdir.rstrip("/"))

    @property
    def base(self) -> str:
        return posixpath.basename(self.rootimgdir.rstrip("/"))

    @property
    def home(self) -> str:
        return generation_home(self.rootimgdir)

    @property
    def staging(self) -> str:
        return posixpath.join(self.home, "staging")

    def gen(self, number: int) -> str:
        return posixpath.join(self.home, str(number))

    def link_target(self, number: int) -> str:
        return f".{self.base}.imagespec/{number}"


@dataclass
class Generation:
    number: int
    digests: dict[str, Optional[str]] = field(default_factory=dict)
    commit: Optional[str] = None
    time: Optional[str] = None
    adopted: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "generation": self.number,
            "digests": self.digests,
            "commit": self.commit,
            "time": self.time,
            "adopted": self.adopted,
        }


@dataclass
class Survey:
    """What is on the director for one image: generations, the one in use, staging."""

    dirs: ImageDirs
    generations: dict[int, Generation] = field(default_factory=dict)
    current: Optional[int] = None
    staging_build: Optional[str] = None  # build digest of a finished genimage in staging
    foreign_dir: bool = False  # R is a real directory (built before imagespec)
    foreign_link: Optional[str] = None  # R is a symlink imagespec did not make

    @property
    def highest(self) -> int:
        return max(self.generations, default=0)


def survey(transport: Transport, dirs: ImageDirs) -> Survey:
    """One read-only round trip: generation.json files, staging's build.json and R itself."""
    script = (
        f"R={q(dirs.rootimgdir)}; H={q(dirs.home)}\n"
        'if [ -L "$R" ]; then printf "link\\t%s\\n" "$(readlink "$R")";'
        ' elif [ -e "$R" ]; then printf "dir\\t\\n"; fi\n'
        'for f in "$H"/staging/build.json "$H"/*/generation.json; do\n'
        '  [ -f "$f" ] && printf "%s\\t%s\\n" "${f#"$H"/}" "$(tr -d "\\n" < "$f")"\n'
        "done\ntrue"
    )
    found = Survey(dirs)
    output = transport.run(["sh", "-c", script], effect=Effect.READ).output
    for line in output.splitlines():
        kind, _, value = line.partition("\t")
        _read_survey_line(found, kind, value)
    return found


def _read_survey_line(found: Survey, kind: str, value: str) -> None:
    dirs = found.dirs
    if kind == "dir":
        found.foreign_dir = True
    elif kind == "link":
        prefix = f".{dirs.base}.imagespec/"
        suffix = value[len(prefix) :] if value.startswith(prefix) else ""
        if suffix.isdigit():
            found.current = int(suffix)
        else:
            found.foreign_link = value
    elif kind == f"staging/{BUILD_FILE}":
        found.staging_build = _json(value).get("build")
    elif kind.endswith(f"/{GENERATION_FILE}") and kind.split("/")[0].isdigit():
        doc = _json(value)
        number = int(kind.split("/")[0])
        found.generations[number] = Generation(
            number,
            dict(doc.get("digests") or {}),
            doc.get("commit"),
            doc.get("time"),
            bool(doc.get("adopted")),
        )


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def write_text(transport: Transport, path: str, data: bytes, log: Log) -> None:
    """Write a small file on the director (its content goes over the command's stdin)."""
    run_logged(transport, ["sh", "-c", f"cat > {q(path)}"], log, input_data=data)


def adopt_foreign(transport: Transport, found: Survey, log: Log) -> None:
    """Keep a pre-existing rootimgdir as generation 0 before the first switch."""
    dirs = found.dirs
    if found.foreign_link is not None:
        raise BuildError(
            f"{dirs.rootimgdir} is a symlink to {found.foreign_link}, which imagespec did not"
            " make; remove it or set rootimgdir for this image to another path"
        )
    if not found.foreign_dir:
        return
    if 0 in found.generations:
        raise BuildError(
            f"{dirs.rootimgdir} is a real directory and generation 0 ({dirs.gen(0)}) is taken;"
            " move one of them away"
        )
    log(f"{dirs.rootimgdir} was not built by imagespec; keeping it as generation 0 ({dirs.gen(0)})")
    keep_as_generation_zero(transport, dirs, Generation(0, adopted=True), log)
    found.generations[0] = Generation(0, adopted=True)
    found.foreign_dir = False
    found.current = 0


def keep_as_generation_zero(
    transport: Transport, dirs: ImageDirs, adopted: Generation, log: Log
) -> None:
    """Move a real rootimgdir R to generation 0 and point R at it at once.

    A directory cannot be replaced by a symlink in one rename, so R is missing
    between the `mv` and the `ln` of one shell command (milliseconds), never for
    the length of a build: a failed build leaves R pointing at generation 0.
    """
    data = _dump(adopted)
    script = (
        f"mkdir -p {q(dirs.home)} && mv -T {q(dirs.rootimgdir)} {q(dirs.gen(0))}"
        f" && ln -sn {q(dirs.link_target(0))} {q(dirs.rootimgdir)}"
        f" && cat > {q(posixpath.join(dirs.gen(0), GENERATION_FILE))}"
    )
    run_logged(transport, ["sh", "-c", script], log, input_data=data)


def mark_built(transport: Transport, dirs: ImageDirs, build: str, commit: str, log: Log) -> None:
    """Record in staging that genimage finished for these build inputs (survey reads it)."""
    marker = {"build": build, "commit": commit, "time": now()}
    data = (json.dumps(marker, sort_keys=True) + "\n").encode()
    write_text(transport, posixpath.join(dirs.staging, BUILD_FILE), data, log)


def litefile_rows(rendered: RenderedDirector, image: RenderedImage) -> list[tuple[str, str]]:
    """The (file, options) rows rendered for a statelite image (its litefile CSV)."""
    csv_files = [p for p in image.files if p.endswith(".litefile.csv")]
    return parse_litefile("".join(rendered.files[p].data.decode() for p in csv_files))


def _dump(generation: Generation) -> bytes:
    return (json.dumps(generation.as_json(), sort_keys=True) + "\n").encode()


def promote(transport: Transport, found: Survey, generation: Generation, log: Log) -> None:
    """staging becomes generation N and R points at it: the atomic switch."""
    dirs = found.dirs
    write_manifest(transport, dirs.staging, log)
    write_text(transport, posixpath.join(dirs.staging, GENERATION_FILE), _dump(generation), log)
    run_logged(transport, ["mv", "-T", dirs.staging, dirs.gen(generation.number)], log)
    found.generations[generation.number] = generation
    switch(transport, dirs, generation.number, log)
    found.current = generation.number


def rpm_query(root: str) -> str:
    """A shell command: the packages of a root's rpm database, or exit 3 without one."""
    return (
        f"test -d {q(root)}/var/lib/rpm || exit 3; "
        f"rpm --root {q(root)} --dbpath /var/lib/rpm -qa --qf {q(QUERY_FORMAT)}"
    )


def write_manifest(transport: Transport, gen_dir: str, log: Log) -> None:
    """packages.json next to generation.json: what the generation's root holds, so
    `diff --built` can compare generations long after their roots changed or went.
    A root without an rpm database (a tree built some other way) gets none."""
    root = posixpath.join(gen_dir, "rootimg")
    result = transport.run(["sh", "-c", rpm_query(root)], effect=Effect.READ, check=False)
    if result.returncode != 0:
        log(
            f"no rpm database in {root} (rpm said: {result.output.strip()[:200] or 'nothing'});"
            " this generation gets no package manifest"
        )
        return
    packages = parse_query(result.output)
    write_text(transport, posixpath.join(gen_dir, MANIFEST_FILE), manifest_bytes(packages), log)
    log(f"package manifest: {len(packages)} packages in {posixpath.join(gen_dir, MANIFEST_FILE)}")


def switch(transport: Transport, dirs: ImageDirs, number: int, log: Log) -> None:
    """Point R at generation N with one rename: nodes never see a half-switched image."""
    tmp = f"{dirs.rootimgdir.rstrip('/')}.imagespec-switch"
    script = (
        f"ln -sfn {q(dirs.link_target(number))} {q(tmp)} && mv -Tf {q(tmp)} {q(dirs.rootimgdir)}"
    )
    run_logged(transport, ["sh", "-c", script], log)


def build_digests(image: RenderedImage) -> set[str]:
    """The build digests a root built for the image may carry: the current one and the
    one earlier versions computed for the same inputs (RenderedImage.legacy_digests)."""
    legacy = image.legacy_digests.get("build")
    return {image.digests["build"], *([legacy] if legacy else [])}


def kept_match(found: Survey, image: RenderedImage) -> Optional[int]:
    """A kept generation built and packed from exactly the image's inputs (after a rollback,
    or a change reverted), unless genimage just built a fresh root for them, which is
    always packed."""
    builds = build_digests(image)
    if found.staging_build in builds:
        return None
    matches = [
        n
        for n, g in found.generations.items()
        if not g.adopted
        and g.digests.get("build") in builds
        and g.digests.get("pack") == image.digests["pack"]
    ]
    return max(matches) if matches else None


def kept_generation(transport: Transport, image: RenderedImage) -> Optional[int]:
    """The kept generation apply can switch back to instead of building (kept_match),
    read from the director (one read-only round trip)."""
    return kept_match(survey(transport, ImageDirs(image.rootimgdir)), image)


def prune(transport: Transport, found: Survey, keep: int, log: Log) -> list[int]:
    """Remove generations older than the `keep` before the one in use (adopted ones stay)."""
    current = found.current or 0
    older = sorted((n for n in found.generations if n < current), reverse=True)
    kept = set(older[:keep])
    gone = [n for n in older if n not in kept and not found.generations[n].adopted]
    if gone:
        run_logged(transport, ["rm", "-rf", *[found.dirs.gen(n) for n in gone]], log)
        for n in gone:
            found.generations.pop(n, None)
    return gone
