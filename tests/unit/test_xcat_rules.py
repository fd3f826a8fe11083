"""Rules imagespec takes from xCAT 2.19's own code, one test per rule.

Each test names the xCAT source line it follows (xcat2/xcat-core at 2.19), so
that a reader can check the fact.  Sites are the small in-memory sites of
test_errors.py; the expected lines are what `imagespec validate` prints.
"""

from __future__ import annotations

import pytest

from tests.unit.test_errors import IMAGES, lines, open_all, problem_lines, site

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
