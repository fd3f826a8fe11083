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
