"""What xCAT's rh/genimage does to a root besides running dnf, as shell text for the director.

The native builder's genimage runs these around its dnf transactions so a
root it builds matches one xCAT's genimage builds (line numbers name
xCAT-server/share/xcat/netboot/rh/genimage, xcat-core 2.19):

- the kernel* packages pinned to `kernelver` (lines 462-488);
- a temporary `uname` in the root that reports the image's kernel and
  architecture to the package scriptlets and postinstall scripts that run
  `uname` inside it (use_hackuname, lines 2547-2601);
- the files genimage writes to leave the image "approximating a normal
  install" (generic_post, lines 2110-2241) and the vendor repositories it
  disables (lines 823-831);
- the root line of /etc/fstab made read-only for statelite
  (statelite.pm updateFstab, lines 1001-1022).

Every edit replaces a regular file (never one reached through a symlink) and
writes nowhere but under the root.  Pure: values in, text out.
"""

from __future__ import annotations

import re
import shlex

from .liteimg import confine_script

# rh/genimage line 464: the pkglist entries pinned to kernelver.
KERNEL_PACKAGE_RE = re.compile(r"^kernel(-headers|-devel|-bootwrapper|-tools)?$")
# Every other transaction hides these from dnf while kernelver is set (line 667).
KERNEL_EXCLUDE = "--exclude=kernel*"
# rh/genimage line 825: vendor repository files shipped enabled, which genimage disables.
INTERNET_REPO_FILES = (
    "oracle-linux-ol8.repo",
    "oracle-linux-ol9.repo",
    "oracle-linux-ol10.repo",
    "uek-ol8.repo",
    "uek-ol9.repo",
    "uek-ol10.repo",
    "Rocky-AppStream.repo",
    "Rocky-BaseOS.repo",
    "Rocky-Extras.repo",
    "rocky.repo",
    "rocky-extras.repo",
    "CentOS-Base.repo",
    "centos.repo",
    "centos-addons.repo",
    "almalinux-ha.repo",
    "almalinux-nfv.repo",
    "almalinux-plus.repo",
    "almalinux-powertools.repo",
    "almalinux.repo",
    "almalinux-resilientstorage.repo",
    "almalinux-rt.repo",
)
# rh/genimage using_systemd (lines 2074-2107): osvers families and their first systemd release.
SYSTEMD_FROM = {
    "fedora": 15,
    "rhels": 7,
    "centos": 7,
    "rocky": 8,
    "alma": 8,
    "ol": 7,
    "rhelhpc": 7,
}
IFACE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@-]*$")
UNAME_MARK = "imagespec: the uname of the image being built"
NEW = ".imagespec-new"


def _q(text: str) -> str:
    return shlex.quote(text)


def pin_kernel(names: list[str], version: str) -> tuple[list[str], list[str]]:
    """(names with kernel* entries pinned to `version`, the pinned names); unchanged if no version."""
    if not version:
        return list(names), []
    out = [f"{n}-{version}" if KERNEL_PACKAGE_RE.match(n) else n for n in names]
    return out, [n for n in out if n not in names]


def uses_systemd(osvers: str) -> bool:
    """Whether genimage treats the image as booting systemd (then /tmp is no fstab tmpfs)."""
    for family, first in SYSTEMD_FROM.items():
        match = re.search(rf"{family}(\d+)", osvers)
        if match:
            return int(match.group(1)) >= first
    return False


def fstab_text(profile: str, arch: str, osvers: str) -> str:
    """/etc/fstab of a diskless image as generic_post writes it (lines 2114-2131)."""
    lines = [
        "devpts  /dev/pts  devpts  gid=5,mode=620  0 0",
        "tmpfs   /dev/shm  tmpfs   defaults        0 0",
        "proc    /proc     proc    defaults        0 0",
        "sysfs   /sys      sysfs   defaults        0 0",
    ]
    if not uses_systemd(osvers):
        lines += [
            "tmpfs   /tmp      tmpfs   defaults,size=10m  0 2",
            "tmpfs   /var/tmp  tmpfs   defaults,size=10m  0 2",
        ]
    lines.append(f"{profile}_{arch}  /  tmpfs  rw  0 1")
    return "\n".join(lines) + "\n"


def _put(path: str, text: str, mode: str = "0644") -> str:
    """Replace `path` (relative to the root) with `text`; a symlink there is replaced too."""
    return f"rm -f {_q(path)} && printf '%s' {_q(text)} > {_q(path)} && chmod {mode} {_q(path)}"


def _edit(path: str, command: str) -> str:
    """Run `command` on a copy of regular file `path` and put the copy in its place.

    Replacing (never writing in place) keeps files shared by hard links with
    another generation intact.  `command` gets the copy's name as $1.
    """
    new = path + NEW
    return (
        f"if [ -f {_q(path)} ] && [ ! -L {_q(path)} ]; then"
        f" cp -p {_q(path)} {_q(new)} && set -- {_q(new)} && {command}"
        f" && mv -f {_q(new)} {_q(path)}; fi"
    )


def _network_lines(nodebootif: str, otherifce: str) -> list[str]:
    """ifcfg files for the boot interface (not started by the OS) and the others (lines 2142-2152)."""
    scripts = "etc/sysconfig/network-scripts"
    files = [(nodebootif, "no")] if nodebootif else []
    files += [(name, "yes") for name in otherifce.split(",") if name]
    bad = [name for name, _ in files if not IFACE_RE.match(name)]
    if bad:
        raise ValueError(f"'{bad[0]}' is not a network interface name")
    if not files:
        return []
    puts = [
        _put(f"{scripts}/ifcfg-{name}", f"ONBOOT={onboot}\nBOOTPROTO=dhcp\nDEVICE={name}\n")
        for name, onboot in files
    ]
    return [f"if [ -d {scripts} ]; then confined ./{scripts}; {' && '.join(puts)}; fi"]


def generic_post_script(
    root: str, profile: str, arch: str, osvers: str, nodebootif: str = "", otherifce: str = ""
) -> str:
    """The files genimage writes after the packages are in (generic_post, lines 2110-2241)."""
    network = _put("etc/sysconfig/network", "NETWORKING=yes\n")
    resolv = "# imagespec: no name servers in the image; the node gets them at boot\n"
    lines = [
        f"cd {_q(root)}",
        confine_script(root),
        "confined ./etc",
        _put("etc/fstab", fstab_text(profile, arch, osvers)),
        f"if [ -d etc/sysconfig ]; then confined ./etc/sysconfig; {network}; fi",
        _put("etc/resolv.conf", resolv),
        *_network_lines(nodebootif, otherifce),
    ]
    if arch != "s390x":
        lines += [
            "if [ ! -e etc/securetty ] && [ ! -L etc/securetty ]; then"
            " : > etc/securetty && chmod 0600 etc/securetty; fi",
            _edit("etc/securetty", "printf 'ttyS0\\nttyS1\\n' >> \"$1\""),
        ]
    lines += [
        _edit("etc/passwd", "sed -i -e 's/^root:\\*/root:x/' \"$1\""),
        "if [ -d etc/skel ] && [ -d root ] && [ ! -L root ]; then confined ./root;"
        " for f in etc/skel/.[!.]* etc/skel/..?*; do"
        ' if [ -f "$f" ] && [ ! -L "$f" ]; then cp -p --remove-destination "$f" root/; fi;'
        " done; fi",
    ]
    return "\n".join(lines)


def disable_repos_script(root: str) -> str:
    """Disable the vendor repositories the image's release package enabled (lines 823-831)."""
    edits = [
        _edit(
            f"etc/yum.repos.d/{name}",
            "sed -i -e 's/^[[:space:]]*enabled[[:space:]]*=[[:space:]]*1/enabled=0/' \"$1\"",
        )
        for name in INTERNET_REPO_FILES
    ]
    return "\n".join(
        [
            f"cd {_q(root)}",
            confine_script(root),
            "if [ -d etc/yum.repos.d ]; then confined ./etc/yum.repos.d; fi",
            *edits,
        ]
    )


def root_fstab_script(root: str, profile: str, arch: str, option: str) -> str:
    """Set the option of the root line genimage wrote (`ro` for statelite, as liteimg does)."""
    other = "rw" if option == "ro" else "ro"
    name = f"{profile}_{arch}".replace(".", "[.]")
    sed = f"sed -i -E -e '/^{name}[[:space:]]/ s/\\b{other}\\b/{option}/' \"$1\""
    return "\n".join(
        [f"cd {_q(root)}", confine_script(root), "confined ./etc", _edit("etc/fstab", sed)]
    )


def uname_wrapper(arch: str, kernel: str) -> str:
    """A `uname` answering -m and -r for the image; other options go to the real one."""
    release = f"echo {_q(kernel)}" if kernel else 'exec /bin/uname-binary "$@"'
    return (
        "#!/bin/sh\n"
        f"# {UNAME_MARK}, as in xCAT genimage; removed after the build step\n"
        'case "$1" in\n'
        f"  -m|--machine) echo {_q(arch)} ;;\n"
        f"  -r|--kernel-release) {release} ;;\n"
        "  -s|--kernel-name|'') echo Linux ;;\n"
        '  *) exec /bin/uname-binary "$@" ;;\n'
        "esac\n"
    )


def hack_uname_script(root: str, arch: str, kernel: str) -> str:
    """Put the wrapper at the root's /bin/uname; the real one waits at /bin/uname-binary."""
    return "\n".join(
        [
            f"cd {_q(root)}",
            confine_script(root),
            "confined ./bin",
            "if [ -d bin ]; then",
            "  if [ ! -e bin/uname-binary ] && [ ! -L bin/uname-binary ]"
            " && { [ -e bin/uname ] || [ -L bin/uname ]; }; then mv bin/uname bin/uname-binary; fi",
            f"  {_put('bin/uname', uname_wrapper(arch, kernel), '0755')}",
            "fi",
        ]
    )


def restore_uname_script(root: str) -> str:
    """Remove the wrapper and put the real uname back, unless a package replaced the wrapper."""
    return "\n".join(
        [
            f"cd {_q(root)}",
            confine_script(root),
            "confined ./bin",
            f"if [ -f bin/uname ] && [ ! -L bin/uname ] && grep -qF {_q(UNAME_MARK)} bin/uname; then",
            "  rm -f bin/uname",
            "  if [ -e bin/uname-binary ] || [ -L bin/uname-binary ]; then"
            " mv bin/uname-binary bin/uname; fi",
            "else",
            "  rm -f bin/uname-binary",
            "fi",
        ]
    )
