"""A frozen image keeps the files it uses: apply refuses a commit that would overwrite one.

The apply site's frozen img-old is moved onto the `compute` profile, so it
shares base's postscript 50-site, postinstall 10-a and synclist etc/motd
with the images apply builds.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import dump_yaml
from tests.integration.sites import APPLY_PROFILES, Env, changing_calls, run_main

POSTSCRIPT = "postscripts/p/50-site"
ORIGINAL = "#!/bin/sh\nexit 0\n"
EDITED = "#!/bin/sh\necho site v2\n"


def share_base_files(env: Env) -> None:
    """img-old on the compute profile (base's files), applied once."""
    text = (env.site / "imagespec.yaml").read_text()
    assert "img-old:\n    profile: old\n" in text
    shared = text.replace("img-old:\n    profile: old", "img-old:\n    profile: compute")
    env.commit("img-old on compute", {"imagespec.yaml": shared})


def frozen_key_line(env: Env) -> int:
    lines = (env.site / "imagespec.yaml").read_text().splitlines()
    start = lines.index("  img-old:")
    return next(n for n, line in enumerate(lines[start:], start + 1) if "frozen: true" in line)


def test_files_not_on_the_director_yet_are_written_for_the_other_images(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    share_base_files(env)
    code, _, err = run_main(capsys, "apply", "--yes")
    assert code == 0, err
    assert (env.install / POSTSCRIPT).read_text() == ORIGINAL
    code, out, _ = run_main(capsys, "plan", "--json")
    assert json.loads(out)["frozen_files"] == {}


def test_plan_lists_and_apply_refuses_an_overwrite_of_a_frozen_images_file(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    share_base_files(env)
    assert run_main(capsys, "apply", "--yes")[0] == 0
    state_before = (env.install / "p/.imagespec/state.json").read_bytes()
    env.commit("site v2", {"postscripts/50-site": EDITED})

    code, out, err = run_main(capsys, "plan", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["frozen_files"] == {POSTSCRIPT: ["img-old"]}
    refused = f"refused: {POSTSCRIPT} is used by frozen img-old"
    for image in ("img-login", "img-compute", "img-lite"):
        assert refused in plan["images"][image]["reasons"]
    assert not any(r.startswith("refused") for r in plan["images"]["img-old"]["reasons"])
    code, out, _ = run_main(capsys, "plan")
    assert "refused:" in out

    calls = len(changing_calls(env.calls()))
    for argv in (("apply", "--yes"), ("apply", "--yes", "--only", "img-login")):
        code, out, err = run_main(capsys, *argv)
        assert code == 1, (out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith(f"error: imagespec.yaml:{frozen_key_line(env)}:")
        assert f"frozen img-old uses {POSTSCRIPT}" in lines[0]
        assert "unfreeze it (frozen: false)" in lines[0]
        assert "Traceback" not in out + err
    assert (env.install / POSTSCRIPT).read_text() == ORIGINAL, "the frozen image's file is kept"
    assert (env.install / "p/.imagespec/state.json").read_bytes() == state_before
    assert len(changing_calls(env.calls())) == calls, "nothing changed in xCAT"


def test_the_ways_forward_a_new_name_for_the_others_or_unfreezing(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    share_base_files(env)
    assert run_main(capsys, "apply", "--yes")[0] == 0
    env.commit("site v2", {"postscripts/50-site": EDITED})
    assert run_main(capsys, "apply", "--yes")[0] == 1

    # the other images get the new content under a new name; img-old keeps 50-site
    base = {**APPLY_PROFILES["base"], "postscripts": ["50-site-v2"]}
    old = {"inherits": ["compute"], "postscripts": ["50-site"]}
    env.commit(
        "site v2 for the others",
        {
            "postscripts/50-site": ORIGINAL,
            "postscripts/50-site-v2": EDITED,
            "profiles/base.yaml": dump_yaml(base),
            "profiles/old.yaml": dump_yaml(old),
            "imagespec.yaml": (env.site / "imagespec.yaml")
            .read_text()
            .replace("img-old:\n    profile: compute", "img-old:\n    profile: old"),
        },
    )
    code, out, err = run_main(capsys, "apply", "--yes")
    assert code == 0, (out, err)
    assert (env.install / POSTSCRIPT).read_text() == ORIGINAL
    assert (env.install / "postscripts/p/50-site-v2").read_text() == EDITED
    assert env.state()["commit"] == env.repo.head.commit.hexsha

    # 50-site is now img-old's alone: a change to it in git is left off the director
    env.commit("site v3", {"postscripts/50-site": "#!/bin/sh\necho v3\n"})
    assert run_main(capsys, "apply", "--yes")[0] == 0
    assert (env.install / POSTSCRIPT).read_text() == ORIGINAL
    # unfreezing: the file follows git again
    text = (env.site / "imagespec.yaml").read_text()
    env.commit("unfreeze", {"imagespec.yaml": text.replace("frozen: true", "frozen: false")})
    code, out, err = run_main(capsys, "apply", "--yes")
    assert code == 0, (out, err)
    assert (env.install / POSTSCRIPT).read_text() == "#!/bin/sh\necho v3\n"
