"""Golden files for every rendered xCAT file kind, format checks and per-stage digests.

The golden tree of each director lives under tests/golden/render/<director>/,
with <director>.manifest listing every rendered path and its mode.  After an
intended change to rendering, regenerate them and review the diff like code:

    IMAGESPEC_UPDATE_GOLDEN=1 python3 -m pytest tests/unit/test_render_golden.py

(the run rewrites the goldens, deleting stale ones, and then checks against them).
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path
from typing import Callable

import pytest

from imagespec.errors import Pos
from imagespec.render import RenderedDirector, formats
from imagespec.resolve import Entry, Origin
from imagespec.site import SiteView, open_site
from imagespec.source import MemorySource
from tests.helpers import Files, dump_yaml

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "render"
UPDATE = os.environ.get("IMAGESPEC_UPDATE_GOLDEN") == "1"

SITE = {
    "site": "golden",
    "defaults": {
        "osname": "Linux",
        "imagetype": "linux",
        "provmethod": "netboot",
        "permission": "755",
    },
    "distros": {
        "rocky8": {
            "osvers": "rocky8",
            "osarch": "x86_64",
            "family": "rocky",
            "pkgdir": ["/install/rocky8/x86_64", "https://repo.example.org/el8-hpc/"],
            "otherpkgdir": "/install/post/otherpkgs/rocky8/x86_64",
        }
    },
    "directors": {
        # A managed prefix: files under /install/cascade/, postscripts under postscripts/cascade/.
        "cascade": {
            "branch": "main",
            "host": "cascade-mn",
            "install_root": "/install",
            "prefix": "cascade",
            "build": {"method": "cpio", "compress": "pigz"},
        },
        # An empty prefix: files straight under /install/ and /install/postscripts/.
        "bare": {
            "branch": "dev",
            "host": "bare-mn",
            "install_root": "/install",
            "prefix": "",
            "distros": {
                "rocky8": {
                    "pkgdir": ["/install/rocky8/x86_64", "https://repo.example.org/el8-hpc-test/"]
                }
            },
        },
    },
    "images": {
        "rocky8-compute": {
            "profile": "compute",
            "distro": "rocky8",
            "attributes": {"addkcmdline": "console=ttyS0,115200n8"},
        },
        "rocky8-lite": {"profile": "lite", "distro": "rocky8"},
    },
}

PROFILES = {
    "base": """\
# Every node.
description: minimal stateless root
packages:
  - bash
  - kernel
  - "#NEW_INSTALL_LIST#"
  - chrony
erase: [firewalld]
exclude:
  - "./usr/share/doc*"
  - "+./usr/share/doc/bash*"
  - "./usr/share/man*"
sync:
  - {src: etc/motd, dest: /etc/motd}
  - {src: etc/chrony.conf, dest: /etc/chrony.conf}
postinstall:
  - 10-selinux-off
  - "20-tune hugepages"
postscripts: [confignetwork, 50-lustre-mount]
postbootscripts: ["70-slurm-start munge"]
attributes:
  netdrivers: igb,ixgbe
""",
    "compute": """\
description: batch compute nodes
inherits: [base]
packages: [slurm, "#NEW_INSTALL_LIST#", munge, -chrony]
otherpkgs: [xcat/xcat-core/xCATsn, lustre/lustre-client]
erase: [NetworkManager-wifi]
exclude: ["-./usr/share/man*", "+./usr/share/doc/slurm*"]
sync:
  - {src: etc/motd.compute, dest: /etc/motd}
  - {src: [etc/profile.d/site.sh, etc/profile.d/site.csh], dest: /etc/profile.d/}
  - {src: etc/issue.net.public, dest: /etc/issue.net, nodes: "login01,login02"}
  - {src: etc/slurm/slurm.conf, dest: /etc/slurm/slurm.conf, mode: execute}
  - {src: usr/local/sbin/motd-node-info, dest: /usr/local/sbin/motd-node-info, mode: executealways}
  - {src: etc/hosts.site, dest: /etc/hosts, mode: append}
  - {src: etc/passwd.site, dest: /etc/passwd, mode: merge}
postinstall: [-10-selinux-off, "40-services sshd munge"]
postscripts: [60-ib-setup]
""",
    "litebase": """\
description: statelite common parts (no image of its own)
inherits: [base]
sync:
  - {dest: /etc/motd, drop: true}
  - {dest: /etc/chrony.conf, drop: true}
litefile:
  /etc/old.conf: tmpfs
  /var/log/: persistent
  /etc/ntp.conf: tmpfs
""",
    "lite": """\
description: statelite service nodes
inherits: [litebase]
litefile:
  /etc/old.conf: null
  /etc/ntp.conf: tmpfs,rw
  /etc/adjtime: link
attributes:
  provmethod: statelite
  rootfstype: ramdisk
""",
}

SUPPORT: Files = {
    "postinstall/10-selinux-off": "#!/bin/sh\nsed -i s/enforcing/disabled/ $1/etc/selinux/config\n",
    "postinstall/20-tune": "#!/bin/sh\necho tune $5 > $1/etc/tune\n",
    "postinstall/40-services": "#!/bin/sh\nshift 4; chroot $1 systemctl enable $@\n",
    "postscripts/50-lustre-mount": "#!/bin/sh\nmount -t lustre mds@o2ib:/fs /fs\n",
    "postscripts/60-ib-setup": "#!/bin/sh\nmodprobe ib_ipoib\n",
    "postscripts/70-slurm-start": "#!/bin/sh\nsystemctl start $1 slurmd\n",
    "postscripts/99-unused": "#!/bin/sh\necho never rendered\n",
    "synclists/etc/motd": "Welcome\n",
    "synclists/etc/motd.compute": "Welcome to compute\n",
    "synclists/etc/chrony.conf": "server mn iburst\n",
    "synclists/etc/profile.d/site.sh": "export SITE=golden\n",
    "synclists/etc/profile.d/site.csh": "setenv SITE golden\n",
    "synclists/etc/issue.net.public": "Authorized use only\n",
    "synclists/etc/slurm/slurm.conf": "ClusterName=golden\n",
    "synclists/etc/slurm/slurm.conf.post": "#!/bin/sh\nsystemctl restart slurmd\n",
    "synclists/usr/local/sbin/motd-node-info": "#!/bin/sh\nuname -n\n",
    "synclists/etc/hosts.site": "10.0.0.1 mn\n",
    "synclists/etc/passwd.site": "slurm:x:900:900::/var/lib/slurm:/sbin/nologin\n",
}
EXECUTABLE = {
    *(path for path in SUPPORT if path.startswith(("postinstall/", "postscripts/"))),
    "synclists/etc/slurm/slurm.conf.post",
    "synclists/usr/local/sbin/motd-node-info",
}
DIRECTORS = ("cascade", "bare")
# (director, prefix of managed files, folder of postscripts), relative to install_root
PREFIXES = [("cascade", "cascade/", "postscripts/cascade/"), ("bare", "", "postscripts/")]
IMAGES = ("rocky8-compute", "rocky8-lite")


def golden_files() -> Files:
    files: Files = {"imagespec.yaml": dump_yaml(SITE), **SUPPORT}
    files.update({f"profiles/{name}.yaml": text for name, text in PROFILES.items()})
    return files


def open_golden(files: Files) -> SiteView:
    return open_site(MemorySource(files, executable=set(EXECUTABLE)))


@pytest.fixture(scope="module")
def view() -> SiteView:
    return open_golden(golden_files())


def manifest(tree: RenderedDirector) -> str:
    return "".join(f"{mode:04o} {path}\n" for path, mode in sorted(tree_modes(tree).items()))


def tree_modes(tree: RenderedDirector) -> dict[str, int]:
    return {path: f.mode for path, f in tree.files.items()}


def update_golden(director: str, tree: RenderedDirector) -> None:
    root = GOLDEN / director
    root.mkdir(parents=True, exist_ok=True)
    wanted = {root / path for path in tree.files}
    for stale in (p for p in root.rglob("*") if p.is_file() and p not in wanted):
        stale.unlink()
    for path, rendered in tree.files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(rendered.data)
    (GOLDEN / f"{director}.manifest").write_text(manifest(tree))


def text(tree: RenderedDirector, path: str) -> str:
    return tree.files[path].data.decode()


# ---------------------------------------------------------------- goldens


def test_golden_site_has_no_warnings(view: SiteView) -> None:
    for director in DIRECTORS:
        view.render(director)
    assert view.warnings == []


@pytest.mark.parametrize("director", DIRECTORS)
def test_rendered_tree_matches_golden_files(view: SiteView, director: str) -> None:
    tree = view.render(director)
    if UPDATE:
        update_golden(director, tree)
    assert manifest(tree) == (GOLDEN / f"{director}.manifest").read_text()
    root = GOLDEN / director
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert on_disk == sorted(tree.files)
    for path, rendered in sorted(tree.files.items()):
        golden = (root / path).read_bytes()
        assert rendered.data.decode() == golden.decode(), path
        assert rendered.data == golden, path


@pytest.mark.parametrize(("director", "prefix", "postscripts"), PREFIXES)
def test_paths_and_modes_of_scripts_and_sources(
    view: SiteView, director: str, prefix: str, postscripts: str
) -> None:
    netboot = f"{prefix}custom/netboot/rocky/"
    synclists = f"{prefix}custom/synclists/"
    expected = {
        **{
            f"{netboot}{image}.{kind}": 0o644
            for image in IMAGES
            for kind in ("pkglist", "otherpkgs.pkglist", "exlist", "stanza")
        },
        **{f"{netboot}{image}.synclist": 0o644 for image in IMAGES},
        f"{netboot}rocky8-lite.litefile.csv": 0o644,
        f"{netboot}postinstall/10-selinux-off": 0o755,
        f"{netboot}postinstall/20-tune": 0o755,
        f"{netboot}postinstall/40-services": 0o755,
        f"{postscripts}50-lustre-mount": 0o755,
        f"{postscripts}60-ib-setup": 0o755,
        f"{postscripts}70-slurm-start": 0o755,
        f"{synclists}etc/motd.compute": 0o644,
        f"{synclists}etc/chrony.conf": 0o644,
        f"{synclists}etc/profile.d/site.sh": 0o644,
        f"{synclists}etc/profile.d/site.csh": 0o644,
        f"{synclists}etc/issue.net.public": 0o644,
        f"{synclists}etc/slurm/slurm.conf": 0o644,
        f"{synclists}etc/slurm/slurm.conf.post": 0o755,
        f"{synclists}usr/local/sbin/motd-node-info": 0o755,
        f"{synclists}etc/hosts.site": 0o644,
        f"{synclists}etc/passwd.site": 0o644,
    }
    assert tree_modes(view.render(director)) == expected


def test_scripts_are_0755_even_when_the_site_copy_is_not_executable() -> None:
    tree = open_site(MemorySource(golden_files(), executable=set())).render("cascade")
    modes = tree_modes(tree)
    scripts = [p for p in modes if "/postinstall/" in p or p.startswith("postscripts/")]
    assert len(scripts) == 6
    assert {modes[p] for p in scripts} == {0o755}
    sources = [p for p in modes if p.startswith("cascade/custom/synclists/")]
    assert len(sources) == 10
    assert {modes[p] for p in sources} == {0o644}


@pytest.mark.parametrize(("director", "prefix", "postscripts"), PREFIXES)
def test_scripts_and_sources_are_copied_byte_for_byte(
    view: SiteView, director: str, prefix: str, postscripts: str
) -> None:
    where = {
        f"{prefix}custom/netboot/rocky/postinstall/": "postinstall/",
        postscripts: "postscripts/",
        f"{prefix}custom/synclists/": "synclists/",
    }
    copied = 0
    for path, rendered in view.render(director).files.items():
        for rendered_dir, source_dir in where.items():
            if path.startswith(rendered_dir):
                source = source_dir + path[len(rendered_dir) :]
                assert rendered.data == str(SUPPORT[source]).encode(), path
                copied += 1
    assert copied == 16


# ---------------------------------------------------------------- format rules (XCAT-FORMATS.md)

COMPUTE = "cascade/custom/netboot/rocky/rocky8-compute"
LITE = "cascade/custom/netboot/rocky/rocky8-lite"


def body(lines: str) -> list[str]:
    """Lines xCAT reads: comments dropped, directives kept."""
    return [
        line
        for line in lines.splitlines()
        if line and (not line.startswith("#") or line == "#NEW_INSTALL_LIST#")
    ]


def test_lists_start_with_chain_comment_and_name_each_profile(view: SiteView) -> None:
    tree = view.render("cascade")
    for suffix in ("pkglist", "otherpkgs.pkglist", "exlist", "synclist"):
        lines = text(tree, f"{COMPUTE}.{suffix}").splitlines()
        assert lines[0] == "# rocky8-compute: chain base, compute", suffix
    pkglist = text(tree, f"{COMPUTE}.pkglist").splitlines()
    assert pkglist[2:] == [
        "# from profile base",
        "bash",
        "kernel",
        "#NEW_INSTALL_LIST#",
        "# from profile compute",
        "slurm",
        "#NEW_INSTALL_LIST#",
        "munge",
    ]
    assert (
        text(tree, f"{LITE}.pkglist").splitlines()[0] == "# rocky8-lite: chain base, litebase, lite"
    )


def test_every_list_line_starts_at_column_zero(view: SiteView) -> None:
    tree = view.render("cascade")
    for path, rendered in tree.files.items():
        if path.endswith((".pkglist", ".exlist", ".synclist", ".csv")):
            for line in rendered.data.decode().splitlines():
                assert line == line.strip() and line, (path, line)


def test_otherpkglist_erase_lines_come_last(view: SiteView) -> None:
    lines = body(text(view.render("cascade"), f"{COMPUTE}.otherpkgs.pkglist"))
    assert lines == [
        "xcat/xcat-core/xCATsn",
        "lustre/lustre-client",
        "--firewalld",
        "--NetworkManager-wifi",
    ]
    lite = body(text(view.render("cascade"), f"{LITE}.otherpkgs.pkglist"))
    assert lite == ["--firewalld"]


def test_pkglist_has_no_erase_lines(view: SiteView) -> None:
    for image in (COMPUTE, LITE):
        assert not any(
            line.startswith("-") for line in body(text(view.render("cascade"), f"{image}.pkglist"))
        )


def test_exlist_lines_are_image_relative_patterns(view: SiteView) -> None:
    lines = body(text(view.render("cascade"), f"{COMPUTE}.exlist"))
    assert lines == ["./usr/share/doc*", "+./usr/share/doc/bash*", "+./usr/share/doc/slurm*"]


def test_synclist_plain_entries_come_before_clause_headers(view: SiteView) -> None:
    lines = text(view.render("cascade"), f"{COMPUTE}.synclist").splitlines()
    headers = [
        i
        for i, line in enumerate(lines)
        if line in ("EXECUTE:", "EXECUTEALWAYS:", "APPEND:", "MERGE:")
    ]
    assert [lines[i] for i in headers] == ["EXECUTE:", "EXECUTEALWAYS:", "APPEND:", "MERGE:"]
    plain = [line for line in lines[: headers[0]] if not line.startswith("#")]
    src = "/install/cascade/custom/synclists/"
    assert plain == [
        f"{src}etc/motd.compute -> /etc/motd",
        f"{src}etc/chrony.conf -> /etc/chrony.conf",
        f"{src}etc/profile.d/site.sh {src}etc/profile.d/site.csh -> /etc/profile.d/",
        f"{src}etc/issue.net.public -> (login01,login02) /etc/issue.net",
        f"{src}etc/slurm/slurm.conf -> /etc/slurm/slurm.conf",
        f"{src}etc/slurm/slurm.conf.post -> /etc/slurm/slurm.conf.post",
        f"{src}usr/local/sbin/motd-node-info -> /usr/local/sbin/motd-node-info",
    ]
    assert lines[headers[0] :] == [
        "EXECUTE:",
        f"{src}etc/slurm/slurm.conf.post",
        "EXECUTEALWAYS:",
        f"{src}usr/local/sbin/motd-node-info",
        "APPEND:",
        f"{src}etc/hosts.site -> /etc/hosts",
        "MERGE:",
        f"{src}etc/passwd.site -> /etc/passwd",
    ]


def test_stanza_is_lsdef_z_form(view: SiteView) -> None:
    for director in DIRECTORS:
        tree = view.render(director)
        for image in IMAGES:
            lines = text(tree, tree.images[image].stanza_path).splitlines()
            assert lines[:4] == [
                "# <xCAT data object stanza file>",
                "",
                f"{image}:",
                "    objtype=osimage",
            ]
            attrs = lines[4:]
            assert attrs, image
            assert all(re.fullmatch(r"    [a-z]+=\S.*", line) for line in attrs), attrs
            names = [line.strip().split("=", 1)[0] for line in attrs]
            assert names == sorted(names)
            assert "objtype" not in names


def test_stanza_values_are_absolute_director_paths(view: SiteView) -> None:
    cascade = view.render("cascade").images["rocky8-compute"].attributes
    bare = view.render("bare").images["rocky8-compute"].attributes
    assert cascade["pkglist"] == f"/install/{COMPUTE}.pkglist"
    assert bare["pkglist"] == "/install/custom/netboot/rocky/rocky8-compute.pkglist"
    assert cascade["postinstall"] == ",".join(
        [
            "/install/cascade/custom/netboot/rocky/postinstall/20-tune hugepages",
            "/install/cascade/custom/netboot/rocky/postinstall/40-services sshd munge",
        ]
    )
    assert cascade["postscripts"] == "confignetwork,cascade/50-lustre-mount,cascade/60-ib-setup"
    assert bare["postscripts"] == "confignetwork,50-lustre-mount,60-ib-setup"
    assert cascade["postbootscripts"] == "cascade/70-slurm-start munge"
    assert cascade["pkgdir"] == "/install/rocky8/x86_64,https://repo.example.org/el8-hpc/"
    assert bare["pkgdir"] == "/install/rocky8/x86_64,https://repo.example.org/el8-hpc-test/"
    assert cascade["rootimgdir"] == "/install/netboot/rocky8/x86_64/compute"
    assert cascade["addkcmdline"] == "console=ttyS0,115200n8"


def test_litefile_csv_is_tabdump_form(view: SiteView) -> None:
    tree = view.render("cascade")
    data = text(tree, f"{LITE}.litefile.csv")
    lines = data.splitlines()
    assert lines[0] == "#image,file,options,comments,disable"
    assert lines[1:] == [
        '"rocky8-lite","/etc/adjtime","link",,',
        '"rocky8-lite","/etc/ntp.conf","tmpfs,rw",,',
        '"rocky8-lite","/var/log/","persistent",,',
    ]
    rows = list(csv.reader(io.StringIO(data)))[1:]
    assert all(len(row) == 5 for row in rows)
    assert f"{COMPUTE}.litefile.csv" not in tree.files


def test_litefile_csv_doubles_embedded_quotes() -> None:
    rows = {'/etc/a"b': Entry("tmpfs", Origin("p", Pos("profiles/p.yaml", 1, 1)))}
    data = formats.litefile_csv("img", rows).decode()
    assert data.splitlines()[1] == '"img","/etc/a""b","tmpfs",,'
    assert list(csv.reader(io.StringIO(data)))[1] == ["img", '/etc/a"b', "tmpfs", "", ""]


# ---------------------------------------------------------------- digests

Edit = Callable[[Files], None]


def edit_profile(name: str, old: str, new: str) -> Edit:
    def apply(files: Files) -> None:
        current = str(files[f"profiles/{name}.yaml"])
        assert old in current
        files[f"profiles/{name}.yaml"] = current.replace(old, new)

    return apply


def edit_file(path: str, data: str) -> Edit:
    def apply(files: Files) -> None:
        assert path in files
        files[path] = data

    return apply


def edit_image_attribute(value: str) -> Edit:
    def apply(files: Files) -> None:
        site = {**SITE, "images": {**SITE["images"]}}  # type: ignore[dict-item]
        image = dict(site["images"]["rocky8-compute"])  # type: ignore[index]
        image["attributes"] = {"addkcmdline": value}
        site["images"]["rocky8-compute"] = image  # type: ignore[index]
        files["imagespec.yaml"] = dump_yaml(site)

    return apply


def rename_base(files: Files) -> None:
    """Rename the ancestor profile base to core; nothing else changes."""
    files["profiles/core.yaml"] = files.pop("profiles/base.yaml")
    for name in ("compute", "litebase"):
        rel = f"profiles/{name}.yaml"
        files[rel] = str(files[rel]).replace("inherits: [base]", "inherits: [core]")


DIGEST_CASES: list[tuple[str, Edit, set[str]]] = [
    ("pkglist", edit_profile("compute", "munge, -chrony]", "munge, hwloc, -chrony]"), {"build"}),
    (
        "exclude",
        edit_profile(
            "compute", '"+./usr/share/doc/slurm*"]', '"+./usr/share/doc/slurm*", "./opt/junk*"]'
        ),
        {"pack"},
    ),
    ("image addkcmdline", edit_image_attribute("console=ttyS1,115200n8"), {"define"}),
    ("postinstall script", edit_file("postinstall/40-services", "#!/bin/sh\nexit 0\n"), {"build"}),
    ("sync source", edit_file("synclists/etc/motd.compute", "Welcome, changed\n"), {"pack"}),
    ("postscript", edit_file("postscripts/60-ib-setup", "#!/bin/sh\nmodprobe mlx5_ib\n"), set()),
    ("rename ancestor", rename_base, set()),
]


def compute_digests(files: Files) -> dict[str, dict[str, str]]:
    view = open_golden(files)
    return {d: view.render(d).images["rocky8-compute"].digests for d in DIRECTORS}


@pytest.mark.parametrize(
    ("edit", "changed"), [c[1:] for c in DIGEST_CASES], ids=[c[0] for c in DIGEST_CASES]
)
def test_a_change_moves_exactly_the_digests_of_the_stages_that_read_it(
    edit: Edit, changed: set[str]
) -> None:
    before = compute_digests(golden_files())
    files = golden_files()
    edit(files)
    after = compute_digests(files)
    for director in DIRECTORS:
        moved = {
            k for k in ("build", "pack", "define") if before[director][k] != after[director][k]
        }
        assert moved == changed, director


def test_renaming_an_ancestor_keeps_every_image_digest_but_changes_comments() -> None:
    files = golden_files()
    rename_base(files)
    before, after = open_golden(golden_files()), open_golden(files)
    for director, prefix, _ in PREFIXES:
        old, new = before.render(director), after.render(director)
        assert {n: i.digests for n, i in new.images.items()} == {
            n: i.digests for n, i in old.images.items()
        }
        pkglist = text(new, f"{prefix}custom/netboot/rocky/rocky8-compute.pkglist")
        assert pkglist.startswith("# rocky8-compute: chain core, compute\n")


def test_statelite_litefile_change_moves_pack_only() -> None:
    files = golden_files()
    edit_profile("lite", "/etc/adjtime: link", "/etc/adjtime: link,ro")(files)
    before = open_golden(golden_files()).render("cascade").images["rocky8-lite"].digests
    after = open_golden(files).render("cascade").images["rocky8-lite"].digests
    assert {k for k in before if before[k] != after[k]} == {"pack"}
