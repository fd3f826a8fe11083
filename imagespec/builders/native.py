"""The native builder: what genimage and packimage/liteimg do, with dnf and no xCAT.

genimage: a clean root in the image's staging directory, `dnf --installroot`
with a generated repository configuration (pkgdir, kerneldir, otherpkgdir),
one transaction per #NEW_INSTALL_LIST# section with its #ENV: pairs and
environvar's, kernel* pinned to kernelver, otherpkgs erases before and after,
the root edits xCAT's genimage makes (genimage_rh.py), the postinstall chain
outside any chroot with a uname in the root that reports the image's kernel,
kernel and initrd copied out.  pack: build-time synclist entries copied in,
then the root minus the exlist into a cpio or squashfs archive (or the
statelite structure), and the staging directory becomes the new generation
with one atomic switch.

Every command runs on the director through its transport, so a remote
director only needs dnf, and --dry-run prints each command line.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Optional

from ..errors import ImagespecError
from ..model import BuildOptions
from ..render import RenderedDirector, RenderedImage
from ..render.readers import (
    OtherPass,
    PkgPass,
    el_major,
    parse_environvar,
    parse_exlist,
    parse_otherpkglist,
    parse_postinstall,
    parse_synclist_for_pack,
    pkglist_passes,
    releasever,
)
from ..runner import CommandError, Effect, Result
from ..safe import ENV_PAIR_RE, inside, unsafe_char
from ..state import ImageState, now
from ..transport.base import Transport
from . import Log, run_logged
from .generations import (
    BuildError,
    Generation,
    ImageDirs,
    Survey,
    adopt_foreign,
    archive_name,
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
from .genimage_rh import (
    KERNEL_EXCLUDE,
    disable_repos_script,
    generic_post_script,
    hack_uname_script,
    pin_kernel,
    restore_uname_script,
    root_fstab_script,
)
from .liteimg import confine_script, liteimg_script, restore_script

INITRDS = ("initrd-stateless.gz", "initrd-statelite.gz")
# Never packed: the statelite work areas (as packimage does).
ALWAYS_EXCLUDED = ("./.statelite*", "./.default*", "./.statebackup*", "./etc/init.d/statelite")
# Where genimage finds the kernel file of a version (rh/genimage lines 734-744), in order.
KERNEL_FILES = ("boot/vmlinux-{v}", "boot/vmlinuz-{v}", "boot/image-{v}", "lib/modules/{v}/vmlinuz")
# A zone file packimage re-includes past the exlist (packimage.pm lines 339-351).
ZONE_RE = re.compile(r"^/usr/share/zoneinfo/[A-Za-z0-9_+.-]+(/[A-Za-z0-9_+.-]+)*$")


@dataclass
class Repo:
    id: str
    baseurl: str


@dataclass
class Repos:
    base: list[Repo]
    other: dict[str, Repo]  # otherpkglist directory part -> repository in the local otherpkgdir
    other_urls: list[Repo] = field(default_factory=list)  # otherpkgdir URLs, for every section

    def all(self) -> list[Repo]:
        """Every repository, each checked: a baseurl becomes a line of dnf's configuration."""
        repos = [*self.base, *self.other_urls, *self.other.values()]
        for repo in repos:
            if unsafe_char(repo.baseurl) is not None or " " in repo.baseurl:
                raise BuildError(
                    f"repository {repo.baseurl!r} holds spaces or control characters, which would"
                    " inject lines into dnf's configuration; rename it"
                )
        return repos

    def for_other(self, subdirs: Iterable[str]) -> list[Repo]:
        """What an otherpkglist install transaction enables: pkgdir's repositories,
        otherpkgdir's URLs and the local subdirectories it installs from."""
        local = [self.other.get(d) for d in sorted(subdirs)]
        return [*self.base, *self.other_urls, *(r for r in local if r is not None)]

    def config(self) -> bytes:
        """dnf.conf for the build: only these repositories, unsigned local media allowed."""
        lines = ["[main]", "reposdir=/dev/null", "gpgcheck=0", "skip_if_unavailable=False", ""]
        for repo in self.all():
            lines += [
                f"[{repo.id}]",
                f"name={repo.id}",
                f"baseurl={repo.baseurl}",
                "gpgcheck=0",
                "",
            ]
        return "\n".join(lines).encode()


def is_url(path: str) -> bool:
    return path.split(":", 1)[0] in ("http", "https", "ftp", "file")


@dataclass
class Build:
    """One genimage run: the root, the repositories and the dnf command line around them."""

    image: RenderedImage
    dirs: ImageDirs
    repos: Repos
    dnf: list[str]  # dnf and its options, up to the repositories
    environ: list[str]  # NAME=value from environvar: every transaction and postinstall
    kernelver: str
    kerneldir: str
    log: Log

    @property
    def root(self) -> str:
        return posixpath.join(self.dirs.staging, "rootimg")

    @property
    def pin(self) -> str:
        """The version kernel* entries get: krpmver if set, else kernelver (rh/genimage 466-470)."""
        return self.image.attributes.get("krpmver", "") or self.kernelver

    @property
    def arch(self) -> str:
        return self.image.attributes.get("osarch", "")

    def command(
        self, env: list[str], ids: list[str], *args: str, hide_kernel: bool = False
    ) -> list[str]:
        """A dnf command: the section's #ENV: pairs after environvar's, HOME (for the
        rpm database path) last; with kernelver set, kernel* hidden unless pinned here."""
        bad = [pair for pair in env if not ENV_PAIR_RE.match(pair)]
        if bad:
            raise BuildError(
                f"image {self.image.name}: #ENV:{bad[0]}# is not #ENV:NAME=value#; fix the list"
            )
        pairs = [*self.environ, *env, f"HOME={self.dirs.staging}/home"]
        exclude = [KERNEL_EXCLUDE] if hide_kernel and self.kernelver else []
        return ["env", *pairs, *self.dnf, "--disablerepo=*", *ids, *exclude, *args]

    def base_ids(self) -> list[str]:
        return [f"--enablerepo={r.id}" for r in self.repos.base]


class NativeBuilder:
    name = "native"

    def __init__(
        self,
        transport: Transport,
        options: BuildOptions,
        rendered: RenderedDirector,
        commit: str,
    ):
        self.transport = transport
        self.options = options
        self.rendered = rendered
        self.commit = commit

    # ------------------------------------------------------------ helpers

    def _run(self, argv: list[str], log: Log, input_data: Optional[bytes] = None) -> Result:
        return run_logged(self.transport, argv, log, input_data=input_data)

    def _sh(self, script: str, log: Log) -> Result:
        return self._run(["bash", "-c", f"set -eo pipefail; {script}"], log)

    def _query(self, script: str) -> str:
        return self.transport.run(["sh", "-c", script], effect=Effect.READ).output

    def _text(self, path: str) -> str:
        """A rendered list file's text: from the render, else from the director."""
        rel = posixpath.relpath(path, self.rendered.layout.install_root)
        if rel in self.rendered.files:
            return self.rendered.files[rel].data.decode("utf-8", "replace")
        return self._query(f"cat {q(path)}")

    def _list(self, image: RenderedImage, attribute: str) -> str:
        paths = [p for p in image.attributes.get(attribute, "").split(",") if p]
        return "\n".join(self._text(p) for p in paths)

    # ------------------------------------------------------------ define

    def define(self, image: RenderedImage, previous: Optional[ImageState], log: Log) -> bool:
        log(f"native builder: no osimage table to update; the definition is {image.stanza_path}")
        return False

    def undefine(self, name: str, log: Log) -> None:
        return None

    def nodeset(self, image: RenderedImage, log: Log) -> Optional[dict[str, str]]:
        return None  # no xCAT: nothing copies kernels to tftp for nodes

    # ------------------------------------------------------------ genimage

    def kept(self, image: RenderedImage) -> Optional[int]:
        return kept_generation(self.transport, image)

    def genimage(self, image: RenderedImage, log: Log) -> None:
        """Build a clean root in staging; the image in use is not touched.

        The order is rh/genimage's: the pkglist transactions, the otherpkglist
        ones, the root edits, the kernel copied out, the postinstall chain
        (a hacked uname in the root during the otherpkglist and postinstall
        steps), the initrd.
        """
        others = parse_otherpkglist(self._list(image, "otherpkglist"))
        build = self._start(image, others, log)
        for section in pkglist_passes(self._list(image, "pkglist")):
            self._install_section(build, section)
        if others:
            kernel = build.kernelver or self._last_kernel(build.root)
            with self._hacked_uname(build, kernel):
                for other in others:
                    self._other_pass(build, other)
        self._run(["rm", "-rf", f"{build.root}/var/cache/dnf"], log)
        self._sh(self._generic_post(build), log)
        version = self._image_kernel(build)
        self._copy_kernel(build, version)
        self._sh(disable_repos_script(build.root), log)
        with self._hacked_uname(build, version):
            self._postinstall(build, version)
        self._copy_initrd(build, version)
        mark_built(self.transport, build.dirs, image.digests["build"], self.commit, log)

    def _start(self, image: RenderedImage, others: list[OtherPass], log: Log) -> Build:
        """A fresh staging directory with the build's dnf configuration."""
        dirs = ImageDirs(image.rootimgdir)
        kernelver = image.attributes.get("kernelver", "")
        kerneldir = self.kerneldir(image)
        repos = self._repositories(image, others, kerneldir if kernelver else "", log)
        dnf = self._dnf_options(image, dirs, log)
        build = Build(image, dirs, repos, dnf, _environ(image), kernelver, kerneldir, log)
        root = build.root
        self._sh(f"rm -rf {q(dirs.staging)} && mkdir -p {q(root)} {q(dirs.staging)}/home", log)
        write_text(self.transport, f"{dirs.staging}/dnf.conf", repos.config(), log)
        write_text(
            self.transport, f"{dirs.staging}/home/.rpmmacros", b"%_dbpath /var/lib/rpm\n", log
        )
        return build

    def kerneldir(self, image: RenderedImage) -> str:
        install_root = self.rendered.layout.install_root
        return image.attributes.get("kerneldir") or posixpath.join(install_root, "kernels")

    def repositories(self, image: RenderedImage, log: Log) -> tuple[Repos, list[OtherPass]]:
        """The repositories a build of the image installs from, as genimage configures them,
        and its otherpkglist's transactions (for `plan --check-packages`, which only reads)."""
        others = parse_otherpkglist(self._list(image, "otherpkglist"))
        kernelver = image.attributes.get("kernelver", "")
        kerneldir = self.kerneldir(image) if kernelver else ""
        return self._repositories(image, others, kerneldir, log), others

    @staticmethod
    def release_options(image: RenderedImage) -> list[str]:
        """The release and, on EL8 and later, the module platform, without which dnf hides
        every package of a module stream."""
        osvers = image.attributes.get("osvers", "")
        major = el_major(osvers)
        platform = (
            [f"--setopt=module_platform_id=platform:el{major}"] if major and major > 7 else []
        )
        return [f"--releasever={releasever(osvers)}", *platform]

    def _dnf_options(self, image: RenderedImage, dirs: ImageDirs, log: Log) -> list[str]:
        """dnf's options as genimage gives them (rh/genimage rpm_installroot_command, 107-125)."""
        return [
            "dnf",
            "-y",
            "-c",
            f"{dirs.staging}/dnf.conf",
            f"--installroot={dirs.staging}/rootimg",
            *self.release_options(image),
            *self._arch_options(image.attributes.get("osarch", ""), log),
        ]

    def _install_section(self, build: Build, section: PkgPass) -> None:
        """One pkglist transaction; with kernelver, its kernel* entries pinned (rh/genimage 464)."""
        names, pinned = pin_kernel(section.names, build.pin)
        argv = build.command(
            section.env, build.base_ids(), "install", *names, hide_kernel=not pinned
        )
        self._install(build, argv, pinned)

    def _other_pass(self, build: Build, other: OtherPass) -> None:
        """-name erases before, then the install, then --name erases (erase failures ignored)."""
        ids = build.base_ids()
        if other.install:
            ids = [f"--enablerepo={r.id}" for r in build.repos.for_other(other.install)]
        if other.pre_remove:
            self._erase(build.command(other.env, ids, "remove", *other.pre_remove), build.log)
        names = [n for d in sorted(other.install) for n in other.install[d]]
        if names:
            argv = build.command(other.env, ids, "install", *names, hide_kernel=True)
            self._install(build, argv, [])
        if other.post_remove:
            self._erase(build.command(other.env, ids, "remove", *other.post_remove), build.log)

    def _install(self, build: Build, argv: list[str], pinned: list[str]) -> None:
        """An install transaction; its failure explained when kernelver's pin is why."""
        try:
            self._run(argv, build.log)
        except CommandError as exc:
            hint = _kernel_hint(exc, build, pinned)
            if hint is None:
                raise
            raise hint from exc

    def _erase(self, argv: list[str], log: Log) -> None:
        result = run_logged(self.transport, argv, log, check=False)
        if not result.ok:
            log(f"(erase exit code {result.returncode} ignored, as genimage does)")

    def _arch_options(self, osarch: str, log: Log) -> list[str]:
        """Cross-architecture builds need qemu-user-static registered with binfmt_misc."""
        host = self._query("uname -m").strip()
        if not osarch or osarch == host or not host:
            return []
        binfmt = os.environ.get("IMAGESPEC_BINFMT_DIR", "/proc/sys/fs/binfmt_misc")
        entry = posixpath.join(binfmt, f"qemu-{osarch}")
        if self._query(f"test -e {q(entry)} && echo yes || true").strip() != "yes":
            raise BuildError(
                f"osarch {osarch} differs from the director's {host} and {entry} does not"
                f" exist: install qemu-user-static (it registers qemu-{osarch} with"
                f" binfmt_misc) on the director, or build this image on a {osarch} machine"
            )
        log(f"cross-architecture build for {osarch} on {host} through {entry}")
        return [f"--forcearch={osarch}"]

    def _repositories(
        self, image: RenderedImage, others: list[OtherPass], kerneldir: str, log: Log
    ) -> Repos:
        """pkgdir's repositories, then kerneldir's when kernelver is set (rh/genimage 353-359)."""
        base: list[Repo] = []
        for entry in [p for p in image.attributes.get("pkgdir", "").split(",") if p]:
            found = self._repo_dirs(entry)
            if not found:
                raise BuildError(
                    f"image {image.name}: pkgdir {entry} holds no repository (no repodata"
                    f" directory under it); create one with `createrepo_c {entry}`"
                )
            base += [
                Repo(f"imagespec-base-{len(base) + i + 1}", _url(d)) for i, d in enumerate(found)
            ]
        if not base:
            raise BuildError(f"image {image.name} has no pkgdir to install packages from")
        if kerneldir:
            kernels = self._repo_dirs(kerneldir)
            if not kernels:
                log(
                    f"note: kerneldir {kerneldir} holds no repository; the kernel of kernelver"
                    " must come from pkgdir (put its RPMs there and run `createrepo_c`)"
                )
            base += [Repo(f"imagespec-kernel-{i}", _url(d)) for i, d in enumerate(kernels, 1)]
        urls, local = self._other_repositories(image, others, log)
        return Repos(base, local, urls)

    def _repo_dirs(self, entry: str) -> list[str]:
        """A URL as it is, or every directory holding repodata under a local directory."""
        return [entry] if is_url(entry) else self._find_repodata(entry)

    def _find_repodata(self, directory: str) -> list[str]:
        """Every directory under `directory` holding repodata (EL8 media: BaseOS, AppStream)."""
        out = self._query(
            f"find {q(directory)} -type d -name repodata 2>/dev/null | LC_ALL=C sort || true"
        )
        return [posixpath.dirname(line) for line in out.splitlines() if line.strip()]

    def _has_repodata(self, directory: str) -> bool:
        return self._query(f"test -d {q(directory)}/repodata && echo yes || true").strip() == "yes"

    def _other_repositories(
        self, image: RenderedImage, others: list[OtherPass], log: Log
    ) -> tuple[list[Repo], dict[str, Repo]]:
        """otherpkgdir: URLs used as they are for every section, and at most one local
        directory whose subdirectories are the otherpkglist's repositories
        (rh/genimage lines 527-571)."""
        entries = [e for e in image.attributes.get("otherpkgdir", "").split(",") if e]
        urls = [
            Repo(f"imagespec-other-url-{i}", e)
            for i, e in enumerate([e for e in entries if is_url(e)], 1)
        ]
        local = [e for e in entries if not is_url(e)]
        if len(local) > 1:
            raise BuildError(
                f"image {image.name}: otherpkgdir lists {len(local)} local directories"
                f" ({', '.join(local)}); genimage takes at most one: keep one and give the"
                " others as http(s) or ftp URLs"
            )
        subdirs = sorted({d for p in others for d in p.install})
        if subdirs and not entries:
            raise BuildError(f"image {image.name} has an otherpkglist but no otherpkgdir")
        repos = {}
        for index, subdir in enumerate(subdirs if local else [], 1):
            path = posixpath.join(local[0], subdir) if subdir else local[0]
            if self._has_repodata(path):
                repos[subdir] = Repo(f"imagespec-other-{index}", _url(path))
            elif urls:
                log(f"note: {path} has no repodata; '{subdir or '.'}/' installs from the URLs")
            else:
                raise BuildError(
                    f"image {image.name}: the otherpkglist installs from"
                    f" '{subdir or '.'}/' but {path} has no repodata; run `createrepo_c {path}`"
                )
        return urls, repos

    @contextmanager
    def _hacked_uname(self, build: Build, kernel: str) -> Iterator[None]:
        """A uname in the root reporting the image's kernel and arch while the block runs
        (rh/genimage use_hackuname, 2547-2601); always removed, so it is never packed."""
        self._sh(hack_uname_script(build.root, build.arch, kernel), build.log)
        try:
            yield
        except BaseException:
            try:
                self._sh(restore_uname_script(build.root), build.log)
            except ImagespecError as exc:
                build.log(f"(restoring uname failed too: {exc}; the root is rebuilt next time)")
            raise
        self._sh(restore_uname_script(build.root), build.log)

    def _generic_post(self, build: Build) -> str:
        attrs = build.image.attributes
        try:
            return generic_post_script(
                build.root,
                attrs.get("profile", ""),
                build.arch,
                attrs.get("osvers", ""),
                attrs.get("nodebootif", ""),
                attrs.get("otherifce", ""),
            )
        except ValueError as exc:
            raise BuildError(
                f"image {build.image.name}: nodebootif/otherifce {exc}; fix the attribute"
            ) from None

    def _kernels(self, root: str) -> list[str]:
        """The kernel versions in the root, sorted: of /boot/vmlinuz-*, else of /lib/modules/*
        (rh/genimage lines 717-722)."""
        out = self._query(
            f"cd {q(root)} 2>/dev/null || exit 0; ls -1 boot 2>/dev/null | sed -n 's/^vmlinuz-//p';"
            " echo /; ls -1 lib/modules 2>/dev/null; true"
        )
        boot, _, modules = out.partition("/\n")
        return sorted(boot.split()) or sorted(modules.split())

    def _last_kernel(self, root: str) -> str:
        """The kernel genimage takes when kernelver is unset: the last one (line 724)."""
        versions = self._kernels(root)
        return versions[-1] if versions else ""

    def _image_kernel(self, build: Build) -> str:
        """The image's kernel version: kernelver, which must be installed, else the last one."""
        if not build.kernelver:
            version = self._last_kernel(build.root)
            if not version:
                build.log("note: the image has no kernel (no /boot/vmlinuz-*); no kernel or initrd")
            return version
        files = [q(f.format(v=build.kernelver)) for f in KERNEL_FILES]
        test = " || ".join(f"[ -f {f} ]" for f in files)
        try:
            self._sh(f"cd {q(build.root)} && {{ {test}; }}", build.log)
        except CommandError:
            found = self._kernels(build.root)
            raise BuildError(
                f"kernelver {build.kernelver} is not installed in the image"
                f" (found: {', '.join(found) or 'none'})"
            ) from None
        return build.kernelver

    def _postinstall(self, build: Build, kernel: str) -> None:
        """Each script as `script <rootimg> <osvers> <arch> <profile> [args]`, outside a chroot,
        with environvar's pairs and then the IMG_* variables (rh/genimage 438-442, 848-857)."""
        attrs, root = build.image.attributes, build.root
        env = {
            "IMG_NAME": build.image.name,
            "IMG_ARCH": build.arch,
            "IMG_OSVER": attrs.get("osvers", ""),
            "IMG_PROFILE": attrs.get("profile", ""),
            "IMG_KERNELVERSION": kernel,
            "IMG_PKGLIST": attrs.get("pkglist", ""),
            "IMG_PKGDIR": attrs.get("pkgdir", ""),
            "IMG_OTHERPKGLIST": attrs.get("otherpkglist", ""),
            "IMG_OTHERPKGDIR": attrs.get("otherpkgdir", ""),
            "IMG_ROOTIMGDIR": root,
        }
        identity = [attrs.get(k, "") for k in ("osvers", "osarch", "profile")]
        pairs = [*build.environ, *(f"{k}={v}" for k, v in env.items())]
        for script, args in parse_postinstall(attrs.get("postinstall", "")):
            self._run(["env", *pairs, script, root, *identity, *args], build.log)

    def _copy_kernel(self, build: Build, version: str) -> None:
        """The first of KERNEL_FILES to `kernel`, before postinstall as genimage does (734-744)."""
        if not version:
            return
        files = " ".join(q(f.format(v=version)) for f in KERNEL_FILES)
        kernel = q(f"{build.dirs.staging}/kernel")
        self._sh(
            f"cd {q(build.root)} && for k in {files}; do"
            f' if [ -f "$k" ]; then cp "$k" {kernel}; break; fi; done && [ -f {kernel} ]',
            build.log,
        )

    def _copy_initrd(self, build: Build, version: str) -> None:
        """The image's own initramfs, after postinstall (which may have rebuilt it), as the
        stateless and statelite initrds (genimage builds its own at this point, 1013-1019)."""
        if not version:
            return
        initrd = q(f"boot/initramfs-{version}.img")
        staging = q(build.dirs.staging)
        copies = " && ".join(f"cp {initrd} {staging}/{name}" for name in INITRDS)
        note = q(f"note: no /boot/initramfs-{version}.img in the image; no initrd")
        self._sh(
            f"cd {q(build.root)} && if [ -f {initrd} ]; then {copies}; else echo {note}; fi",
            build.log,
        )

    # ------------------------------------------------------------ pack

    def pack(self, image: RenderedImage, log: Log) -> Optional[int]:
        """Pack staging (or a copy of the root in use) and switch to it as a new generation."""
        dirs = ImageDirs(image.rootimgdir)
        found = survey(self.transport, dirs)
        adopt_foreign(self.transport, found, log)
        kept = kept_match(found, image)
        if kept is not None:
            log(f"generation {kept} was built and packed from these inputs: switching to it")
            switch(self.transport, dirs, kept, log)
            return kept
        if not self._prepare_staging(image, found, log):
            self.genimage(image, log)
        root = posixpath.join(dirs.staging, "rootimg")
        restored = self._undo_liteimg(root, log)
        if image.statelite:
            self._sh(self._root_fstab(image, root, "ro"), log)
            self._sync_into(image, root, log)
            self._sh(self._liteimg(image, root), log)
            if image.attributes.get("rootfstype") == "ramdisk":
                self._archive(image, root, f"{dirs.staging}/rootimg-statelite.gz", log, lite=True)
        else:
            if restored:
                self._sh(self._root_fstab(image, root, "rw"), log)
            self._sync_into(image, root, log)
            zones = self._zone_files(root)
            self._archive(image, root, self._archive_path(dirs), log, includes=zones)
        digests = {"build": image.digests["build"], "pack": image.digests["pack"]}
        generation = Generation(found.highest + 1, dict(digests), self.commit, now())
        promote(self.transport, found, generation, log)
        gone = prune(self.transport, found, self.options.generations, log)
        if gone:
            log(f"removed old generation(s) {', '.join(map(str, gone))}")
        return generation.number

    def _prepare_staging(self, image: RenderedImage, found: Survey, log: Log) -> bool:
        """Staging holds a root built from this image's build inputs: genimage's, or a copy."""
        builds = build_digests(image)
        if found.staging_build in builds:
            return True
        matches = [n for n, g in found.generations.items() if g.digests.get("build") in builds]
        if not matches:
            log("no built root for these build inputs on the director: running genimage first")
            return False
        number = found.current if found.current in matches else max(matches)
        source, staging = found.dirs.gen(number), found.dirs.staging
        log(f"re-packing the root of generation {number}; the build inputs did not change")
        copies = " ".join(
            f"&& {{ [ ! -e {q(source)}/{f} ] || cp -l {q(source)}/{f} {q(staging)}/; }}"
            for f in ("kernel", *INITRDS)
        )
        self._sh(
            f"rm -rf {q(staging)} && mkdir -p {q(staging)}"
            f" && cp -al {q(source)}/rootimg {q(staging)}/rootimg {copies}",
            log,
        )
        return True

    def _sync_into(self, image: RenderedImage, root: str, log: Log) -> None:
        """Build-time synclist entries: replace (never modify in place: roots share inodes)."""
        copies = parse_synclist_for_pack(self._list(image, "synclists"))
        commands = []
        for copy in copies:
            dest = self._inside(image, root, copy.dest)
            target_dir = dest if copy.dest_is_dir else posixpath.dirname(dest)
            sources = " ".join(q(s) for s in copy.sources)
            commands.append(
                f"confined {q(target_dir)} && mkdir -p {q(target_dir)}"
                f" && cp -pL --remove-destination {sources} {q(dest)}"
            )
        if commands:
            self._sh(confine_script(root) + " && ".join(commands), log)

    @staticmethod
    def _inside(image: RenderedImage, root: str, path: str) -> str:
        """root + path, refused when it leaves the root (validation already refuses '..')."""
        try:
            return inside(root, path)
        except ValueError as exc:
            raise BuildError(f"image {image.name}: sync dest {exc}; fix the synclist") from None

    def _undo_liteimg(self, root: str, log: Log) -> bool:
        """Give a root copied from a statelite generation the files genimage left, before
        anything else is packed into it (packimage.pm does this for a stateless pack,
        lines 240-288); whether there was a structure to undo."""
        saved = self._query(f"test -f {q(root)}/.statelite/litefile.save && echo yes || true")
        if saved.strip() != "yes":
            return False
        log("the root has the statelite structure of an earlier pack: restoring its files")
        self._sh(restore_script(root), log)
        return True

    @staticmethod
    def _root_fstab(image: RenderedImage, root: str, option: str) -> str:
        """The root line of fstab read-only for statelite (statelite.pm updateFstab), else rw."""
        attrs = image.attributes
        return root_fstab_script(root, attrs.get("profile", ""), attrs.get("osarch", ""), option)

    def _zone_files(self, root: str) -> list[str]:
        """The zone file /etc/localtime names, and the one that links to: packed even when the
        exlist drops /usr/share/zoneinfo, as packimage does (packimage.pm 339-351)."""
        zones: list[str] = []
        path = "/etc/localtime"
        for _ in range(2):
            target = self._query(f"readlink -- {q(root + path)} || true").strip()
            if not target:
                break
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
            if not ZONE_RE.match(path):
                break
            zones.append("." + path)
        return zones

    def _liteimg(self, image: RenderedImage, root: str) -> str:
        try:
            return liteimg_script(root, litefile_rows(self.rendered, image), image.name)
        except ValueError as exc:
            raise BuildError(f"image {image.name}: litefile path {exc}; fix the litefile") from None

    def _archive_path(self, dirs: ImageDirs) -> str:
        return f"{dirs.staging}/{archive_name(self.options.method, self.options.compress)}"

    def _file_list(self, image: RenderedImage, lite: bool, extra: list[str]) -> str:
        """The packimage file list: all not excluded, plus all re-included, each path once.

        A statelite ramdisk keeps .statelite and .default (liteimg packs them);
        a stateless archive never holds them.  `extra` are more re-includes.
        """
        excludes, includes = parse_exlist(self._list(image, "exlist"))
        includes += extra
        if not lite:
            excludes += ALWAYS_EXCLUDED
        tests = " -a ".join(f"'!' -path {q(p)}" for p in excludes)
        listing = f"find . -xdev {tests}".rstrip()
        if includes and excludes:
            either = " -o ".join(f"-path {q(p)}" for p in includes)
            listing = f"{{ {listing}; find . -xdev '(' {either} ')'; }}"
        return f"{listing} | awk '!seen[$0]++'"

    def _archive(
        self,
        image: RenderedImage,
        root: str,
        out: str,
        log: Log,
        lite: bool = False,
        includes: Optional[list[str]] = None,
    ) -> None:
        files = self._file_list(image, lite, includes or [])
        tmp = f"{out}.part"
        compressor = self.options.compress
        if lite and compressor == "xz":
            compressor = "gzip"  # liteimg compresses its ramdisk with gzip or pigz only
        compress = {"gzip": "gzip -c -", "pigz": "pigz -c -", "xz": "xz -c -T0 -"}[compressor]
        if out.endswith(".sfs"):
            tree = f"{out}.tree"
            script = (
                f"rm -rf {q(tree)} && mkdir -m 0755 {q(tree)} && cd {q(root)} && {files}"
                f" | cpio -pdml --quiet {q(tree)} && mksquashfs {q(tree)} {q(tmp)} -noappend"
                f" -quiet && rm -rf {q(tree)}"
            )
        else:
            script = f"cd {q(root)} && {files} | cpio -o -H newc --quiet | {compress} > {q(tmp)}"
        self._sh(f"umask 0077; {script} && chmod 0644 {q(tmp)} && mv -f {q(tmp)} {q(out)}", log)


def _environ(image: RenderedImage) -> list[str]:
    """environvar's pairs as NAME=value words, refused if one could be read as a command."""
    pairs = [f"{k}={v}" for k, v in parse_environvar(image.attributes.get("environvar", ""))]
    bad = [p for p in pairs if not ENV_PAIR_RE.match(p)]
    if bad:
        raise BuildError(
            f"image {image.name}: environvar pair {bad[0]!r} is not NAME=value; fix the attribute"
        )
    return pairs


def _kernel_hint(exc: CommandError, build: Build, pinned: list[str]) -> Optional[BuildError]:
    """Why a transaction failed, when kernelver's pin is the reason."""
    missing = [n for n in pinned if f"No match for argument: {n}" in exc.output]
    if missing:
        return BuildError(
            f"kernelver {build.kernelver}: no {missing[0]} in pkgdir or kerneldir"
            f" {build.kerneldir}; put that kernel's RPMs in a repository there"
            " (createrepo_c) or correct kernelver"
        )
    hidden = [line for line in exc.output.splitlines() if "by exclude filtering" in line]
    if build.kernelver and hidden:
        return BuildError(
            f"kernelver {build.kernelver} hides kernel* from every transaction but the"
            f" pkglist's pinned ones ({hidden[0].strip()}); list kernel packages in the"
            " pkglist, where they get that version"
        )
    return None


def _url(path: str) -> str:
    return path if is_url(path) else "file://" + path
