"""--only by name or glob and --profile: which images of a director they choose."""

from __future__ import annotations

import pytest

from imagespec.errors import UsageError
from imagespec.ops.select import nearest, select_images
from imagespec.render import RenderedDirector
from tests.helpers import memory_site, site_files


def render() -> RenderedDirector:
    files = site_files(
        {
            "base": {"packages": ["bash"]},
            "compute": {"inherits": ["base"], "packages": ["slurm"]},
            "gpu": {"inherits": ["compute"], "packages": ["cuda"]},
            "login": {"inherits": ["base"], "packages": ["gcc"]},
        },
        images={
            "rocky8-compute": {"profile": "compute", "distro": "rocky8"},
            "rocky8-gpu": {"profile": "gpu", "distro": "rocky8"},
            "rocky8-login": {"profile": "login", "distro": "rocky8"},
            "rocky9-login": {
                "profile": "login",
                "distro": "rocky8",
                "attributes": {"rootimgdir": "/install/netboot/rocky9/login"},
            },
        },
    )
    return memory_site(files).render("main")


def test_names_globs_and_profiles_choose_images_and_add_up() -> None:
    tree = render()
    assert select_images(tree, []) == set()
    assert select_images(tree, ["rocky8-gpu"]) == {"rocky8-gpu"}
    assert select_images(tree, ["rocky8-*"]) == {"rocky8-compute", "rocky8-gpu", "rocky8-login"}
    assert select_images(tree, ["*-login", "rocky8-g?u"]) == {
        "rocky8-login",
        "rocky9-login",
        "rocky8-gpu",
    }
    assert select_images(tree, ["rocky[9]-*"]) == {"rocky9-login"}
    # a profile chooses the images whose chain includes it, not only its own images
    assert select_images(tree, [], ["compute"]) == {"rocky8-compute", "rocky8-gpu"}
    assert select_images(tree, [], ["base"]) == set(tree.images)
    assert select_images(tree, ["rocky9-*"], ["gpu"]) == {"rocky9-login", "rocky8-gpu"}


def test_a_glob_matching_nothing_names_the_nearest_images() -> None:
    with pytest.raises(UsageError) as caught:
        select_images(render(), ["rocky7-*"])
    assert str(caught.value) == (
        "--only 'rocky7-*' matches no image of director main"
        " (nearest: rocky8-compute, rocky8-gpu, rocky8-login)"
    )
    assert nearest("rocky9-*", ["centos7-a", "rocky9-b", "rocky8-c"], 1) == ["rocky9-b"]


def test_a_name_without_glob_characters_must_be_an_image() -> None:
    with pytest.raises(UsageError, match=r"unknown image 'rocky8-gpus'; did you mean 'rocky8-gpu'"):
        select_images(render(), ["rocky8-gpus"])


def test_a_profile_no_image_uses_is_an_error_with_the_nearest_profile() -> None:
    with pytest.raises(UsageError) as caught:
        select_images(render(), [], ["comptue"])
    assert str(caught.value) == (
        "--profile 'comptue': no image of director main has it in its chain;"
        " did you mean 'compute'? (profiles: base, compute, gpu, login)"
    )
