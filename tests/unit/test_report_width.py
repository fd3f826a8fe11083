"""Reports at 80 columns, the width of an admin's tmux pane: names and paths stay whole.

Rendered with a rich Console of width 80 set up as the CLI sets up its own
(soft wrap: a line longer than the terminal is left to the terminal), on the
example site at the top of the repository.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console

from imagespec.actions import Action, ApplyResult
from imagespec.ops.reconcile import ApplyOutcome, ImageOutcome
from imagespec.report.apply import print_outcome
from imagespec.report.show import print_show
from imagespec.site import open_site
from imagespec.source import WorktreeSource

TOP = Path(__file__).resolve().parents[2]
VIEW = open_site(WorktreeSource(TOP))
CASCADE = VIEW.render("cascade")
NAMES = sorted(CASCADE.images)
LOGS = "/install/cascade/.imagespec/logs"
CAUSE = "genimage exited 1: No match for argument: slurm-slurmd (see the log)"


def render(print_it: object, *args: object) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, width=80, soft_wrap=True, highlight=False, color_system=None)
    print_it(console, *args)  # type: ignore[operator]
    return out.getvalue().splitlines()


def whole(word: str, lines: list[str]) -> bool:
    return any(re.search(rf"(^|[\s:]){re.escape(word)}($|[\s:])", line) for line in lines)


def nine_images() -> ApplyOutcome:
    """The example site's first apply on cascade: every image built, one failed, one frozen."""
    outcome = ApplyOutcome("cascade", "0123456789abcdef" * 2 + "01234567")
    for name in NAMES:
        if CASCADE.images[name].frozen:
            outcome.images.append(ImageOutcome(name, ApplyResult.FROZEN))
            continue
        failed = name == "rocky8-x86_64-netboot-compute-min"
        outcome.images.append(
            ImageOutcome(
                name,
                ApplyResult.FAILED if failed else ApplyResult.DONE,
                [Action.SYNC, Action.DEFINE, Action.GENIMAGE, Action.PACK],
                1234.5,
                CAUSE if failed else None,
                f"{LOGS}/{name}/2026-01-01T000000Z.log",
            )
        )
    return outcome


def test_the_example_site_has_nine_or_more_images_with_long_names() -> None:
    assert len(NAMES) >= 9
    assert max(len(n) for n in NAMES) >= 30


def test_a_nine_image_apply_summary_is_one_line_per_image_with_names_whole() -> None:
    lines = render(print_outcome, nine_images())
    for name in NAMES:
        assert whole(name, lines), (name, lines)
    table = lines[: len(NAMES) + 2]  # the title, the header and one row per image
    assert all(len(line) <= 80 for line in table), "\n".join(table)
    assert len(lines) <= len(NAMES) + 6, "\n".join(lines)
    assert f"rocky8-x86_64-netboot-compute-min: failed in {CAUSE}" in lines, "the cause, whole"
    assert f"  log: {LOGS}/rocky8-x86_64-netboot-compute-min/2026-01-01T000000Z.log" in lines
    assert f"build logs: {LOGS}/<image>/ (-v lists each)" in lines
    assert lines[-1].startswith(f"{len(NAMES) - 2} done, 1 failed, 1 unchanged;")


def test_apply_lists_every_log_on_its_own_line_with_verbose() -> None:
    lines = render(print_outcome, nine_images(), True)
    for name in NAMES:
        if not CASCADE.images[name].frozen and name != "rocky8-x86_64-netboot-compute-min":
            assert f"log of {name}: {LOGS}/{name}/2026-01-01T000000Z.log" in lines


def test_a_sync_only_apply_says_synced_not_up_to_date() -> None:
    outcome = ApplyOutcome("cascade", "0" * 40, files_written=2)
    outcome.images = [
        ImageOutcome(NAMES[0], ApplyResult.UP_TO_DATE, [Action.SYNC]),
        ImageOutcome(NAMES[1], ApplyResult.UP_TO_DATE),
    ]
    lines = render(print_outcome, outcome)
    row = next(line for line in lines if line.startswith(NAMES[0]))
    assert row.split()[1:] == ["synced", "sync"]
    assert "up to date" not in row
    assert lines[-1].startswith("0 done, 1 synced, 0 failed, 1 unchanged; 2 file(s) written")


def test_show_never_breaks_a_path_or_an_entry_at_80_columns() -> None:
    image = CASCADE.images["rocky8-x86_64-netboot-login"]
    lines = render(print_show, image)
    for item in image.resolved.merge.sync:
        for source in item.sources:
            assert whole(source, lines), (source, lines)
        assert whole(item.dest, lines) or whole(item.dest.rstrip("/"), lines), item.dest
    for value in image.digests.values():
        assert whole(value, lines)
    assert any(line.rstrip().endswith("-> /etc/motd [copy]") for line in lines), (
        "a sync row keeps its mode: repository text is never read as markup"
    )
    assert whole("profiles/login.yaml:31:5", lines)
