"""`erase_first`: packages genimage erases before it installs the otherpkgs (`-name` lines).

rh/genimage runs the PRE_REMOVE pass of a section before that section's install
and the POST_REMOVE pass after it (xCAT-server/share/xcat/netboot/rh/genimage
lines 606-612 and 652-658); imgutils.pm (lines 166-169) files `--name` under
POST_REMOVE and `-name` under PRE_REMOVE.
"""

from __future__ import annotations

import pytest

from imagespec.errors import ConfigError
from imagespec.render import RenderedImage
from imagespec.render.readers import OtherPass, parse_otherpkglist
from imagespec.report.show import show_json
from imagespec.site import SiteView
from tests.helpers import memory_site, site_files

IMAGE = "img-compute"


def _site(compute: str, strict: bool = False) -> SiteView:
    base = "otherpkgs: [slurm/slurm]\nerase_first: [old-slurm, ntp]\nerase: [firewalld]\n"
    files = site_files(
        {"base": base, "compute": compute},
        images={IMAGE: {"profile": "compute", "distro": "rocky8"}},
    )
    return memory_site(files, strict=strict)


def _image(view: SiteView) -> RenderedImage:
    return view.render("main").images[IMAGE]


def _otherpkglist(view: SiteView) -> str:
    tree = view.render("main")
    (path,) = [p for p in tree.files if p.endswith(f"{IMAGE}.otherpkgs.pkglist")]
    return tree.files[path].data.decode()


def test_erase_first_lines_open_the_list_and_genimage_reads_them_as_pre_remove() -> None:
    view = _site("inherits: [base]\nerase_first: [-ntp, chrony]\n")
    text = _otherpkglist(view)
    body = [line for line in text.splitlines() if not line.startswith("#")]
    assert body == ["-old-slurm", "-chrony", "slurm/slurm", "--firewalld"]
    assert "# from profile base, erased before install" in text
    assert parse_otherpkglist(text) == [
        OtherPass(["old-slurm", "chrony"], {"slurm": ["slurm"]}, ["firewalld"])
    ]


def test_erase_first_is_in_show_only_when_set() -> None:
    with_it = show_json(_image(_site("inherits: [base]\n")))
    assert with_it["erase_first"] == ["old-slurm", "ntp"]
    without = show_json(_image(_site("inherits: [base]\nerase_first: [-old-slurm, -ntp]\n")))
    assert "erase_first" not in without


def test_erase_first_takes_package_names_only() -> None:
    with pytest.raises(ConfigError) as failed:
        _site("inherits: [base]\nerase_first: ['#NEW_INSTALL_LIST#', 'a b']\n")
    messages = str(failed.value)
    assert "compute.yaml:2:15: erase_first: '#NEW_INSTALL_LIST#' is a directive" in messages
    assert "compute.yaml:2:37: erase_first: 'a b' contains spaces" in messages
