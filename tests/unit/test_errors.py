"""The error-message table: every kind of bad input and the exact lines a user sees.

Each case is a whole site held in memory; the expected lines are what
`imagespec validate` prints on stderr (`path:line:col: message`), pinned
exactly so that a change to any message is a reviewed change.

Site files are spelled out line by line (see `lines()`) so the line numbers in
the expected messages can be checked by eye: the base imagespec.yaml is

     1 site: test                 8 directors:          12 images:
     2 distros:                   9   main:             13   img:
     3   rocky8:                 10     install_root:   14     profile: p
     4     osvers: rocky8        11     prefix: p       15     distro: rocky8
     5     osarch: x86_64
     6     family: rocky
     7     pkgdir: /install/rocky8/x86_64
"""

from __future__ import annotations

from typing import Optional

import pytest

from imagespec.errors import ConfigError
from imagespec.site import SiteView, validate_site
from imagespec.source import MemorySource
from tests.helpers import Files


def lines(*text: str) -> str:
    """One YAML line per argument, so a reader can count them."""
    return "".join(f"{line}\n" for line in text)


HEAD = lines(
    "site: test",
    "distros:",
    "  rocky8:",
    "    osvers: rocky8",
    "    osarch: x86_64",
    "    family: rocky",
    "    pkgdir: /install/rocky8/x86_64",
)
DIRECTORS = lines(
    "directors:",
    "  main:",
    "    install_root: /install",
    "    prefix: p",
)
IMAGES = lines(
    "images:",
    "  img:",
    "    profile: p",
    "    distro: rocky8",
)
# The one image, but statelite: litefile rows are rendered and checked.
STATELITE = IMAGES + lines(
    "    attributes:",
    "      provmethod: statelite",
)


def site(
    p: str = "",
    *,
    head: str = HEAD,
    directors: str = DIRECTORS,
    images: str = IMAGES,
    profiles: Optional[dict[str, str]] = None,
    extra: Optional[Files] = None,
) -> Files:
    """A site: imagespec.yaml from its three parts, profile `p` (and others), extra files."""
    files: Files = {"imagespec.yaml": head + directors + images, "profiles/p.yaml": p}
    for name, body in (profiles or {}).items():
        files[f"profiles/{name}.yaml"] = body
    files.update(extra or {})
    return files


def problem_lines(files: Files, strict: bool = False) -> list[str]:
    """The lines of the ConfigError that opening and rendering the site raises."""
    with pytest.raises(ConfigError) as caught:
        open_all(files, strict)
    return caught.value.lines()


def open_all(files: Files, strict: bool = False) -> SiteView:
    """What `validate` does: load, check, and render every director."""
    return validate_site(MemorySource(files), strict)


# ---------------------------------------------------------------- the table

ERROR_CASES = [
    # ------------------------------------------------ YAML itself
    pytest.param(
        site(lines("description: x", "  packages: [a]")),
        ["profiles/p.yaml:2:11: YAML syntax error: mapping values are not allowed here"],
        id="yaml-syntax-mapping-value",
    ),
    pytest.param(
        site(lines("packages: [a, b")),
        [
            "profiles/p.yaml:2:1: YAML syntax error: while parsing a flow sequence "
            "expected ',' or ']', but got '<stream end>'"
        ],
        id="yaml-syntax-unclosed-flow-sequence",
    ),
    pytest.param(
        site(lines("packages:", "  - a", " - b")),
        [
            "profiles/p.yaml:3:2: YAML syntax error: while parsing a block mapping "
            "expected <block end>, but found '<block sequence start>'"
        ],
        id="yaml-syntax-bad-indent",
    ),
    pytest.param(
        site(lines("packages: [a]", "packages: [b]")),
        ["profiles/p.yaml:2:1: duplicate key 'packages'; keep only one of them"],
        id="duplicate-key",
    ),
    pytest.param(
        site(lines("attributes:", "  rootfstype: nfs", "  rootfstype: ramdisk")),
        ["profiles/p.yaml:3:3: duplicate key 'rootfstype'; keep only one of them"],
        id="duplicate-nested-key",
    ),
    pytest.param(
        site(lines("packages:", "\t- vim")),
        [
            "profiles/p.yaml:2:1: YAML syntax error: while scanning for the next token "
            "found character '\\t' that cannot start any token"
        ],
        id="tab-indentation",
    ),
    pytest.param(
        site(lines("packages: [a]", "---", "packages: [b]")),
        [
            "profiles/p.yaml:2:1: YAML syntax error: expected a single document in the stream "
            "but found another document"
        ],
        id="two-documents",
    ),
    pytest.param(
        {**site(), "profiles/p.yaml": b"\xffdescription: x\n"},
        ["profiles/p.yaml:1:1: not UTF-8 text (invalid start byte); save the file as UTF-8"],
        id="not-utf8-profile",
    ),
    pytest.param(
        {**site(), "imagespec.yaml": b"site: caf\xe9\n"},
        ["imagespec.yaml:1:10: not UTF-8 text (invalid continuation byte); save the file as UTF-8"],
        id="not-utf8-site",
    ),
    pytest.param(
        site(lines("- vim", "- emacs")),
        ["profiles/p.yaml:1:1: expected a mapping, got a list"],
        id="profile-top-level-list",
    ),
    pytest.param(
        {**site(), "imagespec.yaml": lines("just text")},
        ["imagespec.yaml:1:1: expected a mapping, got the string 'just text'"],
        id="site-top-level-scalar",
    ),
    pytest.param(
        {**site(), "imagespec.yaml": ""},
        ["imagespec.yaml:1:1: expected a mapping, got nothing (null)"],
        id="site-empty",
    ),
    pytest.param(
        {"profiles/p.yaml": ""},
        ["imagespec.yaml: file not found"],
        id="site-file-missing",
    ),
    # ------------------------------------------------ unknown keys
    pytest.param(
        site(head=HEAD + lines("defualts: {}")),
        ["imagespec.yaml:8:1: unknown key 'defualts'; did you mean 'defaults'?"],
        id="unknown-key-site",
    ),
    pytest.param(
        site(head=HEAD + lines("    osver: rocky8")),
        ["imagespec.yaml:8:5: unknown key 'osver'; did you mean 'osvers'?"],
        id="unknown-key-distro",
    ),
    pytest.param(
        site(directors=DIRECTORS + lines("    buidler: xcat")),
        ["imagespec.yaml:12:5: unknown key 'buidler'; did you mean 'builder'?"],
        id="unknown-key-director",
    ),
    pytest.param(
        site(directors=DIRECTORS + lines("    build:", "      job: 4")),
        ["imagespec.yaml:13:7: unknown key 'job'; did you mean 'jobs'?"],
        id="unknown-key-build-options",
    ),
    pytest.param(
        site(directors=DIRECTORS + lines("    distros:", "      rocky8: {pkgdri: /x}")),
        ["imagespec.yaml:13:16: unknown key 'pkgdri'; did you mean 'pkgdir'?"],
        id="unknown-key-director-distro-override",
    ),
    pytest.param(
        site(images=IMAGES + lines("    frozn: true")),
        ["imagespec.yaml:16:5: unknown key 'frozn'; did you mean 'frozen'?"],
        id="unknown-key-image",
    ),
    pytest.param(
        site(lines("pacakges: [vim]")),
        ["profiles/p.yaml:1:1: unknown key 'pacakges'; did you mean 'packages'?"],
        id="unknown-key-profile",
    ),
    pytest.param(
        site(lines("description: x", "zzz: [vim]")),
        [
            "profiles/p.yaml:2:1: unknown key 'zzz'; allowed keys: description, inherits, "
            "packages, otherpkgs, erase, erase_first, exclude, sync, postinstall, postscripts, "
            "postbootscripts, litefile, attributes"
        ],
        id="unknown-key-profile-lists-allowed",
    ),
    pytest.param(
        site(lines("sync:", "  - {src: a, dset: /a}"), extra={"synclists/a": "x"}),
        [
            "profiles/p.yaml:2:5: missing required key 'dest' in sync.0; add it",
            "profiles/p.yaml:2:14: unknown key 'dset'; did you mean 'dest'?",
        ],
        id="unknown-key-sync-entry",
    ),
    # ------------------------------------------------ missing required keys
    pytest.param(
        site(head=HEAD.replace("site: test\n", "")),
        ["imagespec.yaml:1:1: missing required key 'site' in top level; add it"],
        id="missing-site",
    ),
    pytest.param(
        site(head=HEAD.replace("    osvers: rocky8\n", "")),
        ["imagespec.yaml:3:3: missing required key 'osvers' in distros.rocky8; add it"],
        id="missing-distro-osvers",
    ),
    pytest.param(
        site(images=lines("images:", "  img:", "    distro: rocky8")),
        ["imagespec.yaml:13:3: missing required key 'profile' in images.img; add it"],
        id="missing-image-profile",
    ),
    pytest.param(
        site(lines("sync:", "  - {dest: /etc/motd}")),
        [
            "profiles/p.yaml:2:5: sync.0: 'src' is required "
            "(or 'drop: true' to remove an inherited entry)"
        ],
        id="missing-sync-src",
    ),
    # ------------------------------------------------ wrong types
    pytest.param(
        site(lines("packages: vim")),
        ["profiles/p.yaml:1:1: packages: expected a list, got the string 'vim'"],
        id="packages-as-string",
    ),
    pytest.param(
        site(lines("inherits: base")),
        ["profiles/p.yaml:1:1: inherits: expected a list, got the string 'base'"],
        id="inherits-as-string",
    ),
    pytest.param(
        site(lines("packages: [vim, 1, null]")),
        [
            "profiles/p.yaml:1:17: packages.1: expected a string, got the number 1",
            "profiles/p.yaml:1:20: packages.2: expected a string, got nothing (null)",
        ],
        id="package-not-a-string",
    ),
    pytest.param(
        site(lines("attributes:", "  rootfstype: [nfs]")),
        ["profiles/p.yaml:2:3: attributes.rootfstype: expected a string or an integer, got a list"],
        id="attribute-value-list",
    ),
    pytest.param(
        site(lines("attributes:", "  rootfstype: yes", "  environvar: true")),
        [
            "profiles/p.yaml:3:3: attributes.environvar: expected a string or an integer, "
            "got the boolean true"
        ],
        id="attribute-value-bool",
    ),
    pytest.param(
        site(lines("description: 2024-01-01")),
        ["profiles/p.yaml:1:1: description: expected a string, got a date (2024-01-01); quote it"],
        id="date-instead-of-string",
    ),
    pytest.param(
        site(lines("sync: [etc/motd]")),
        ["profiles/p.yaml:1:8: sync.0: expected a mapping, got the string 'etc/motd'"],
        id="sync-entry-not-a-mapping",
    ),
    pytest.param(
        site(lines("litefile: [/etc/x]")),
        ["profiles/p.yaml:1:1: litefile: expected a mapping, got a list"],
        id="litefile-as-list",
    ),
    pytest.param(
        site(directors=DIRECTORS + lines("    build: {jobs: '4'}")),
        [
            "imagespec.yaml:12:13: directors.main.build.jobs: expected an integer, got the string '4'"
        ],
        id="jobs-as-string",
    ),
    pytest.param(
        site(directors=DIRECTORS + lines("    build: {jobs: 0}")),
        ["imagespec.yaml:12:13: directors.main.build.jobs: must be at least 1, got the number 0"],
        id="jobs-zero",
    ),
    pytest.param(
        site(images=IMAGES + lines("    frozen: 'yes'")),
        ["imagespec.yaml:16:5: images.img.frozen: expected true or false, got the string 'yes'"],
        id="frozen-as-string",
    ),
    pytest.param(
        site(directors=lines("directors:", "  main:")),
        ["imagespec.yaml:9:3: directors.main: expected a mapping, got nothing (null)"],
        id="director-null",
    ),
    # ------------------------------------------------ bad literals
    pytest.param(
        site(directors=DIRECTORS + lines("    builder: foo")),
        [
            "imagespec.yaml:12:5: directors.main.builder: the string 'foo' is not allowed; "
            "use one of 'xcat', 'native' or 'none'"
        ],
        id="builder-foo",
    ),
    pytest.param(
        site(
            lines("sync:", "  - {src: a, dest: /a, mode: copyy}"),
            extra={"synclists/a": "x"},
        ),
        [
            "profiles/p.yaml:2:24: sync.0.mode: the string 'copyy' is not allowed; "
            "use one of 'copy', 'append', 'merge', 'execute' or 'executealways'"
        ],
        id="sync-mode-copyy",
    ),
    pytest.param(
        site(directors=DIRECTORS + lines("    build:", "      method: zip")),
        [
            "imagespec.yaml:13:7: directors.main.build.method: the string 'zip' is not allowed; "
            "use one of 'cpio' or 'squashfs'"
        ],
        id="pack-method-zip",
    ),
    pytest.param(
        site(directors=DIRECTORS + lines("    build:", "      compress: bzip2")),
        [
            "imagespec.yaml:13:7: directors.main.build.compress: the string 'bzip2' is not "
            "allowed; use one of 'gzip', 'pigz' or 'xz'"
        ],
        id="compress-bzip2",
    ),
    # ------------------------------------------------ the profile graph
    pytest.param(
        site(lines("inherits: [base, auxx]"), profiles={"base": "", "aux": ""}),
        ["profiles/p.yaml:1:18: unknown parent 'auxx'; did you mean 'aux'?"],
        id="unknown-parent",
    ),
    pytest.param(
        site(lines("inherits: [zzzzzz]")),
        ["profiles/p.yaml:1:12: unknown parent 'zzzzzz'"],
        id="unknown-parent-no-suggestion",
    ),
    pytest.param(
        site(
            lines("inherits: [a]"),
            profiles={"a": lines("inherits: [b]"), "b": lines("inherits: [a]")},
        ),
        ["profiles/a.yaml:1:12: inheritance cycle: a -> b -> a"],
        id="cycle",
    ),
    pytest.param(
        site(
            lines("inherits: [ib]"),
            profiles={
                "ib": lines("inherits: [mlx]"),
                "mlx": lines("inherits: [gpu]"),
                "gpu": lines("inherits: [ib]"),
            },
        ),
        ["profiles/gpu.yaml:1:12: inheritance cycle: gpu -> ib -> mlx -> gpu"],
        id="cycle-of-three",
    ),
    pytest.param(
        site(lines("inherits: [p]")),
        ["profiles/p.yaml:1:12: inheritance cycle: p -> p"],
        id="self-cycle",
    ),
    pytest.param(
        site(images=lines("images:", "  img:", "    profile: pp", "    distro: rocky8")),
        ["imagespec.yaml:14:5: image 'img': unknown profile 'pp'; did you mean 'p'?"],
        id="unknown-image-profile",
    ),
    pytest.param(
        site(images=lines("images:", "  img:", "    profile: p", "    distro: rocky9")),
        ["imagespec.yaml:15:5: image 'img': unknown distro 'rocky9'; did you mean 'rocky8'?"],
        id="unknown-image-distro",
    ),
    pytest.param(
        site(directors=DIRECTORS + lines("    distros:", "      rocky9: {pkgdir: /x}")),
        [
            "imagespec.yaml:13:7: director 'main' overrides unknown distro 'rocky9'; "
            "did you mean 'rocky8'?"
        ],
        id="director-overrides-unknown-distro",
    ),
    # ------------------------------------------------ attributes
    pytest.param(
        site(lines("attributes:", "  pkglist: /tmp/x.pkglist")),
        [
            "profiles/p.yaml:2:3: profile 'p': 'pkglist' is computed by imagespec "
            "and cannot be set; remove it"
        ],
        id="computed-attribute-in-profile",
    ),
    pytest.param(
        site(images=IMAGES + lines("    attributes:", "      osvers: rhels8")),
        [
            "imagespec.yaml:17:7: image 'img': 'osvers' is computed by imagespec "
            "and cannot be set; remove it"
        ],
        id="computed-attribute-in-image",
    ),
    pytest.param(
        site(head=HEAD + lines("defaults:", "  postscripts: syslog")),
        [
            "imagespec.yaml:9:3: defaults: 'postscripts' is computed by imagespec "
            "and cannot be set; remove it"
        ],
        id="computed-attribute-in-defaults",
    ),
    pytest.param(
        site(lines("attributes: {objtype: osimage}")),
        ["profiles/p.yaml:1:14: profile 'p': 'objtype' is always osimage; remove it"],
        id="objtype-attribute",
    ),
    pytest.param(
        site(lines("attributes:", "  provmethod: install")),
        [
            "profiles/p.yaml:2:3: profile 'p': provmethod 'install' is not supported "
            "(imagespec builds netboot and statelite images)"
        ],
        id="provmethod-install",
    ),
    pytest.param(
        site(lines("attributes:", "  environvar: 'TZ=UTC '")),
        [
            "profiles/p.yaml:2:3: profile 'p': attribute 'environvar' must be one line "
            "without leading or trailing spaces"
        ],
        id="attribute-trailing-space",
    ),
    # ------------------------------------------------ scripts
    pytest.param(
        site(lines("postinstall: ['10-tune hugepages']")),
        [
            "profiles/p.yaml:1:15: postinstall: 'postinstall/10-tune' does not exist; "
            "create it or fix the name"
        ],
        id="missing-postinstall-file",
    ),
    pytest.param(
        site(lines("postscripts: [60-ib-setup]")),
        [
            "profiles/p.yaml:1:15: postscripts: 'postscripts/60-ib-setup' does not exist "
            "(not an xCAT built-in either; add it to builtin_postscripts if it is one); "
            "create it or fix the name"
        ],
        id="missing-postscript-not-builtin",
    ),
    pytest.param(
        site(lines("postbootscripts: ['70-slurm start']")),
        [
            "profiles/p.yaml:1:19: postbootscripts: 'postscripts/70-slurm' does not exist "
            "(not an xCAT built-in either; add it to builtin_postscripts if it is one); "
            "create it or fix the name"
        ],
        id="missing-postbootscript",
    ),
    pytest.param(
        site(lines("postinstall: [/usr/bin/true]")),
        [
            "profiles/p.yaml:1:15: postinstall: '/usr/bin/true' must be a path relative to postinstall/ "
            "of letters, digits and . _ + @ = : , ~ % - (no '..', no '-' first)"
        ],
        id="postinstall-absolute-path",
    ),
    pytest.param(
        site(lines("postinstall: ['10-x a,b']"), extra={"postinstall/10-x": "#!/bin/sh\n"}),
        [
            "profiles/p.yaml:1:15: postinstall: '10-x a,b' contains a comma; "
            "xCAT splits the list on commas"
        ],
        id="postinstall-comma",
    ),
    # ------------------------------------------------ sync
    pytest.param(
        site(lines("sync:", "  - {src: etc/motd, dest: /etc/motd}")),
        [
            "profiles/p.yaml:2:5: sync: 'synclists/etc/motd' does not exist; "
            "create it or fix the path"
        ],
        id="missing-sync-src-file",
    ),
    pytest.param(
        site(
            lines("sync:", "  - {src: etc/slurm.conf, dest: /etc/slurm.conf, mode: execute}"),
            extra={"synclists/etc/slurm.conf": "x"},
        ),
        [
            "profiles/p.yaml:2:5: sync: 'synclists/etc/slurm.conf.post' does not exist "
            "(mode execute runs <src>.post on the node); create it or fix the path"
        ],
        id="execute-without-post",
    ),
    pytest.param(
        site(
            lines("sync:", "  - {src: hosts, dest: /etc/hosts, mode: merge}"),
            extra={"synclists/hosts": "x"},
        ),
        [
            "profiles/p.yaml:2:5: sync: mode merge only works on /etc/group, /etc/gshadow, "
            "/etc/passwd, /etc/shadow; got '/etc/hosts' (use append for other files)"
        ],
        id="merge-to-non-allowed-dest",
    ),
    pytest.param(
        site(
            lines("sync:", "  - {src: [a, b], dest: /etc/site}"),
            extra={"synclists/a": "x", "synclists/b": "x"},
        ),
        [
            "profiles/p.yaml:2:5: sync: several sources need a directory dest ending in '/'; "
            "got '/etc/site'"
        ],
        id="several-srcs-to-file-dest",
    ),
    pytest.param(
        site(lines("sync:", "  - {src: a, dest: etc/motd}"), extra={"synclists/a": "x"}),
        ["profiles/p.yaml:2:5: sync: dest 'etc/motd' must be an absolute path on the node"],
        id="relative-dest",
    ),
    pytest.param(
        site(lines("sync:", "  - {src: ../secret, dest: /etc/x}")),
        [
            "profiles/p.yaml:2:5: sync: src '../secret' must be a path relative to synclists/ "
            "(no '..', no '-' first, only letters, digits and . _ + @ = : , ~ % -)"
        ],
        id="src-escapes-synclists",
    ),
    pytest.param(
        site(lines("sync:", "  - {src: a, dest: /a, drop: true}"), extra={"synclists/a": "x"}),
        [
            "profiles/p.yaml:2:5: sync.0: a 'drop' of a file dest names only 'dest'; remove "
            "'src' ('src' with 'drop' picks files of a directory dest ending in '/')"
        ],
        id="drop-with-src",
    ),
    # ------------------------------------------------ litefile
    pytest.param(
        site(lines("litefile:", "  /etc/ntp.conf: tmpfss")),
        [
            "profiles/p.yaml:2:3: litefile: 'tmpfss' is not a litefile option; use one of "
            "con, link, link,con, link,persistent, link,ro, localdisk, persistent, ro, rw, "
            "tmpfs, tmpfs,rw"
        ],
        id="litefile-bad-option",
    ),
    pytest.param(
        site(lines("litefile:", "  etc/ntp.conf: tmpfs")),
        ["profiles/p.yaml:2:3: litefile: 'etc/ntp.conf' must be an absolute path"],
        id="litefile-relative-path",
    ),
    pytest.param(
        site(lines("litefile:", "  /opt/: ro", "  /opt/x.conf: tmpfs"), images=STATELITE),
        [
            "profiles/p.yaml:3:3: image 'img': litefile '/opt/x.conf' (tmpfs) under '/opt/' "
            "(ro): liteimg refuses any row under a ro or con directory (statelite.pm:315); "
            "change '/opt/x.conf' or '/opt/'"
        ],
        id="litefile-child-of-ro-dir",
    ),
    pytest.param(
        site(lines("litefile:", "  /var/spool/: link", "  /var/spool/x: tmpfs"), images=STATELITE),
        [
            "profiles/p.yaml:3:3: image 'img': litefile '/var/spool/x' (tmpfs) under "
            "'/var/spool/' (link): under a link directory liteimg allows only link rows "
            "(statelite.pm:327); change '/var/spool/x' or '/var/spool/'"
        ],
        id="litefile-non-link-under-link-dir",
    ),
    pytest.param(
        site(
            lines("litefile:", "  /var/log/: persistent", "  /var/log/x: tmpfs"), images=STATELITE
        ),
        [
            "profiles/p.yaml:3:3: image 'img': litefile '/var/log/x' (tmpfs) under '/var/log/' "
            "(persistent): under a persistent directory liteimg allows only persistent rows "
            "(statelite.pm:343); change '/var/log/x' or '/var/log/'"
        ],
        id="litefile-non-persistent-under-persistent-dir",
    ),
    # ------------------------------------------------ images and directors
    pytest.param(
        site(
            images=IMAGES + lines("  img2:", "    profile: p", "    distro: rocky8"),
        ),
        [
            "imagespec.yaml:16:3: images 'img' and 'img2' share rootimgdir "
            "/install/netboot/rocky8/x86_64/p on director 'main'; "
            "set attributes.rootimgdir on one of them"
        ],
        id="rootimgdir-clash",
    ),
    pytest.param(
        site(images=lines("images:", "  my image:", "    profile: p", "    distro: rocky8")),
        [
            "imagespec.yaml:13:3: image name 'my image' would be rejected by xCAT; "
            "use letters, digits, '_', '.', '-'"
        ],
        id="image-name-with-space",
    ),
    pytest.param(
        site(images=lines("images:", "  rocky8/login:", "    profile: p", "    distro: rocky8")),
        [
            "imagespec.yaml:13:3: image name 'rocky8/login' would be rejected by xCAT; "
            "use letters, digits, '_', '.', '-'"
        ],
        id="image-name-with-slash",
    ),
    pytest.param(
        {**site(), "profiles/my login.yaml": ""},
        [
            "profiles/my login.yaml: profile name 'my login' may only use letters, digits, "
            "'_', '.', '-'; rename the file"
        ],
        id="profile-file-name-with-space",
    ),
    pytest.param(
        site(
            directors=lines("directors:", "  main:", "    host: mn01", "    install_root: install")
        ),
        [
            "imagespec.yaml:11:5: director 'main' is remote (host 'mn01'): "
            "install_root must be an absolute path"
        ],
        id="remote-director-relative-install-root",
    ),
    pytest.param(
        site(
            directors=lines(
                "directors:", "  main:", "    install_root: /install", "    prefix: ../x"
            )
        ),
        [
            "imagespec.yaml:11:5: director 'main': prefix '../x' must be a relative path of "
            "safe segments (no '..', no '-' first, no spaces)"
        ],
        id="prefix-with-dotdot",
    ),
    pytest.param(
        site(directors=lines("directors: {}")),
        ["imagespec.yaml:8:1: no directors defined; add one under 'directors:'"],
        id="no-directors",
    ),
    # ------------------------------------------------ package entries
    pytest.param(
        site(lines("packages: ['vim,emacs']")),
        [
            "profiles/p.yaml:1:12: packages: 'vim,emacs' contains a comma (xCAT would split it); "
            "give one package per entry"
        ],
        id="package-with-comma",
    ),
    pytest.param(
        site(lines("packages: ['vim emacs']")),
        [
            "profiles/p.yaml:1:12: packages: 'vim emacs' contains spaces or '#'; "
            "give one package per entry"
        ],
        id="package-with-space",
    ),
    pytest.param(
        site(lines("packages: ['#INCLUDE:/install/custom/base.pkglist#']")),
        [
            "profiles/p.yaml:1:12: packages: #INCLUDE: is not supported; "
            "share entries through 'inherits' instead"
        ],
        id="include-entry",
    ),
    pytest.param(
        site(lines("erase: [xcat/kexec-tools]")),
        [
            "profiles/p.yaml:1:9: erase: 'xcat/kexec-tools': xCAT drops the directory part here; "
            "subdirectories belong in otherpkgs"
        ],
        id="erase-with-directory",
    ),
    pytest.param(
        site(lines("exclude: ['./usr/share/doc *']")),
        ["profiles/p.yaml:1:11: exclude: './usr/share/doc *' may not contain spaces or '#'"],
        id="exclude-with-space",
    ),
    # ------------------------------------------------ everything at once
    pytest.param(
        site(
            lines("pacakges: [vim]"),
            head=HEAD + lines("sitee: x"),
            profiles={"q": lines("description: q", "packages: vim")},
        ),
        [
            "imagespec.yaml:8:1: unknown key 'sitee'; did you mean 'site'?",
            "profiles/p.yaml:1:1: unknown key 'pacakges'; did you mean 'packages'?",
            "profiles/q.yaml:2:1: packages: expected a list, got the string 'vim'",
        ],
        id="several-files-schema",
    ),
    pytest.param(
        site(
            lines(
                "postscripts: [nope]",
                "sync:",
                "  - {src: zz, dest: rel}",
            ),
            images=IMAGES
            + lines(
                "    attributes: {osarch: ppc64le}",
                "  img-q:",
                "    profile: q",
                "    distro: rocky8",
            ),
            profiles={"q": lines("description: q", "attributes:", "  pkglist: /x")},
        ),
        [
            "imagespec.yaml:16:18: image 'img': 'osarch' is computed by imagespec "
            "and cannot be set; remove it",
            "profiles/p.yaml:1:15: postscripts: 'postscripts/nope' does not exist "
            "(not an xCAT built-in either; add it to builtin_postscripts if it is one); "
            "create it or fix the name",
            "profiles/p.yaml:3:5: sync: 'synclists/zz' does not exist; create it or fix the path",
            "profiles/p.yaml:3:5: sync: dest 'rel' must be an absolute path on the node",
            "profiles/q.yaml:3:3: profile 'q': 'pkglist' is computed by imagespec "
            "and cannot be set; remove it",
        ],
        id="several-files-checks",
    ),
]


@pytest.mark.parametrize(("files", "expected"), ERROR_CASES)
def test_error_message(files: Files, expected: list[str]) -> None:
    assert problem_lines(files) == expected


@pytest.mark.parametrize(("files", "expected"), ERROR_CASES)
def test_error_lines_are_positions_then_message(files: Files, expected: list[str]) -> None:
    """Every line is `path[:line:col]: message`, sorted by path then line, no traceback text."""
    got = problem_lines(files)
    assert got, "an error must say what is wrong"
    keys = []
    for line in got:
        where, sep, message = line.partition(": ")
        assert sep and message.strip(), line
        assert "Traceback" not in line and "\n" not in line
        path, *numbers = where.split(":")
        assert path == "imagespec.yaml" or path.startswith("profiles/"), line
        assert len(numbers) in (0, 2) and all(n.isdigit() and int(n) >= 1 for n in numbers), line
        keys.append((path, *(int(n) for n in numbers)))
    assert keys == sorted(keys)


def test_error_str_is_the_lines_joined() -> None:
    with pytest.raises(ConfigError) as caught:
        open_all(site(lines("pacakges: [vim]"), head=HEAD + lines("sitee: x")))
    assert str(caught.value) == "\n".join(caught.value.lines())
    assert caught.value.exit_code == 1


# ---------------------------------------------------------------- accepted inputs


ACCEPTED_CASES = [
    pytest.param(
        site(lines("postscripts: [syncfiles, 'confignetwork -s']")), id="builtin-postscripts"
    ),
    pytest.param(
        site(
            lines("postscripts: [site-hardening]"),
            head=HEAD + lines("builtin_postscripts: [site-hardening]"),
        ),
        id="site-builtin-postscripts",
    ),
    pytest.param(
        site(
            lines("sync:", "  - {src: slurm.conf, dest: /etc/slurm.conf, mode: execute}"),
            extra={"synclists/slurm.conf": "x", "synclists/slurm.conf.post": "y"},
        ),
        id="execute-with-post",
    ),
    pytest.param(
        site(
            lines("sync:", "  - {src: passwd, dest: /etc/passwd, mode: merge}"),
            extra={"synclists/passwd": "x"},
        ),
        id="merge-to-passwd",
    ),
    pytest.param(
        site(
            lines("sync:", "  - {src: [a, b], dest: /etc/site/}"),
            extra={"synclists/a": "x", "synclists/b": "y"},
        ),
        id="several-srcs-to-directory",
    ),
    pytest.param(
        site(directors=lines("directors:", "  main:", "    install_root: .director/install")),
        id="local-director-relative-install-root",
    ),
    pytest.param(
        site(
            lines("litefile:", "  /var/log/: persistent", "  /var/log/slurm/: link,persistent"),
            images=STATELITE,
        ),
        id="litefile-persistent-nesting-ok",
    ),
    pytest.param(
        site(
            images=IMAGES
            + lines(
                "  img2:",
                "    profile: p",
                "    distro: rocky8",
                "    attributes: {rootimgdir: /install/netboot/rocky8/x86_64/p2}",
            )
        ),
        id="rootimgdir-made-distinct",
    ),
    pytest.param(site(lines("packages:", "  # all commented out")), id="empty-list-section"),
    pytest.param(site("\ufeff" + lines("packages: [vim]")), id="utf8-bom"),
    pytest.param(site(lines("packages:", "  - vim").replace("\n", "\r\n")), id="crlf-line-ends"),
]


@pytest.mark.parametrize("files", ACCEPTED_CASES)
def test_accepted_without_problems(files: Files) -> None:
    view = open_all(files, strict=True)
    assert view.warnings == []


def test_builtin_postscript_needs_no_file_and_is_rendered_bare() -> None:
    files = site(
        lines("postscripts: [syncfiles, site-hardening]"),
        head=HEAD + lines("builtin_postscripts: [site-hardening]"),
    )
    image = open_all(files).render("main").images["img"]
    assert image.attributes["postscripts"] == "syncfiles,site-hardening"
    assert not any(path.startswith("postscripts/") for path in image.files)


def test_site_postscript_file_shadows_a_builtin_name() -> None:
    files = site(lines("postscripts: [syslog]"), extra={"postscripts/syslog": "#!/bin/sh\n"})
    image = open_all(files).render("main").images["img"]
    assert image.attributes["postscripts"] == "p/syslog"
    assert "postscripts/p/syslog" in image.files


# ---------------------------------------------------------------- warnings

WARNING_CASES = [
    pytest.param(
        site(lines("packages: [-vim]")),
        [
            "profiles/p.yaml:1:12: warning: '-vim' removes nothing: "
            "no earlier level of the chain adds 'vim' to packages"
        ],
        id="removal-removes-nothing",
    ),
    pytest.param(
        site(lines("inherits: [base]", "postscripts: [-syslog]"), profiles={"base": ""}),
        [
            "profiles/p.yaml:2:15: warning: '-syslog' removes nothing: "
            "no earlier level of the chain adds 'syslog' to postscripts"
        ],
        id="script-removal-removes-nothing",
    ),
    pytest.param(
        site(lines("sync:", "  - {dest: /etc/motd, drop: true}")),
        [
            "profiles/p.yaml:2:5: warning: drop of '/etc/motd' removes nothing: "
            "no earlier level of the chain syncs to it"
        ],
        id="sync-drop-removes-nothing",
    ),
    pytest.param(
        site(lines("litefile:", "  /etc/ntp.conf: null"), images=STATELITE),
        [
            "profiles/p.yaml:2:3: warning: litefile '/etc/ntp.conf: null' removes nothing: "
            "no earlier level of the chain lists it"
        ],
        id="litefile-null-removes-nothing",
    ),
    pytest.param(
        site(lines("exclude: ['usr/share/doc*']")),
        [
            "profiles/p.yaml:1:11: warning: exclude: 'usr/share/doc*' never matches: "
            "patterns are relative to the image root and start with './'"
        ],
        id="exclude-without-dot-slash",
    ),
    pytest.param(
        site(lines("exclude: ['+usr/share/doc/bash*']")),
        [
            "profiles/p.yaml:1:11: warning: exclude: '+usr/share/doc/bash*' never matches: "
            "patterns are relative to the image root and start with './'"
        ],
        id="exclude-keep-without-dot-slash",
    ),
    pytest.param(
        site(lines("exclude: ['./usr/share/doc/']")),
        [
            "profiles/p.yaml:1:11: warning: exclude: './usr/share/doc/' never matches: "
            "a pattern ending in '/' matches nothing; drop the '/' (or use './usr/share/doc/*')"
        ],
        id="exclude-ending-in-slash",
    ),
    pytest.param(
        site(lines("attributes:", "  rootfstyp: nfs")),
        [
            "profiles/p.yaml:2:3: warning: profile 'p': 'rootfstyp' is not an osimage attribute "
            "xCAT knows; mkdef would reject it"
        ],
        id="unknown-attribute-name-profile",
    ),
    pytest.param(
        site(images=IMAGES + lines("    attributes: {kernelversion: '5.14'}")),
        [
            "imagespec.yaml:16:18: warning: image 'img': 'kernelversion' is not an osimage "
            "attribute xCAT knows; mkdef would reject it"
        ],
        id="unknown-attribute-name-image",
    ),
    pytest.param(
        site(lines("litefile:", "  /etc/ntp.conf: tmpfs")),
        [
            "imagespec.yaml:13:3: warning: image 'img' is not statelite (provmethod netboot): "
            "its litefile entries are ignored"
        ],
        id="litefile-on-netboot-image",
    ),
    pytest.param(
        site(lines("inherits: [base, base]"), profiles={"base": ""}),
        ["profiles/p.yaml:1:18: warning: 'base' is inherited twice; remove one"],
        id="parent-inherited-twice",
    ),
    pytest.param(
        {**site(), "profiles/extra.yml": ""},
        ["profiles/extra.yml: warning: ignored: profiles are profiles/<name>.yaml"],
        id="profile-with-yml-extension",
    ),
]


@pytest.mark.parametrize(("files", "expected"), WARNING_CASES)
def test_warning_is_reported_and_not_fatal(files: Files, expected: list[str]) -> None:
    view = open_all(files)
    assert [str(w) for w in view.warnings] == expected
    assert all(w.severity == "warning" for w in view.warnings)


@pytest.mark.parametrize(("files", "expected"), WARNING_CASES)
def test_strict_turns_warning_into_error(files: Files, expected: list[str]) -> None:
    assert problem_lines(files, strict=True) == [
        line.replace(": warning: ", ": ", 1) for line in expected
    ]


def test_removal_that_matters_in_one_descendant_is_not_reported() -> None:
    """A shared profile's removal is useless only if it removes nothing in every chain."""
    files = site(
        lines("inherits: [base, shared]"),
        profiles={
            "base": lines("packages: [vim]"),
            "shared": lines("packages: [-vim]"),
            "other": lines("inherits: [shared]"),
        },
    )
    assert open_all(files, strict=True).warnings == []


# ---------------------------------------------------------------- known bugs


def test_strict_reports_every_warning_at_once() -> None:
    files = site(
        lines(
            "packages: [-vim]",
            "exclude: ['usr/x*']",
            "litefile: {/etc/x: tmpfs}",
        )
    )
    relaxed = [str(w).replace(": warning: ", ": ", 1) for w in open_all(files).warnings]
    assert len(relaxed) == 3
    assert problem_lines(files, strict=True) == relaxed


@pytest.mark.parametrize(
    "profile",
    [
        pytest.param(lines("attributes:", "  <<: {rootfstype: nfs}"), id="inline-merge"),
        pytest.param(
            lines("x-common: &c", "  rootfstype: nfs", "attributes:", "  <<: *c"),
            id="anchored-merge",
        ),
    ],
)
def test_yaml_merge_key_is_loaded_or_reported(profile: str) -> None:
    """Valid YAML is either understood or rejected with a position, never a crash."""
    try:
        view = open_all(site(profile))
    except ConfigError as exc:
        assert all(line.startswith("profiles/p.yaml:") for line in exc.lines())
    else:
        assert view.render("main").images["img"].attributes["rootfstype"] == "nfs"


def test_lone_dash_entry_is_quoted_as_written() -> None:
    got = problem_lines(site(lines("packages: ['-']")))
    assert len(got) == 1
    assert got[0] == "profiles/p.yaml:1:12: packages: '-' names no package; remove it"


def test_empty_package_entry_says_it_is_empty() -> None:
    got = problem_lines(site(lines("packages: ['']")))
    assert len(got) == 1
    assert got[0] == "profiles/p.yaml:1:12: packages: an empty entry; remove it"
    assert "empty" in got[0]
    assert "spaces" not in got[0]


def test_not_utf8_points_at_the_bad_byte() -> None:
    files = {**site(), "profiles/p.yaml": b"description: x\npackages:\n  - caf\xe9\n"}
    assert problem_lines(files) == [
        "profiles/p.yaml:3:8: not UTF-8 text (invalid continuation byte); save the file as UTF-8"
    ]
