"""imagespec on a real terminal: a pseudo-terminal of 80 columns, as an admin in tmux sees it.

The in-process runs of the other tests have no terminal, so what only a
terminal shows (the confirmation prompt, the live progress display, rich's
layout at the terminal's width) is tested here with pexpect.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pexpect

from tests.integration.sites import Env, build_calls

PROMPT = "apply this plan? [y/N]: "
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def spawn(site: Path, *argv: str) -> pexpect.spawn:
    """`imagespec ARGV` on an 80x24 pseudo-terminal, in the site, with the test's PATH."""
    environ = {**os.environ, "COLUMNS": "80", "LINES": "24", "TERM": "xterm-256color"}
    environ.pop("NO_COLOR", None)
    return pexpect.spawn(
        sys.executable,
        ["-m", "imagespec", *argv],
        cwd=str(site),
        env=environ,
        dimensions=(24, 80),
        encoding="utf-8",
        timeout=120,
    )


def finish(child: pexpect.spawn) -> tuple[int, str]:
    """Wait for the end; the exit code and everything printed, without terminal escapes."""
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, ANSI.sub("", child.before or "")


def expect_prompt(child: pexpect.spawn) -> str:
    """The question is printed and stays: nothing is written after it until it is answered.

    A live display started before the question redraws the screen ten times a
    second and erases the question's line: an escape sequence arrives within a
    second.  A waiting prompt writes nothing, however long one watches."""
    child.expect_exact(PROMPT)
    shown = ANSI.sub("", child.before or "")
    seen = child.expect([".+", pexpect.TIMEOUT], timeout=1)
    assert seen == 1, f"written after the question: {child.after!r}"
    return shown


def test_apply_shows_its_prompt_and_no_changes_nothing(env: Env) -> None:
    child = spawn(env.site, "apply")
    shown = expect_prompt(child)
    assert "plan for director here" in shown, "the plan is shown before the question"
    child.sendline("n")
    code, out = finish(child)
    assert code == 1, out
    assert "apply cancelled; nothing was changed" in out
    assert build_calls(env.calls()) == []
    assert not (env.install / "p/.imagespec/state.json").exists()
    assert not (env.install / "p/custom").exists()


def test_apply_shows_its_prompt_and_yes_applies(env: Env) -> None:
    child = spawn(env.site, "apply")
    expect_prompt(child)
    child.sendline("y")
    code, out = finish(child)
    assert code == 0, out
    assert ["genimage", "img-login"] in build_calls(env.calls())
    assert env.state()["commit"] == env.repo.head.commit.hexsha
    assert "3 done, 0 failed" in out


# The example site's longest names: an 80-column table must keep each whole.
LONG = {
    "img-login": "rocky8-x86_64-netboot-datamover",
    "img-compute": "rocky8-x86_64-netboot-compute-min",
    "img-lite": "rocky8-x86_64-statelite-compute",
    "img-old": "centos7-x86_64-netboot-compute",
}


def long_names(env: Env) -> None:
    """The apply site with the example site's long image names, committed."""
    text = (env.site / "imagespec.yaml").read_text()
    for short, long in LONG.items():
        text = text.replace(f"{short}:", f"{long}:")
    env.commit("long names", {"imagespec.yaml": text})


def whole_names(out: str) -> list[str]:
    """The image names that appear whole on one line, as a word of their own."""
    return [n for n in LONG.values() if re.search(rf"(^|\s){re.escape(n)}(\s|$)", out, re.M)]


def test_tables_keep_names_whole_at_80_columns(env: Env) -> None:
    long_names(env)
    code, out = finish(spawn(env.site, "plan"))
    assert code == 0, out
    assert sorted(whole_names(out)) == sorted(LONG.values()), out
    assert "frozen: never touched" not in out and "never touched by" in out
    code, out = finish(spawn(env.site, "apply", "--yes"))
    assert code == 0, out
    table = out[out.index("director here at") :].splitlines()
    assert sorted(whole_names(out)) == sorted(LONG.values()), out
    assert all(len(line) <= 80 for line in table[: len(LONG) + 2]), out
    assert len(table) <= len(LONG) + 4, "one line per image, the logs' directory, a summary"
    assert "build logs: " in out and "/.imagespec/logs/<image>/" in out
    code, out = finish(spawn(env.site, "status"))
    assert code == 0, out
    assert sorted(whole_names(out)) == sorted(LONG.values()), out
    assert all(len(line) <= 80 for line in out.splitlines()[1:]), out
