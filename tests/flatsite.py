"""Flat xCAT sites as they exist before imagespec: the input of `imagespec import` (and adopt).

`write_msc_site(install_dir, install_root)` writes an MSC-like director tree
under install_dir (what the director has under install_root): pkglists with
`#INCLUDE:`, otherpkglists with `-`/`--` lines, exlists, synclists naming
director-local and secret files, one postinstall dispatcher per profile
running scripts linked from `postinstall/<profile>.d/`, postscripts in a
subdirectory, and fake built rootimgdirs.  It returns the
`lsdef -t osimage -z` text and the `tabdump litefile` CSV of those images.
`write_sample_site` does the same for lists shaped like xCAT's own rh/rocky
samples.  Written from the facts of ../shared/XCAT-FORMATS.md, not copied.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

OSVERS, ARCH = "rocky8", "x86_64"

DISPATCHER = """#!/bin/sh
# Runs the scripts linked into {name}.d, in name order, with our arguments.
for s in "$(dirname "$0")"/{name}.d/*; do
    [ -x "$s" ] || continue
    "$s" "$@" || exit 1
done
"""


@dataclass
class FlatSite:
    stanzas: str  # lsdef -t osimage -z
    litefile: str  # tabdump litefile
    images: list[str]


def _write(root: Path, rel: str, text: str, mode: int = 0o644) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _link(root: Path, rel: str, target: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


def stanza_text(images: dict[str, dict[str, str]]) -> str:
    """Stanzas as lsdef -z prints them: objtype first, then sorted attributes, empty ones left out."""
    lines = ["# <xCAT data object stanza file>", ""]
    for name, attrs in images.items():
        lines += [f"{name}:", "    objtype=osimage"]
        lines += [f"    {k}={v}" for k, v in sorted(attrs.items()) if v != ""]
        lines.append("")
    return "\n".join(lines)


def litefile_text(rows: list[tuple[str, str, str]]) -> str:
    lines = ["#image,file,options,comments,disable"]
    for image, file, options in rows:
        opt = f'"{options}"' if options else ""
        lines.append(f'"{image}","{file}",{opt},,')
    return "\n".join(lines) + "\n"


def fake_rootimgdir(
    install_dir: Path, rel: str, statelite: bool = False, ramdisk: bool = False
) -> None:
    """A built image as genimage and packimage (or liteimg) leave it: liteimg writes
    .statelite/litefile.save into the root at every run, and a ramdisk root's archive
    rootimg-statelite.gz (xCAT-server/lib/xcat/plugins/statelite.pm lines 464, 574)."""
    root = install_dir / rel
    _write(root, "rootimg/etc/os-release", 'NAME="Rocky Linux"\n')
    _write(root, "rootimg/etc/hostname", "localhost\n")
    _write(root, "kernel", "kernel\n")
    _write(root, "initrd-stateless.gz", "initrd\n")
    if not statelite:
        _write(root, "rootimg.cpio.gz", "packed\n")
        return
    _write(root, "initrd-statelite.gz", "initrd\n")
    _write(root, "rootimg/.statelite/litefile.save", "/var/log/\n")
    if ramdisk:
        _write(root, "rootimg-statelite.gz", "packed\n")


def write_msc_site(
    install_dir: Path,
    install_root: str = "/install",
    director_sources: bool = True,
    erase_first: bool = True,
    conflict: bool = False,
    dispatcher: bool = True,
) -> FlatSite:
    """The MSC-like flat site: nine osimages on several levels (see the module docstring).

    director_sources: base.synclist names /etc/hosts and a 0600 munge key;
    erase_first: base.otherpkgs.pkglist has a `-name` line; conflict: a tenth
    osimage shares the xCAT profile `compute` with other packages (a loss).
    """
    r = install_root
    nb = "custom/netboot/rh"
    w = lambda rel, text, mode=0o644: _write(install_dir, rel, text, mode)  # noqa: E731
    w(f"{nb}/common/tools.pkglist", "# tools on every node\nhtop\nstrace\nlsof\n")
    w(
        f"{nb}/base.pkglist",
        "#INCLUDE:common/tools.pkglist#\nbash\nopenssh-server\nchrony,rsyslog\n\n# editors\nvim-minimal\n",
    )
    w(f"{nb}/aux.pkglist", "#INCLUDE:common/tools.pkglist#\nnfs-utils\nautofs\nsssd\n")
    w(f"{nb}/login.pkglist", "gcc\nmake\nemacs-nox\nxorg-x11-xauth\n")
    w(f"{nb}/compute.pkglist", "numactl\nhwloc\n#NEW_INSTALL_LIST#\n#ENV:LANG=C#\nkernel-tools\n")
    w(f"{nb}/compute-alt.pkglist", "numactl\n")
    w(f"{nb}/service.pkglist", "dhcp-server\nhttpd\ntftp-server\n")
    w(f"{nb}/datamover.pkglist", "rsync\nlftp\nhttpd\n")
    w(f"{nb}/mgmt.pkglist", "ansible-core\n")
    w(f"{nb}/sched.pkglist", "mariadb-server\n")
    first = "-NetworkManager-wifi\n" if erase_first else ""
    w(f"{nb}/base.otherpkgs.pkglist", f"{first}slurm/munge\n--firewalld\n")
    w(f"{nb}/compute.otherpkgs.pkglist", "slurm/slurm-slurmd\nslurm/slurm-pam_slurm\n")
    w(f"{nb}/base.exlist", "./usr/share/doc*\n./usr/share/man*\n+./usr/share/doc/bash*\n")
    w(f"{nb}/compute-min.exlist", "./usr/include*\n./usr/lib/locale*   # locales\n")
    sync = f"{r}/custom/sync/etc/motd -> /etc/motd\n{r}/custom/sync/etc/profile.d/site.sh -> /etc/profile.d/\n"
    if director_sources:
        sync += f"/etc/hosts -> /etc/hosts\n{r}/custom/secrets/munge.key -> /etc/munge/munge.key\n"
    w(f"{nb}/base.synclist", sync)
    w(
        f"{nb}/login.synclist",
        f"{r}/custom/sync/etc/issue.login -> /etc/issue\n"
        f"{r}/custom/sync/etc/issue.net -> (login01,login02) /etc/issue.net\n"
        f"APPEND:\n{r}/custom/sync/etc/hosts.allow.login -> /etc/hosts.allow\n",
    )
    w("custom/sync/etc/motd", "Welcome to the cluster\n")
    w("custom/sync/etc/profile.d/site.sh", "export SITE=msc\n", 0o755)
    w("custom/sync/etc/issue.login", "login node\n")
    w("custom/sync/etc/issue.net", "authorised use only\n")
    w("custom/sync/etc/hosts.allow.login", "sshd: ALL\n")
    w("custom/secrets/munge.key", "SECRET-MUNGE-KEY-DO-NOT-COPY\n", 0o600)
    pi = f"{nb}/postinstall"
    w(
        f"{pi}/scripts/selinux-off",
        '#!/bin/sh\nsed -i s/enforcing/disabled/ "$1/etc/selinux/config"\n',
        0o755,
    )
    w(f"{pi}/scripts/stamp", '#!/bin/sh\ndate > "$1/etc/image-stamp"\n', 0o755)
    w(f"{pi}/scripts/tune", '#!/bin/sh\necho tuned > "$1/etc/tuned"\n', 0o755)
    w(f"{pi}/login", '#!/bin/sh\ntouch "$1/etc/login-node"\n', 0o755)
    if dispatcher:
        w(f"{pi}/base", DISPATCHER.format(name="base"), 0o755)
        w(f"{pi}/compute", DISPATCHER.format(name="compute"), 0o755)
        _link(install_dir, f"{pi}/base.d/10-selinux", "../scripts/selinux-off")
        _link(install_dir, f"{pi}/base.d/90-stamp", f"{r}/{pi}/scripts/stamp")
        _link(install_dir, f"{pi}/compute.d/20-tune", "../scripts/tune")
    w("postscripts/site/setup-lustre", "#!/bin/sh\nmount -t lustre mds:/fs /lustre\n", 0o755)
    w("postscripts/confignetwork", "#!/bin/sh\n# xCAT's own\n", 0o755)

    def image(profile: str, pkglists: list[str], **extra: str) -> dict[str, str]:
        attrs = {
            "imagetype": "linux",
            "osname": "Linux",
            "osvers": OSVERS,
            "osarch": ARCH,
            "profile": profile,
            "provmethod": "netboot",
            "permission": "755",
            "pkgdir": f"{r}/{OSVERS}/{ARCH}",
            "otherpkgdir": f"{r}/post/otherpkgs/{OSVERS}/{ARCH}",
            "pkglist": ",".join(f"{r}/{nb}/{p}.pkglist" for p in pkglists),
            "otherpkglist": f"{r}/{nb}/base.otherpkgs.pkglist",
            "exlist": f"{r}/{nb}/base.exlist",
            "synclists": f"{r}/{nb}/base.synclist",
            "postinstall": f"{r}/{pi}/base",
        }
        attrs.update(extra)
        return attrs

    compute_extra = {
        "otherpkglist": f"{r}/{nb}/base.otherpkgs.pkglist,{r}/{nb}/compute.otherpkgs.pkglist",
        "postinstall": f"{r}/{pi}/base,{r}/{pi}/compute hpc",
        "postscripts": "confignetwork,site/setup-lustre",
        "addkcmdline": "nosmt",
    }
    images = {
        "rocky8-x86_64-netboot-base": image("base", ["base"]),
        "rocky8-x86_64-netboot-aux": image("aux", ["base", "aux"]),
        "rocky8-x86_64-netboot-login": image(
            "login",
            ["base", "aux", "login"],
            synclists=f"{r}/{nb}/base.synclist,{r}/{nb}/login.synclist",
            postinstall=f"{r}/{pi}/base,{r}/{pi}/login",
            postscripts="confignetwork,site/setup-lustre",
        ),
        "rocky8-x86_64-netboot-compute": image(
            "compute", ["base", "aux", "compute"], postbootscripts="site-health", **compute_extra
        ),
        "rocky8-x86_64-statelite-compute-min": image(
            "compute-min",
            ["base", "compute"],
            exlist=f"{r}/{nb}/base.exlist,{r}/{nb}/compute-min.exlist",
            provmethod="statelite",
            rootfstype="ramdisk",
            **compute_extra,
        ),
        "rocky8-x86_64-netboot-service": image(
            "service", ["base", "aux", "service"], rootimgdir=f"{r}/netboot/images/service"
        ),
        "rocky8-x86_64-netboot-datamover": image("datamover", ["base", "aux", "datamover"]),
        "rocky8-x86_64-netboot-mgmt": image("mgmt", ["base", "mgmt"]),
        "rocky8-x86_64-netboot-sched": image("sched", ["base", "aux", "sched"]),
    }
    if conflict:
        images["rocky8-x86_64-netboot-compute-alt"] = image(
            "compute",
            ["base", "aux", "compute-alt"],
            rootimgdir=f"{r}/netboot/images/compute-alt",
            postbootscripts="site-health",
            **compute_extra,
        )
    for _name, attrs in images.items():
        default = f"netboot/{OSVERS}/{ARCH}/{attrs['profile']}"
        rel = attrs.get("rootimgdir", f"{r}/{default}")[len(r) + 1 :]
        statelite = attrs["provmethod"] == "statelite"
        ramdisk = attrs.get("rootfstype") == "ramdisk"
        fake_rootimgdir(install_dir, rel, statelite, ramdisk)
    rows = [
        ("ALL", "/etc/lvm/", "tmpfs"),
        ("compute", "/etc/slurm/", "tmpfs"),
        ("rocky8-x86_64-statelite-compute-min", "/etc/adjtime", ""),
        ("rocky8-x86_64-statelite-compute-min", "/var/log/", "tmpfs"),
        ("rocky8-x86_64-statelite-compute-min", "/etc/ssh/", "tmpfs,rw"),
    ]
    return FlatSite(stanza_text(images), litefile_text(rows), sorted(images))


def write_sample_site(install_dir: Path, install_root: str = "/install") -> FlatSite:
    """Lists shaped like xCAT's rh/rocky netboot samples: compute and service, a statelite
    compute, exlists, a postinstall script and otherpkgs lists."""
    r = install_root
    nb = "custom/netboot/rocky"
    w = lambda rel, text, mode=0o644: _write(install_dir, rel, text, mode)  # noqa: E731
    core = "bash\nnfs-utils\nopenssl\ndhclient\nkernel\nopenssh-server\nopenssh-clients\niputils\nbc\nirqbalance\nprocps-ng\nwget\nsudo\ngzip\ntar\nrsync\nchrony\n"
    w(f"{nb}/compute.rocky8.x86_64.pkglist", core + "rdma-core\n")
    w(
        f"{nb}/service.rocky8.x86_64.pkglist",
        core + "perl-DBD-MySQL\nmariadb-server\nhttpd\ndhcp-server\nbind\n",
    )
    w(
        f"{nb}/compute.rocky8.x86_64.exlist",
        "./boot*\n./usr/include*\n./usr/lib/locale*\n./usr/share/man*\n./usr/share/doc*\n./usr/share/locale*\n+./usr/share/locale/en_US*\n+./usr/share/locale/locale.alias\n",
    )
    w(f"{nb}/service.rocky8.x86_64.exlist", "./usr/share/man*\n./usr/share/doc*\n")
    w(
        f"{nb}/compute.rocky8.x86_64.postinstall",
        "#!/bin/sh\ninstallroot=$1\necho 'tmpfs /tmp tmpfs defaults 0 0' >> \"$installroot/etc/fstab\"\n",
        0o755,
    )
    w(
        f"{nb}/service.rocky8.x86_64.otherpkgs.pkglist",
        "xcat/xcat-core/xCATsn\nxcat/xcat-dep/rh8/x86_64/conserver-xcat\n",
    )
    w(f"{nb}/compute.rocky8.x86_64.otherpkgs.pkglist", "xcat/xcat-core/xCAT-client\n")

    def image(profile: str, provmethod: str = "netboot") -> dict[str, str]:
        base = "service" if profile == "service" else "compute"
        return {
            "imagetype": "linux",
            "osname": "Linux",
            "osvers": OSVERS,
            "osarch": ARCH,
            "osdistroname": f"{OSVERS}-{ARCH}",
            "profile": profile,
            "provmethod": provmethod,
            "permission": "755",
            "pkgdir": f"{r}/{OSVERS}/{ARCH}",
            "otherpkgdir": f"{r}/post/otherpkgs/{OSVERS}/{ARCH}",
            "pkglist": f"{r}/{nb}/{base}.rocky8.x86_64.pkglist",
            "otherpkglist": f"{r}/{nb}/{base}.rocky8.x86_64.otherpkgs.pkglist",
            "exlist": f"{r}/{nb}/{base}.rocky8.x86_64.exlist",
            "postinstall": f"{r}/{nb}/compute.rocky8.x86_64.postinstall"
            if base == "compute"
            else "",
            "synclists": "",
        }

    images = {
        "rocky8-x86_64-netboot-compute": image("compute"),
        "rocky8-x86_64-netboot-service": image("service"),
        "rocky8-x86_64-statelite-compute": image("statelite-compute", "statelite"),
    }
    rows = [
        ("ALL", "/etc/adjtime", "tmpfs"),
        ("ALL", "/etc/securetty", "tmpfs"),
        ("ALL", "/var/log/", "tmpfs"),
        ("rocky8-x86_64-statelite-compute", "/etc/ntp.conf", ""),
        ("rocky8-x86_64-statelite-compute", "/etc/syslog.conf", "tmpfs"),
        ("rocky8-x86_64-statelite-compute", "/var/lib/dhclient/", "tmpfs"),
    ]
    for _name, attrs in images.items():
        rel = f"netboot/{OSVERS}/{ARCH}/{attrs['profile']}"
        fake_rootimgdir(install_dir, rel, attrs["provmethod"] == "statelite")
    return FlatSite(stanza_text(images), litefile_text(rows), sorted(images))


def write_files(
    install_dir: Path, site: FlatSite, where: Optional[Path] = None
) -> tuple[Path, Path]:
    """The stanza and litefile texts as files (for --stanzas and --litefile)."""
    where = where or install_dir.parent
    stanzas, litefile = where / "osimages.stanza", where / "litefile.csv"
    stanzas.write_text(site.stanzas)
    litefile.write_text(site.litefile)
    return stanzas, litefile


def load_into_stub(stub_bin: Path, site: FlatSite, install_dir: Path, where: Path) -> None:
    """Define the flat site's osimages and litefile rows in the xCAT stand-in, as the
    director's own database holds them (mkdef -z of the lsdef text, tabrestore)."""
    import subprocess

    _stanzas, litefile = write_files(install_dir, site, where)
    mkdef, tabrestore = str(stub_bin / "mkdef"), str(stub_bin / "tabrestore")
    subprocess.run([mkdef, "-z"], input=site.stanzas.encode(), check=True, capture_output=True)
    subprocess.run([tabrestore, str(litefile)], check=True, capture_output=True)
