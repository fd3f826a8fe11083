"""`--only GLOB` and `--profile` on plan, apply and adopt; shell completion of names.

Completion runs the real entry point the way the shell's completion script
does (bash's COMP_WORDS/COMP_CWORD, zsh's _TYPER_COMPLETE_ARGS).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

from tests.integration.sites import Env, assert_clean_failure, build_calls, run_main


def complete(cwd: Path, words: str, site: Optional[str] = None) -> subprocess.CompletedProcess[str]:
    """What bash's completion gets for the last word of `words` ('' after a space)."""
    parts = words.split(" ")
    env = {
        **os.environ,
        "_IMAGESPEC_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(parts) - 1),
    }
    return subprocess.run(
        [sys.executable, "-m", "imagespec"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_completion_names_images_directors_and_profiles_of_the_site_found_from_the_cwd(
    env: Env,
) -> None:
    assert complete(env.site, "imagespec apply --only img-l").stdout.split() == [
        "img-lite",
        "img-login",
    ]
    assert complete(env.site, "imagespec show ").stdout.split() == [
        "img-compute",
        "img-lite",
        "img-login",
        "img-old",
    ]
    assert complete(env.site / "profiles", "imagespec plan -d ").stdout.split() == ["here"]
    assert complete(env.site, "imagespec plan --profile l").stdout.split() == ["lite", "login"]
    elsewhere = env.site.parent / "elsewhere"
    elsewhere.mkdir()
    done = complete(elsewhere, f"imagespec --site {env.site} logs img-c")
    assert done.stdout.split() == ["img-compute"]
    assert complete(elsewhere, "imagespec show ").stdout.strip() == ""


def test_completion_is_silent_when_the_site_does_not_load(env: Env) -> None:
    (env.site / "imagespec.yaml").write_text("images: [unclosed\n")
    done = complete(env.site, "imagespec show img")
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "", "")
    (env.site / "imagespec.yaml").write_text("images: {a: 1, a: 2}\ndirectors: 7\n")
    done = complete(env.site, "imagespec plan -d ")
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "", "")


def test_plan_and_apply_choose_images_by_glob_and_by_profile(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(capsys, "plan", "--json", "--only", "img-l*")
    assert code == 0, err
    busy = {n for n, i in json.loads(out)["images"].items() if "genimage" in i["actions"]}
    assert busy == {"img-lite", "img-login"}
    code, out, err = run_main(capsys, "plan", "--json", "--profile", "compute")
    assert code == 0, err
    busy = {n for n, i in json.loads(out)["images"].items() if "genimage" in i["actions"]}
    assert busy == {"img-compute", "img-lite"}, "lite inherits compute"

    code, out, err = run_main(capsys, "apply", "--yes", "--profile", "lite", "--only", "img-c*")
    assert code == 0, (out, err)
    built = {c[1] for c in build_calls(env.calls()) if c[0] in ("genimage", "liteimg")}
    assert built == {"img-lite", "img-compute"}
    assert set(env.state()["images"]) >= {"img-lite", "img-compute"}
    assert env.state()["images"].get("img-login", {}).get("status") != "ok"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("plan", "--only", "rocky8-*"),
            "error: --only 'rocky8-*' matches no image of director here (nearest: ",
        ),
        (
            ("apply", "--yes", "--profile", "comptue"),
            "error: --profile 'comptue': no image of director here has it in its chain;"
            " did you mean 'compute'?",
        ),
        (("adopt", "--dry-run", "--only", "img-x?"), "error: --only 'img-x?' matches no image"),
    ],
)
def test_a_glob_or_profile_matching_nothing_is_a_one_line_error(
    env: Env, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    run = run_main(capsys, *argv)
    assert_clean_failure(run)
    assert len(run.err_lines) == 1, run.err
    assert run.err_lines[0].startswith(message), run.err
    assert build_calls(env.calls()) == []
