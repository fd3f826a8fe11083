"""Global options on either side of the command: `-v` is moved in front of it."""

from __future__ import annotations

import pytest
import typer

from imagespec.cli import app, hoist_verbose

COMMANDS = typer.main.get_command(app).commands  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["plan", "-v"], ["-v", "plan"]),
        (["plan", "--only", "x", "-vv", "--json"], ["-vv", "plan", "--only", "x", "--json"]),
        (
            ["--site", "s", "apply", "--yes", "--verbose"],
            ["--site", "s", "--verbose", "apply", "--yes"],
        ),
        (["-v", "plan"], ["-v", "plan"]),
        # the value of an option and what follows `--` stay where they are
        (["plan", "--only", "-v"], ["plan", "--only", "-v"]),
        (["explain", "img", "--", "-v"], ["explain", "img", "--", "-v"]),
        # not a command: click reports it as it is
        (["nope", "-v"], ["nope", "-v"]),
        (["--site", "-v"], ["--site", "-v"]),
    ],
)
def test_verbose_after_the_command_moves_in_front_of_it(
    argv: list[str], expected: list[str]
) -> None:
    assert hoist_verbose(argv, COMMANDS) == expected
