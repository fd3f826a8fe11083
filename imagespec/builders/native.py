"""The native builder: what genimage and packimage/liteimg do, with dnf and no xCAT.

genimage: a clean root in the image's staging directory, `dnf --installroot`
with a generated repository configuration (pkgdir, otherpkgdir), one
transaction per #NEW_INSTALL_LIST# section, otherpkgs erases before and
after, the postinstall chain outside any chroot, kernel and initrd copied
out.  pack: build-time synclist entries copied in, then the root minus the
exlist into a cpio or squashfs archive (or the statelite structure), and the
staging directory becomes the new generation with one atomic switch.

Every command runs on the director through its transport, so a remote
director only needs dnf, and --dry-run prints each command line.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from ..model import BuildOptions
from ..render import RenderedDirector, RenderedImage
from ..render.readers import (
    OtherPass,
    parse_exlist,
    parse_litefile,
    parse_otherpkglist,
    parse_pkglist,
    parse_postinstall,
    parse_synclist_for_pack,
    releasever,
)
from ..runner import Effect, Result
from ..safe import inside, unsafe_char
from ..state import ImageState, now
from ..transport.base import Transport
from . import Log, run_logged
from .generations import (
    BUILD_FILE,
    BuildError,
    Generation,
    ImageDirs,
    Survey,
    adopt_foreign,
    promote,
    prune,
    q,
    survey,
    switch,
    write_text,
)
from .liteimg import confine_script, liteimg_script

INITRDS = ("initrd-stateless.gz", "initrd-statelite.gz")
# Never packed: the statelite work areas (as packimage does).
ALWAYS_EXCLUDED = ("./.statelite*", "./.default*", "./.statebackup*", "./etc/init.d/statelite")
ARCHIVES = {
    ("cpio", "gzip"): "rootimg.cpio.gz",
    ("cpio", "pigz"): "rootimg.cpio.gz",
    ("cpio", "xz"): "rootimg.cpio.xz",
}


@dataclass
class Repo:
    id: str
    baseurl: str


@dataclass
class Repos:
    base: list[Repo]
    other: dict[str, Repo]  # otherpkglist directory part -> repository

    def config(self) -> bytes:
        """dnf.conf for the build: only these repositories, unsigned local media allowed."""
        lines = ["[main]", "reposdir=/dev/null", "gpgcheck=0", "skip_if_unavailable=False", ""]
        for repo in [*self.base, *self.other.values()]:
            if unsafe_char(repo.baseurl) is not None or " " in repo.baseurl:
                raise BuildError(
                    f"repository {repo.baseurl!r} holds spaces or control characters, which would"
                    " inject lines into dnf's configuration; rename it"
                )
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

    def nodeset(self, image: RenderedImage, log: Log) -> Optional[int]:
        return None  # no xCAT: nothing copies kernels to tftp for nodes

    # ------------------------------------------------------------ genimage

    def genimage(self, image: RenderedImage, log: Log) -> None:
        """Build a clean root in staging; the image in use is not touched."""
        dirs = ImageDirs(image.rootimgdir)
        attrs = image.attributes
        root = posixpath.join(dirs.staging, "rootimg")
        arch_opts = self._arch_options(attrs.get("osarch", ""), log)
        others = parse_otherpkglist(self._list(image, "otherpkglist"))
        repos = self._repositories(image, others)
        self._sh(f"rm -rf {q(dirs.staging)} && mkdir -p {q(root)} {q(dirs.staging)}/home", log)
        write_text(self.transport, f"{dirs.staging}/dnf.conf", repos.config(), log)
        write_text(
            self.transport, f"{dirs.staging}/home/.rpmmacros", b"%_dbpath /var/lib/rpm\n", log
        )
        dnf = [
            "env",
            f"HOME={dirs.staging}/home",
            "dnf",
            "-y",
            "-c",
            f"{dirs.staging}/dnf.conf",
            f"--installroot={root}",
            f"--releasever={releasever(attrs.get('osvers', ''))}",
            *arch_opts,
            "--disablerepo=*",
        ]
        base_ids = [f"--enablerepo={r.id}" for r in repos.base]
        for names in parse_pkglist(self._list(image, "pkglist")):
            self._run([*dnf, *base_ids, "install", *names], log)
        for other in others:
            self._other_pass(dnf, base_ids, repos, other, log)
        self._run(["rm", "-rf", f"{root}/var/cache/dnf"], log)
        self._postinstall(image, root, log)
        self._copy_kernel(image, dirs, root, log)
        marker = {"build": image.digests["build"], "commit": self.commit, "time": now()}
        write_text(self.transport, f"{dirs.staging}/{BUILD_FILE}", _line(marker), log)

    def _other_pass(
        self, dnf: list[str], base_ids: list[str], repos: Repos, other: OtherPass, log: Log
    ) -> None:
        """-name erases before, then the install, then --name erases (erase failures ignored)."""
        ids = base_ids + [f"--enablerepo={repos.other[d].id}" for d in sorted(other.install)]
        if other.pre_remove:
            self._erase([*dnf, *ids, "remove", *other.pre_remove], log)
        names = [n for d in sorted(other.install) for n in other.install[d]]
        if names:
            self._run([*dnf, *ids, "install", *names], log)
        if other.post_remove:
            self._erase([*dnf, *ids, "remove", *other.post_remove], log)

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

    def _repositories(self, image: RenderedImage, others: list[OtherPass]) -> Repos:
        attrs = image.attributes
        base: list[Repo] = []
        for entry in [p for p in attrs.get("pkgdir", "").split(",") if p]:
            found = [entry] if is_url(entry) else self._find_repodata(entry)
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
        return Repos(base, self._other_repositories(image, others))

    def _find_repodata(self, directory: str) -> list[str]:
        """Every directory under `directory` holding repodata (EL8 media: BaseOS, AppStream)."""
        out = self._query(
            f"find {q(directory)} -type d -name repodata 2>/dev/null | LC_ALL=C sort || true"
        )
        return [posixpath.dirname(line) for line in out.splitlines() if line.strip()]

    def _has_repodata(self, directory: str) -> bool:
        return self._query(f"test -d {q(directory)}/repodata && echo yes || true").strip() == "yes"

    def _other_repositories(self, image: RenderedImage, others: list[OtherPass]) -> dict[str, Repo]:
        otherpkgdir = image.attributes.get("otherpkgdir", "")
        subdirs = sorted({d for p in others for d in p.install})
        if subdirs and not otherpkgdir:
            raise BuildError(f"image {image.name} has an otherpkglist but no otherpkgdir")
        repos = {}
        for index, subdir in enumerate(subdirs, 1):
            path = posixpath.join(otherpkgdir, subdir) if subdir else otherpkgdir
            if not is_url(path) and not self._has_repodata(path):
                raise BuildError(
                    f"image {image.name}: the otherpkglist installs from"
                    f" '{subdir or '.'}/' but {path} has no repodata; run `createrepo_c {path}`"
                )
            repos[subdir] = Repo(f"imagespec-other-{index}", _url(path))
        return repos

    def _postinstall(self, image: RenderedImage, root: str, log: Log) -> None:
        """Each script as `script <rootimg> <osvers> <arch> <profile> [args]`, outside a chroot."""
        attrs = image.attributes
        env = {
            "IMG_NAME": image.name,
            "IMG_ARCH": attrs.get("osarch", ""),
            "IMG_OSVER": attrs.get("osvers", ""),
            "IMG_PROFILE": attrs.get("profile", ""),
            "IMG_KERNELVERSION": attrs.get("kernelver", ""),
            "IMG_PKGLIST": attrs.get("pkglist", ""),
            "IMG_PKGDIR": attrs.get("pkgdir", ""),
            "IMG_OTHERPKGLIST": attrs.get("otherpkglist", ""),
            "IMG_OTHERPKGDIR": attrs.get("otherpkgdir", ""),
            "IMG_ROOTIMGDIR": root,
        }
        identity = [attrs.get(k, "") for k in ("osvers", "osarch", "profile")]
        pairs = [f"{k}={v}" for k, v in env.items()]
        for script, args in parse_postinstall(attrs.get("postinstall", "")):
            self._run(["env", *pairs, script, root, *identity, *args], log)

    def _copy_kernel(self, image: RenderedImage, dirs: ImageDirs, root: str, log: Log) -> None:
        """kernel and initrd-*.gz from the image's /boot, as genimage leaves them in rootimgdir."""
        listing = self._query(f"cd {q(root)}/boot 2>/dev/null && ls -1 || true").split()
        versions = sorted(n[len("vmlinuz-") :] for n in listing if n.startswith("vmlinuz-"))
        wanted = image.attributes.get("kernelver")
        if wanted and wanted not in versions:
            found = ", ".join(versions) or "none"
            raise BuildError(f"kernelver {wanted} is not installed in the image (found: {found})")
        if not versions:
            log("note: the image has no kernel (no /boot/vmlinuz-*); no kernel or initrd")
            return
        version = wanted or versions[-1]
        boot = f"{root}/boot"
        script = f"cp {q(boot)}/vmlinuz-{q(version)} {q(dirs.staging)}/kernel"
        initrd = f"initramfs-{version}.img"
        if initrd in listing:
            for name in INITRDS:
                script += f" && cp {q(boot)}/{q(initrd)} {q(dirs.staging)}/{name}"
        else:
            log(f"note: no /boot/{initrd} in the image; no initrd")
        self._sh(script, log)

    # ------------------------------------------------------------ pack

    def pack(self, image: RenderedImage, log: Log) -> Optional[int]:
        """Pack staging (or a copy of the root in use) and switch to it as a new generation."""
        dirs = ImageDirs(image.rootimgdir)
        found = survey(self.transport, dirs)
        adopt_foreign(self.transport, found, log)
        kept = self._kept_match(image, found)
        if kept is not None:
            log(f"generation {kept} was built and packed from these inputs: switching to it")
            switch(self.transport, dirs, kept, log)
            return kept
        if not self._prepare_staging(image, found, log):
            self.genimage(image, log)
        root = posixpath.join(dirs.staging, "rootimg")
        self._sync_into(image, root, log)
        if image.statelite:
            self._sh(self._liteimg(image, root), log)
            if image.attributes.get("rootfstype") == "ramdisk":
                self._archive(image, root, f"{dirs.staging}/rootimg-statelite.gz", log, lite=True)
        else:
            self._archive(image, root, self._archive_path(dirs), log)
        digests = {"build": image.digests["build"], "pack": image.digests["pack"]}
        generation = Generation(found.highest + 1, dict(digests), self.commit, now())
        promote(self.transport, found, generation, log)
        gone = prune(self.transport, found, self.options.generations, log)
        if gone:
            log(f"removed old generation(s) {', '.join(map(str, gone))}")
        return generation.number

    def _kept_match(self, image: RenderedImage, found: Survey) -> Optional[int]:
        """A kept generation with exactly these build and pack inputs (after a rollback),
        unless genimage just built a fresh root, which is always packed."""
        if found.staging_build == image.digests["build"]:
            return None
        wanted = {"build": image.digests["build"], "pack": image.digests["pack"]}
        matches = [
            n
            for n, g in found.generations.items()
            if not g.adopted and {k: g.digests.get(k) for k in wanted} == wanted
        ]
        return max(matches) if matches else None

    def _prepare_staging(self, image: RenderedImage, found: Survey, log: Log) -> bool:
        """Staging holds a root built from this image's build inputs: genimage's, or a copy."""
        build = image.digests["build"]
        if found.staging_build == build:
            return True
        matches = [n for n, g in found.generations.items() if g.digests.get("build") == build]
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

    def _liteimg(self, image: RenderedImage, root: str) -> str:
        try:
            return liteimg_script(root, self._litefile_rows(image), image.name)
        except ValueError as exc:
            raise BuildError(f"image {image.name}: litefile path {exc}; fix the litefile") from None

    def _litefile_rows(self, image: RenderedImage) -> list[tuple[str, str]]:
        csv_files = [p for p in image.files if p.endswith(".litefile.csv")]
        text = "".join(self.rendered.files[p].data.decode() for p in csv_files)
        return parse_litefile(text)

    def _archive_path(self, dirs: ImageDirs) -> str:
        method, compress = self.options.method, self.options.compress
        if method == "squashfs":
            return f"{dirs.staging}/rootimg.sfs"
        return f"{dirs.staging}/{ARCHIVES[(method, compress)]}"

    def _file_list(self, image: RenderedImage, lite: bool) -> str:
        """The packimage file list: all not excluded, plus all re-included, each path once.

        A statelite ramdisk keeps .statelite and .default (liteimg packs them);
        a stateless archive never holds them.
        """
        excludes, includes = parse_exlist(self._list(image, "exlist"))
        if not lite:
            excludes += ALWAYS_EXCLUDED
        tests = " -a ".join(f"'!' -path {q(p)}" for p in excludes)
        listing = f"find . -xdev {tests}".rstrip()
        if includes and excludes:
            either = " -o ".join(f"-path {q(p)}" for p in includes)
            listing = f"{{ {listing}; find . -xdev '(' {either} ')'; }}"
        return f"{listing} | awk '!seen[$0]++'"

    def _archive(
        self, image: RenderedImage, root: str, out: str, log: Log, lite: bool = False
    ) -> None:
        files = self._file_list(image, lite)
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


def _url(path: str) -> str:
    return path if is_url(path) else "file://" + path


def _line(doc: Mapping[str, Optional[str]]) -> bytes:
    return (json.dumps(doc, sort_keys=True) + "\n").encode()
