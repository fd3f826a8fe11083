"""`directors:` on an image: the test director need not build every production image (#14)."""

from __future__ import annotations

import pytest

from imagespec.diff import compare
from tests.unit.test_errors import lines, open_all, problem_lines, site

TWO = lines(
    "directors:",
    "  main:",
    "    install_root: /install",
    "    prefix: p",
    "  test:",
    "    install_root: /install",
    "    prefix: t",
)


def images(limit: str) -> str:
    return lines(
        "images:",
        "  img:",
        "    profile: p",
        "    distro: rocky8",
        "  prod:",
        "    profile: p",
        "    distro: rocky8",
        "    attributes: {rootimgdir: /install/netboot/prod}",
        *([f"    directors: {limit}"] if limit else []),
    )


def test_an_image_limited_to_directors_is_rendered_only_there() -> None:
    view = open_all(site(directors=TWO, images=images("[main]")))
    assert sorted(view.render("main").images) == ["img", "prod"]
    assert sorted(view.render("test").images) == ["img"]
    assert view.images_of("test") == ["img"]
    assert not any(p.startswith("t/") and "prod" in p for p in view.render("test").files)
    # a subset render never brings it back
    assert sorted(view.render("test", ["prod", "img"]).images) == ["img"]


def test_unknown_and_empty_director_lists_are_errors_with_their_place() -> None:
    assert problem_lines(site(directors=TWO, images=images("[mian]"))) == [
        "imagespec.yaml:23:17: image 'prod': unknown director 'mian'; did you mean 'main'?"
    ]
    assert problem_lines(site(directors=TWO, images=images("[]"))) == [
        "imagespec.yaml:23:5: image 'prod' has an empty 'directors' list, so no director"
        " builds it; name one, or remove the key for every director"
    ]


def test_limiting_an_image_away_shows_it_removed_on_that_director_only() -> None:
    old = open_all(site(directors=TWO, images=images("")))
    new = open_all(site(directors=TWO, images=images("[main]")))
    changed = {"imagespec.yaml"}
    test = compare(old, new, "test", changed, "a", "b")
    assert test.images["prod"].status == "removed"
    assert test.images["img"].status == "unchanged"
    main = compare(old, new, "main", changed, "a", "b")
    assert main.images["prod"].status == "unchanged"


@pytest.mark.parametrize("director", ["main", "test"])
def test_without_directors_an_image_is_built_everywhere(director: str) -> None:
    view = open_all(site(directors=TWO, images=images("")))
    assert sorted(view.render(director).images) == ["img", "prod"]
