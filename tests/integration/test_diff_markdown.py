"""`imagespec diff --format markdown`: the pull-request comment (SPEC §8, docs/decisions.md "diff").

The output for a fixed small change is compared with golden files under
tests/golden/diff/, with the two revisions in the header replaced by BASE and
HEAD.  After an intended change to the report, regenerate them and review the
diff like code:

    IMAGESPEC_UPDATE_GOLDEN=1 python3 -m pytest tests/integration/test_diff_markdown.py

A large synthetic site (bench/sitegen.py) checks the 60,000-character limit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import sitegen
from tests.integration.sites import (
    AUX,
    COMPUTE,
    LEGACY,
    RENAMED_BASE,
    SMALL_IMAGES,
    SiteRepo,
    init_repo,
    run_main,
    site_yaml,
    small_site,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "diff"
UPDATE = os.environ.get("IMAGESPEC_UPDATE_GOLDEN") == "1"
LIMIT = 60_000
MARKER = "<!-- imagespec-diff -->"

IMAGES_AFTER = {k: v for k, v in SMALL_IMAGES.items() if k != "img-lite"}
IMAGES_AFTER["img-compute"] = {
    **SMALL_IMAGES["img-compute"],
    "attributes": {"addkcmdline": "console=ttyS0,115200n8"},
}
IMAGES_AFTER["img-extra"] = {"profile": "extra", "distro": "rocky8"}
CHANGE = {
    "profiles/aux.yaml": AUX.replace("[vim-enhanced]", "[vim-enhanced, tmux, -chrony]"),
    "profiles/legacy.yaml": LEGACY.replace("[python2]", "[perl]"),
    "profiles/extra.yaml": "inherits: [aux]\npackages: [htop]\n",
    "postscripts/50-site": '#!/bin/sh\necho "site setup, v2"\n',
    "imagespec.yaml": site_yaml(IMAGES_AFTER),
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteRepo]:
    """main: the small site (tag v1), then one commit of CHANGE (tag v2)."""
    site = init_repo(tmp_path_factory.mktemp("markdown-repo"), small_site())
    site.repo.create_tag("v1")
    site.commit("a small change", CHANGE)
    site.repo.create_tag("v2")
    yield site
    site.repo.close()


def markdown(capsys: pytest.CaptureFixture[str], site: SiteRepo, *revs: str) -> str:
    run = run_main(capsys, "--site", str(site.site), "diff", *revs, "--format", "markdown")
    assert run.code == 0, run.err
    assert run.err == ""
    return run.out


def normalised(text: str, site: SiteRepo, base: str, head: str) -> str:
    """The header's abbreviated shas as BASE and HEAD, so goldens do not depend on them."""
    header, _, rest = text.partition("\n")
    short = f"`{site.sha(base)[:10]}..{site.sha(head)[:10]}`"
    assert short in header, header
    return header.replace(short, "`BASE..HEAD`") + "\n" + rest


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"{path} is missing; run with IMAGESPEC_UPDATE_GOLDEN=1"
    assert text == path.read_text()


@pytest.mark.parametrize(
    ("golden", "base", "head"), [("change.md", "v1", "v2"), ("no-change.md", "v2", "v2")]
)
def test_markdown_matches_golden(
    repo: SiteRepo, capsys: pytest.CaptureFixture[str], golden: str, base: str, head: str
) -> None:
    text = markdown(capsys, repo, base, head)
    check_golden(golden, normalised(text, repo, base, head))


def test_header_names_revisions_and_director(
    repo: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    first = markdown(capsys, repo, "v1", "v2").splitlines()[0]
    assert first == (
        f"### imagespec: `{repo.sha('v1')[:10]}..{repo.sha('v2')[:10]}` on director `main`"
    )
    worktree = markdown(capsys, repo, "v1").splitlines()[0]
    assert worktree == f"### imagespec: `{repo.sha('v1')[:10]}..worktree` on director `main`"


def test_summary_table_comes_before_any_details(
    repo: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    text = markdown(capsys, repo, "v1", "v2")
    assert "<details>" in text
    assert text.index("| what happens | images |") < text.index("<details>")
    assert text.index("| image | status | actions | via |") < text.index("<details>")


def test_details_once_per_changed_image_and_none_for_removed(
    repo: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    text = markdown(capsys, repo, "v1", "v2")
    summaries = re.findall(r"<details><summary><code>([^<]+)</code>", text)
    # the frozen image last: its change is reported, never applied
    assert summaries == ["img-aux", "img-extra", "img-login", "img-compute", "img-legacy"]
    assert text.count("<details>") == text.count("</details>") == 5
    assert "| `img-lite` | removed | | |" in text.splitlines()
    assert "<code>img-lite</code>" not in text
    assert "**Truncated:**" not in text


def test_renamed_ancestor_is_no_image_change(
    repo: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    head = repo.branch("rename-base", "v1", RENAMED_BASE)
    text = markdown(capsys, repo, "v1", head)
    assert text.splitlines()[1:] == ["", "No image changes."]


def test_freezing_an_image_is_visible_in_markdown(
    repo: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """A change that reaches an image frozen in the same commit: marked frozen, flag shown."""
    images = {**SMALL_IMAGES, "img-compute": {**SMALL_IMAGES["img-compute"], "frozen": True}}
    edits = {
        "imagespec.yaml": site_yaml(images),
        "profiles/compute.yaml": COMPUTE.replace("[slurm]", "[slurm, munge]"),
    }
    head = repo.branch("freeze", "v1", edits)
    lines = markdown(capsys, repo, "v1", head).splitlines()
    assert "| `img-compute` | changed (frozen) | sync, genimage, pack | compute |" in lines
    assert "| frozen: changes not applied | 1 |" in lines
    assert not any(line.startswith("| rebuild") for line in lines), "a frozen image is not rebuilt"
    assert (
        "<details><summary><code>img-compute</code>: sync, genimage, pack"
        " (via compute; frozen: will not be applied)</summary>"
    ) in lines
    assert "- pkglist: added `munge`" in lines
    assert "- frozen: False -> True" in lines


def test_freezing_alone_is_no_image_change_in_markdown(
    repo: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """Freezing needs nothing on a director: no action, no change (docs/decisions.md)."""
    images = {**SMALL_IMAGES, "img-compute": {**SMALL_IMAGES["img-compute"], "frozen": True}}
    head = repo.branch("freeze-only", "v1", {"imagespec.yaml": site_yaml(images)})
    text = markdown(capsys, repo, "v1", head)
    assert text.splitlines()[1:] == ["", "No image changes."]


# ---------------------------------------------------------------- a large site


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteRepo]:
    """A synthetic site of 151 profiles and 302 images; both roots gain a package."""
    root = tmp_path_factory.mktemp("big-site")
    site = init_repo(root, {"README.md": "synthetic\n"})
    with pytest.MonkeyPatch.context() as patch:
        # shorter package lists keep it fast; the report's size does not depend on them
        patch.setattr(sitegen, "PACKAGES_PER_PROFILE", 20)
        sitegen.generate(root, 151)
    site.commit("the synthetic site")
    roots = []
    for path in sorted((root / "profiles").glob("*.yaml")):
        text = path.read_text()
        if "inherits:" not in text:
            roots.append(path.name)
            path.write_text(text.replace("packages:\n", "packages:\n  - brand-new-tool\n", 1))
    assert len(roots) >= 2
    site.commit("a new package in every root profile")
    yield site
    site.repo.close()


@pytest.mark.slow
def test_large_change_stays_under_the_comment_limit(
    big: SiteRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    text = markdown(capsys, big, "HEAD~1", "HEAD")
    images = re.findall(r"^\| `([^`]+)` \| changed \|", text, flags=re.MULTILINE)
    assert len(images) == 302
    assert len(text) < LIMIT
    # and still with the workflow's marker appended
    assert len(text + f"\n{MARKER}\n") < LIMIT
    assert "| rebuild (genimage + pack) | 302 |" in text
    assert text.index("| what happens |") < text.index("<details>")
    kept = text.count("<details>")
    assert 0 < kept < 302
    assert text.count("</details>") == kept
    notes = [line for line in text.splitlines() if line.startswith("> **Truncated:**")]
    assert notes == [
        f"> **Truncated:** details of {302 - kept} more image(s) are left out to stay under "
        "GitHub's comment size. Run `imagespec diff HEAD~1 HEAD` for the full report."
    ]
    assert text.rstrip().endswith("for the full report.")
