"""Rules imagespec takes from xCAT 2.19's own code, one test per rule.

Each test names the xCAT source line it follows (xcat2/xcat-core at 2.19), so
that a reader can check the fact.  Sites are the small in-memory sites of
test_errors.py; the expected lines are what `imagespec validate` prints.
"""

from __future__ import annotations

import pytest

from imagespec.render.readers import parse_synclist_for_pack
from imagespec.validate import liteimg_children
from tests.helpers import Files
from tests.unit.test_errors import IMAGES, STATELITE, lines, open_all, problem_lines, site

# ---------------------------------------------------------------- osimage attributes (item 11)


@pytest.mark.parametrize("name", ["comments", "disable"])
def test_table_columns_comments_and_disable_are_not_osimage_attributes(name: str) -> None:
    """perl-xCAT/xCAT/Schema.pm:776 and 810 list `comments` and `disable` as columns of the
    osimage and linuximage tables, but the osimage object (defspec, Schema.pm:3183-3518) has
    no such attribute: mkdef skips it with an error (DBobjectdefs.pm:1658-1665)."""
    view = open_all(site(lines("attributes:", f"  {name}: x")))
    assert [str(w) for w in view.warnings] == [
        f"profiles/p.yaml:2:3: warning: profile 'p': '{name}' is not an osimage attribute "
        "xCAT knows; mkdef would reject it"
    ]


@pytest.mark.parametrize("name", ["usercomment", "nfsrootopts"])
def test_usercomment_and_nfsrootopts_are_osimage_attributes(name: str) -> None:
    """Schema.pm:3374-3376 maps `usercomment` to linuximage.comments; Schema.pm:3221 defines
    `nfsrootopts` (new in 2.19).  Both are written into the stanza."""
    view = open_all(site(lines("attributes:", f"  {name}: ro,vers=4"), images=IMAGES), True)
    assert view.warnings == []
    assert view.render("main").images["img"].attributes[name] == "ro,vers=4"


@pytest.mark.parametrize("name", ["default-osimage", "default-x"])
def test_image_named_default_dash_type_is_refused(name: str) -> None:
    """DBobjUtils.pm:1739-1745 (readFileInput): a stanza named `default-<type>` (no further
    '-') holds defaults for that object type and is never created as an object."""
    images = lines("images:", f"  {name}:", "    profile: p", "    distro: rocky8")
    assert problem_lines(site(images=images)) == [
        f"imagespec.yaml:13:3: image name '{name}' is read by xCAT's stanza reader as the "
        f"defaults for objects of type '{name.split('-', 1)[1]}', not as an osimage, so mkdef "
        "never creates it; rename it"
    ]


def test_image_names_ending_in_the_staging_suffix_are_reserved() -> None:
    """The xcat builder builds image X through the osimage X-imagespec-staging
    (builders/xcat.py); an image of that name would be replaced by a build."""
    name = "img-imagespec-staging"
    images = lines("images:", f"  {name}:", "    profile: p", "    distro: rocky8")
    assert problem_lines(site(images=images)) == [
        f"imagespec.yaml:13:3: image name '{name}' ends in '-imagespec-staging', which the xcat"
        " builder uses for the temporary osimage each build goes through; rename it"
    ]


@pytest.mark.parametrize("name", ["rocky8-default", "default-compute-x86", "mydefault", "default"])
def test_other_names_containing_default_are_ordinary_images(name: str) -> None:
    """Only ^default-([^-]+)$ is special (DBobjUtils.pm:1739); the rule that any name
    containing 'default' was a defaults stanza predates xCAT 2.14."""
    images = lines("images:", f"  {name}:", "    profile: p", "    distro: rocky8")
    view = open_all(site(images=images), strict=True)
    assert list(view.render("main").images) == [name]


# ---------------------------------------------------------------- sync clauses (item 8)


def test_append_limited_to_nodes_is_refused() -> None:
    """APPEND: lines are queued for every node of the sync whatever their noderange
    (perl-xCAT/xCAT/DSHCLI.pm:5188-5195, build_append_rsync 5429-5445), and the text after
    '->' becomes the append target, '(n1) /etc/hosts' (bld_and_run_append 6060-6095)."""
    files = site(
        lines("sync:", "  - {src: hosts, dest: /etc/hosts, mode: append, nodes: n1}"),
        extra={"synclists/hosts": "10.0.0.1 mn\n"},
    )
    assert problem_lines(files) == [
        "profiles/p.yaml:2:5: sync: mode append cannot be limited with 'nodes': xCAT appends on "
        "every node of the image and passes '(nodes) dest' to its append script as the file to "
        "append to (DSHCLI.pm:6060-6095); remove 'nodes', or give those nodes an image of "
        "their own"
    ]


def test_merge_limited_to_nodes_is_refused() -> None:
    """MERGE: takes the text after '->' as the file to merge and accepts only /etc/passwd,
    /etc/group, /etc/shadow, /etc/gshadow (DSHCLI.pm:6201-6212): '(n1) /etc/passwd' is
    refused for every node."""
    files = site(
        lines("sync:", "  - {src: passwd, dest: /etc/passwd, mode: merge, nodes: 'n[1-4]'}"),
        extra={"synclists/passwd": "svc:x:900:900::/:/sbin/nologin\n"},
    )
    assert problem_lines(files) == [
        "profiles/p.yaml:2:5: sync: mode merge cannot be limited with 'nodes': xCAT takes "
        "'(nodes) dest' for the file to merge and refuses it for every node "
        "(DSHCLI.pm:6201-6212); remove 'nodes', or give those nodes an image of their own"
    ]


@pytest.mark.parametrize("mode", ["copy", "execute", "executealways"])
def test_plain_and_execute_entries_may_be_limited_to_nodes(mode: str) -> None:
    """Plain lines accept `src -> (noderange) dest` (DSHCLI.pm:5241-5260)."""
    files = site(
        lines("sync:", f"  - {{src: a.conf, dest: /etc/a.conf, mode: {mode}, nodes: n1}}"),
        extra={"synclists/a.conf": "x\n", "synclists/a.conf.post": "#!/bin/sh\n"},
    )
    synclist = open_all(files, strict=True).render("main").files
    text = synclist["p/custom/netboot/rocky/img.synclist"].data.decode()
    assert "/install/p/custom/synclists/a.conf -> (n1) /etc/a.conf" in text.splitlines()


# ---------------------------------------------------------------- litefile rows (item 9)
#
# liteimg (xCAT-server/lib/xcat/plugins/statelite.pm) checks the rows ilitefile gives it
# only after genimage ran; validate refuses the same rows first.


def lite(*rows: str) -> Files:
    """The statelite image with these litefile rows ("path: option")."""
    return site(lines("litefile:", *(f"  {row}" for row in rows)), images=STATELITE)


def lite_problems(*rows: str) -> list[str]:
    return problem_lines(lite(*rows))


def accepted(*rows: str) -> None:
    view = open_all(lite(*rows), strict=True)
    assert view.render("main").images["img"].statelite


def test_tmpfs_rw_directory_is_a_link_directory_for_its_children() -> None:
    """statelite.pm:277-280 rewrites tmpfs,rw to link before checking, so the rows under a
    tmpfs,rw directory must be link rows (statelite.pm:327)."""
    assert lite_problems("/root/.ssh/: tmpfs,rw", "/root/.ssh/authorized_keys: tmpfs") == [
        "profiles/p.yaml:3:3: image 'img': litefile '/root/.ssh/authorized_keys' (tmpfs) "
        "under '/root/.ssh/' (tmpfs,rw, which liteimg reads as link): under a link directory "
        "liteimg allows only link rows (statelite.pm:327); change '/root/.ssh/authorized_keys' "
        "or '/root/.ssh/'"
    ]


def test_tmpfs_rw_row_counts_as_link_under_a_link_directory() -> None:
    """After the rewrite (statelite.pm:277-280) a tmpfs,rw row is a link row, which a link
    directory accepts."""
    accepted("/var/spool/: link", "/var/spool/cron: tmpfs,rw")


def test_link_ro_under_a_link_directory_is_refused() -> None:
    """statelite.pm:322-326: a link directory refuses a link,ro row under it."""
    assert lite_problems("/var/spool/: link", "/var/spool/motd: link,ro") == [
        "profiles/p.yaml:3:3: image 'img': litefile '/var/spool/motd' (link,ro) under "
        "'/var/spool/' (link): liteimg refuses link,ro under a link directory "
        "(statelite.pm:323); change '/var/spool/motd' or '/var/spool/'"
    ]


@pytest.mark.parametrize("option", ["con", "link,con"])
def test_con_on_a_directory_is_refused(option: str) -> None:
    """statelite.pm:296-299: an option containing con on a path ending in '/' is refused."""
    assert lite_problems(f"/etc/cfg/: '{option}'") == [
        f"profiles/p.yaml:2:3: image 'img': litefile '/etc/cfg/' ({option}) is a directory, "
        "and liteimg refuses con on a directory (statelite.pm:296); give it another option "
        "or list its files"
    ]


@pytest.mark.parametrize("option", ["ro", "con", "link,ro", "link,con"])
def test_a_ro_or_con_directory_may_have_no_rows_under_it(option: str) -> None:
    """statelite.pm:314-318: a parent whose option ends in ro or con is refused when any row
    is paired with it (link,ro and link,con included)."""
    problems = lite_problems(f"/opt/app/: '{option}'", "/opt/app/x: link")
    assert problems[-1] == (
        f"profiles/p.yaml:3:3: image 'img': litefile '/opt/app/x' (link) under '/opt/app/' "
        f"({option}): liteimg refuses any row under a ro or con directory (statelite.pm:315); "
        "change '/opt/app/x' or '/opt/app/'"
    )


def test_rows_are_checked_against_the_nearest_listed_ancestor() -> None:
    """parseLiteFiles (statelite.pm:735-743) walks up to the first listed directory: here
    /var/, since /var/log/ is not listed; persistent rule at statelite.pm:343."""
    assert lite_problems("/var/: persistent", "/var/log/messages: tmpfs") == [
        "profiles/p.yaml:3:3: image 'img': litefile '/var/log/messages' (tmpfs) under '/var/' "
        "(persistent): under a persistent directory liteimg allows only persistent rows "
        "(statelite.pm:343); change '/var/log/messages' or '/var/'"
    ]
    # the nearest one only: /var/log/ (link,persistent) is the parent, not /var/
    accepted(
        "/var/: persistent", "/var/log/: link,persistent", "/var/log/messages: link,persistent"
    )


def test_a_row_whose_path_only_ends_like_a_listed_directory_is_paired_with_it() -> None:
    """statelite.pm:739 matches each directory against the end of every row's path: for
    /lib/firmware/x the directory /lib/firmware/ matches the row /usr/lib/firmware/ (and
    nothing else), so liteimg checks the pair."""
    assert lite_problems("/usr/lib/firmware/: persistent", "/lib/firmware/x: tmpfs") == [
        "profiles/p.yaml:3:3: image 'img': litefile '/lib/firmware/x' (tmpfs) under "
        "'/usr/lib/firmware/' (persistent): under a persistent directory liteimg allows only "
        "persistent rows (statelite.pm:343) (liteimg takes '/usr/lib/firmware/' for the "
        "parent of '/lib/firmware/x' because the path ends the same way, statelite.pm:739); "
        "change '/lib/firmware/x' or '/usr/lib/firmware/'"
    ]


def test_suffix_match_of_two_rows_pairs_with_neither() -> None:
    """statelite.pm:741 accepts a parent only when exactly one row matches; with two the
    walk goes on up, here to nothing."""
    accepted("/usr/lib/firmware/: persistent", "/lib/firmware/: tmpfs", "/lib/firmware/x: tmpfs")
    rows = {"/a/b/": "ro", "/x/a/b/": "ro", "/a/b/c": "link", "/etc/mtab": "link"}
    assert liteimg_children(rows) == {}


def test_mtab_is_a_link_row_in_every_statelite_image() -> None:
    """ilitefile adds /etc/mtab as tmpfs,rw to every Linux image's rows (litetree.pm:414-417),
    which liteimg reads as link: under a persistent /etc/ it is refused (statelite.pm:343),
    and it makes a ro /etc/ a directory with rows under it (statelite.pm:315)."""
    assert lite_problems("/etc/: persistent") == [
        "profiles/p.yaml:2:3: image 'img': litefile '/etc/mtab' (link, a row xCAT adds to "
        "every statelite image) under '/etc/' (persistent): under a persistent directory "
        "liteimg allows only persistent rows (statelite.pm:343); change '/etc/'"
    ]
    assert lite_problems("/etc/: ro")[0].startswith(
        "profiles/p.yaml:2:3: image 'img': litefile '/etc/mtab' (link, a row xCAT adds to "
        "every statelite image) under '/etc/' (ro): liteimg refuses any row under a ro or con "
        "directory (statelite.pm:315)"
    )
    accepted("/etc/: link")


def test_an_option_written_for_mtab_is_ignored_with_a_warning() -> None:
    """litetree.pm:395-401 replaces any option given for /etc/mtab with tmpfs,rw."""
    view = open_all(lite("/etc/mtab: persistent"))
    assert [str(w) for w in view.warnings] == [
        "profiles/p.yaml:2:3: warning: image 'img': litefile '/etc/mtab' (persistent): xCAT "
        "always lists /etc/mtab as tmpfs,rw, read as link (litetree.pm:395-401), whatever the "
        "option; write link"
    ]


def test_link_row_under_a_directory_that_is_not_link_is_accepted() -> None:
    """statelite.pm:332-341 means to refuse link rows under a directory that is not link
    (except /etc/mtab), but compares the paths with `!=`, numerically: both are 0, so
    liteimg never refuses, and neither does validate."""
    accepted("/var/: tmpfs", "/var/run/x: link")


# ---------------------------------------------------------------- sync on statelite images (item 10)

SYNC_SOURCES: Files = {
    "synclists/motd": "welcome\n",
    "synclists/hosts": "10.0.0.1 mn\n",
    "synclists/node-info": "#!/bin/sh\nuname -n\n",
}


def statelite_sync(*entries: str) -> Files:
    return site(
        lines("sync:", *(f"  - {e}" for e in entries)), images=STATELITE, extra=SYNC_SOURCES
    )


def test_plain_sync_entries_of_a_statelite_image_are_copied_by_liteimg() -> None:
    """liteimg runs `xdcp -i <rootimg> -F <synclist>` (statelite.pm:234-244), which copies
    the plain lines without a noderange into the root (DSHCLI.pm:4999-5012): no warning."""
    view = open_all(statelite_sync("{src: motd, dest: /etc/motd}"), strict=True)
    image = view.render("main").images["img"]
    synclist = view.render("main").files[image.attributes["synclists"].removeprefix("/install/")]
    assert "/install/p/custom/synclists/motd -> /etc/motd" in synclist.data.decode().splitlines()


@pytest.mark.parametrize(
    ("entry", "what"),
    [
        ("{src: hosts, dest: /etc/hosts, mode: append}", "(mode append) is never applied"),
        ("{src: motd, dest: /etc/motd, nodes: n1}", "(nodes n1) never reaches its nodes"),
        (
            "{src: node-info, dest: /usr/local/bin/node-info, mode: executealways}",
            "(mode executealways) is copied into the root but never run",
        ),
    ],
)
def test_sync_entries_only_the_boot_time_sync_applies_are_a_warning(entry: str, what: str) -> None:
    """Noderange lines and clauses are skipped by liteimg's copy (DSHCLI.pm:4999-5012), and
    the boot-time syncfiles postscript exits on statelite nodes
    (xCAT/postscripts/syncfiles:16-21)."""
    view = open_all(statelite_sync(entry))
    dest = entry.split("dest: ")[1].split(",")[0]
    assert [str(w) for w in view.warnings] == [
        f"profiles/p.yaml:2:5: warning: image 'img' is statelite: the sync entry for '{dest}' "
        f"{what}: liteimg copies only plain entries without nodes into the root, and the "
        "syncfiles postscript does nothing on statelite nodes; drop it in the image's profile, "
        "or give those nodes a netboot image"
    ]


# ---------------------------------------------------------------- the synclists attribute (item 6a)


def test_an_image_without_sync_entries_still_names_a_synclist() -> None:
    """Without a synclists attribute, getsynclistfile returns the legacy
    /install/custom/netboot/<platform>/<profile>*.synclist (xCAT-server/lib/perl/xCAT/
    SvrUtils.pm:421-448), which packimage (packimage.pm:435-446) and liteimg
    (statelite.pm:235-243) copy into the image.  So every image gets a synclist and
    the attribute, even with no entries: the file holds only comments."""
    tree = open_all(site(lines("packages: [bash]")), strict=True).render("main")
    image = tree.images["img"]
    assert image.attributes["synclists"] == "/install/p/custom/netboot/rocky/img.synclist"
    stanza = tree.files[image.stanza_path].data.decode()
    assert "    synclists=/install/p/custom/netboot/rocky/img.synclist" in stanza.splitlines()
    text = tree.files["p/custom/netboot/rocky/img.synclist"].data.decode()
    assert text == (
        "# img: chain p\n"
        "# generated by imagespec from profiles/*.yaml; edit the profiles, not this file\n"
        "# no sync entries: this file exists so that packimage and liteimg never fall back"
        " to a /install/custom/netboot/<platform>/<profile>*.synclist file\n"
    )
    assert parse_synclist_for_pack(text) == []
    assert all(line.startswith("#") for line in text.splitlines())
