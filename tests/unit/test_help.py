"""`--help` at 80 columns: flags are shown as flags, with no `<bool>` after them."""

from __future__ import annotations

import pytest
import typer

from imagespec.cli import app, main

COMMANDS = sorted(typer.main.get_group(app).commands)


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_help_shows_no_type_after_a_flag(
    command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert "-h, --help" in out
    assert "<bool>" not in out, out
    assert all(len(line) <= 80 for line in out.splitlines()), out


def test_apply_help_names_its_flags_and_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert {"apply", "import", "rollout"} <= set(COMMANDS)
    with pytest.raises(SystemExit):
        main(["apply", "--help"])
    out = capsys.readouterr().out
    assert "-y, --yes " in out
    assert "--rev REV " in out and "-d, --director NAME " in out and "--site PATH " in out


def test_every_command_summary_fits_80_columns_uncut(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """click cuts a summary that does not fit with "..."; each command has a short one."""
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    rows = out[out.index("Commands:") :].splitlines()[1:]
    listed = {row.split()[0]: row for row in rows if row.strip()}
    assert sorted(listed) == COMMANDS
    for row in listed.values():
        assert not row.rstrip().endswith("..."), row
        assert len(row.split(None, 1)[1]) > 20, row  # a summary, not an empty cell


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("plan", ["--only", "--rebuild"]),
        ("apply", ["--only", "--rebuild"]),
        ("adopt", ["--only"]),
    ],
)
def test_list_options_name_what_they_take(
    command: str,
    options: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "list[" not in out
    for option in options:
        assert f"{option} IMAGE " in out, out
