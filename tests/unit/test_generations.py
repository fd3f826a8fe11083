"""Reading the native builder's generation survey: literal output of the one read-only
round trip, parsed into a Survey."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Optional, cast

import pytest

from imagespec.builders.generations import Generation, ImageDirs, Survey, survey
from imagespec.runner import Effect, Result
from imagespec.transport.base import Transport

ROOT = "/install/netboot/rocky8/x86_64/compute"
DIRS = ImageDirs(ROOT)
DIGESTS = {"build": "sha256:" + "1" * 64, "pack": "sha256:" + "2" * 64, "define": None}


class Replay:
    """A runner that answers the survey with the given output and keeps the command."""

    def __init__(self, output: str) -> None:
        self.output = output
        self.calls: list[tuple[list[str], Effect]] = []

    def run(self, argv: Sequence[str], *, effect: Effect = Effect.CHANGE, **_: Any) -> Result:
        self.calls.append((list(argv), effect))
        return Result(list(argv), 0, self.output)


def parse(output: str, dirs: ImageDirs = DIRS) -> Survey:
    return survey(cast(Transport, Replay(output)), dirs)


def generation_line(number: int, **doc: Any) -> str:
    return f"{number}/generation.json\t{json.dumps(doc)}\n"


def test_the_directories_of_an_image() -> None:
    assert (DIRS.parent, DIRS.base) == ("/install/netboot/rocky8/x86_64", "compute")
    assert DIRS.home == "/install/netboot/rocky8/x86_64/.compute.imagespec"
    assert DIRS.staging == "/install/netboot/rocky8/x86_64/.compute.imagespec/staging"
    assert DIRS.gen(3) == "/install/netboot/rocky8/x86_64/.compute.imagespec/3"
    assert DIRS.link_target(3) == ".compute.imagespec/3"
    assert ImageDirs(ROOT + "/").home == DIRS.home


def test_the_survey_is_one_read_only_command_with_quoted_paths() -> None:
    replay = Replay("")
    survey(cast(Transport, replay), ImageDirs("/install/netboot/my image"))
    [(argv, effect)] = replay.calls
    assert argv[:2] == ["sh", "-c"]
    assert argv[2].splitlines()[0] == (
        "R='/install/netboot/my image'; H='/install/netboot/.my image.imagespec'"
    )
    assert effect is Effect.READ


def test_nothing_on_the_director_is_an_empty_survey() -> None:
    found = parse("")
    assert found == Survey(DIRS)
    assert found.highest == 0


def test_a_full_survey() -> None:
    output = (
        "link\t.compute.imagespec/2\n"
        + generation_line(0, generation=0, digests={}, adopted=True)
        + generation_line(
            1, generation=1, digests=DIGESTS, commit="a" * 40, time="2026-01-30T10:00:00Z"
        )
        + generation_line(2, generation=2, digests=DIGESTS, commit="b" * 40, time=None)
        + 'staging/build.json\t{"build": "sha256:'
        + "3" * 64
        + '"}\n'
    )
    assert parse(output) == Survey(
        DIRS,
        generations={
            0: Generation(0, adopted=True),
            1: Generation(1, DIGESTS, "a" * 40, "2026-01-30T10:00:00Z"),
            2: Generation(2, DIGESTS, "b" * 40, None),
        },
        current=2,
        staging_build="sha256:" + "3" * 64,
    )
    assert parse(output).highest == 2


@pytest.mark.parametrize(
    ("line", "current", "foreign_link"),
    [
        ("link\t.compute.imagespec/12", 12, None),
        ("link\t.compute.imagespec/staging", None, ".compute.imagespec/staging"),
        ("link\t.other.imagespec/3", None, ".other.imagespec/3"),
        ("link\t/srv/images/compute", None, "/srv/images/compute"),
        ("link\t.compute.imagespec/", None, ".compute.imagespec/"),
    ],
)
def test_the_link_in_use_is_a_generation_only_when_imagespec_made_it(
    line: str, current: Optional[int], foreign_link: Optional[str]
) -> None:
    found = parse(line + "\n")
    assert (found.current, found.foreign_link, found.foreign_dir) == (current, foreign_link, False)


def test_a_real_directory_at_rootimgdir_is_foreign() -> None:
    found = parse("dir\t\n")
    assert (found.foreign_dir, found.current, found.foreign_link) == (True, None, None)


def test_a_damaged_generation_record_still_counts_as_that_generation() -> None:
    found = parse("4/generation.json\t{not json\n5/generation.json\t[1, 2]\n")
    assert found.generations == {4: Generation(4), 5: Generation(5)}
    assert found.highest == 5


def test_a_damaged_staging_record_means_no_finished_genimage() -> None:
    assert parse("staging/build.json\t{\n").staging_build is None
    assert parse('staging/build.json\t{"pack": "x"}\n').staging_build is None


@pytest.mark.parametrize(
    "line",
    [
        "staging/generation.json\t{}",
        "old/generation.json\t{}",
        "3/build.json\t{}",
        "3/generation.json.bak\t{}",
        "something else",
        "",
    ],
)
def test_lines_that_are_not_part_of_the_layout_are_ignored(line: str) -> None:
    assert parse(line + "\n") == Survey(DIRS)
