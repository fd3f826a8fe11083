"""Time real native builds of the example site: full build, rebuild, re-pack, no-op.

Clones this repository's HEAD into a temporary directory, builds the stand-in
package repository there, then runs `imagespec apply -d local --yes` as a user
would, for each step below, and prints the wall-clock seconds:

  first apply   every image built from scratch (genimage + pack)
  no-op         nothing changed
  rebuild       a package added to the aux profile (genimage + pack of the
                images that inherit aux)
  re-pack       an exclude added to the base profile (pack of every image)
  no-op again

    .venv/bin/python bench/demo_builds.py [--json out.json]

Needs root (dnf --installroot), like the demo.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMAGESPEC = Path(sys.executable).parent / "imagespec"
IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@imagespec.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@imagespec.invalid",
}


def sh(argv: list[str], cwd: Path) -> str:
    env = {**os.environ, **IDENTITY}
    return subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def timed_apply(site: Path) -> tuple[float, str]:
    start = time.perf_counter()
    out = sh([str(IMAGESPEC), "apply", "-d", "local", "--yes"], site)
    return time.perf_counter() - start, out.strip().splitlines()[-1]


def edit_and_commit(site: Path, rel: str, old: str, new: str, message: str) -> None:
    path = site / rel
    text = path.read_text()
    assert old in text, f"{rel} no longer contains {old!r}; update the benchmark"
    path.write_text(text.replace(old, new, 1))
    sh(["git", "commit", "-qam", message], site)


def run(site: Path) -> list[tuple[str, float, str]]:
    sh(["scripts/demo-repo"], site)
    steps = [("first apply", *timed_apply(site)), ("no-op", *timed_apply(site))]
    edit_and_commit(site, "profiles/aux.yaml", "  - wget\n", "  - wget\n  - zsh\n", "zsh")
    steps.append(("rebuild (aux package)", *timed_apply(site)))
    edit_and_commit(
        site,
        "profiles/base.yaml",
        '  - "./var/cache/dnf*"\n',
        '  - "./var/cache/dnf*"\n  - "./usr/lib/firmware/bnx2*"\n',
        "exclude bnx2",
    )
    steps.append(("re-pack (base exclude)", *timed_apply(site)))
    steps.append(("no-op again", *timed_apply(site)))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagespec-demo-bench-") as tmp:
        site = Path(tmp) / "site"
        sh(["git", "clone", "-q", str(REPO), str(site)], Path(tmp))
        steps = run(site)
    width = max(len(name) for name, _, _ in steps)
    for name, seconds, summary in steps:
        print(f"{name:<{width}}  {seconds:6.2f} s  {summary}")
    if args.json:
        doc = [{"step": n, "seconds": round(s, 3), "summary": m} for n, s, m in steps]
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
