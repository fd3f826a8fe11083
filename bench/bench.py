#!/usr/bin/env python3
"""Benchmark validate, render and diff on synthetic sites of several sizes.

    python bench/bench.py                 # sizes 75, 150, 300 profiles (150-600 images)
    python bench/bench.py --sizes 50 100  # other sizes
    python bench/bench.py --json out.json

Each size becomes a git repository in a temporary directory; commands run as
subprocesses (so interpreter start-up and imports are counted, as a user sees
them).  For a one-profile change, `diff` is timed with a cold parse cache (a
fresh CI runner) and a warm one (a second run, or a runner that keeps the
cache); the growth ratio compares the largest size with the smallest.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sitegen import generate

IMAGESPEC = [sys.executable, "-m", "imagespec.cli"]


def run(args: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    proc = subprocess.run([*IMAGESPEC, *args], cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def median_of(repeats: int, fn: object) -> float:
    return statistics.median(fn() for _ in range(repeats))  # type: ignore[operator]


def bench_size(profiles: int, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"imagespec-bench-{profiles}-") as tmp:
        site = generate(Path(tmp) / "site", profiles)
        git(site, "init", "-q", "-b", "main")
        git(site, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "add", "-A")
        git(
            site,
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@localhost",
            "commit",
            "-qm",
            "site",
        )
        env = {**os.environ, "IMAGESPEC_CACHE_DIR": str(Path(tmp) / "cache")}
        cold = {**env, "IMAGESPEC_CACHE": "0"}
        out = Path(tmp) / "out"
        lines = sum(len(p.read_text().splitlines()) for p in (site / "profiles").iterdir())
        result = {"profiles": profiles, "images": 2 * profiles, "profile_lines": lines}
        result["validate_cold"] = run(["validate"], site, cold)
        run(["validate"], site, env)  # fill the cache
        result["validate_warm"] = median_of(repeats, lambda: run(["validate"], site, env))
        result["render_warm"] = median_of(
            repeats, lambda: run(["render", "--out", str(out), "--force"], site, env)
        )
        # one mid-level profile changes in the working tree
        target = site / "profiles" / f"p{profiles // 2:04d}.yaml"
        target.write_text(target.read_text().replace("packages:\n", "packages:\n  - new-package\n"))
        result["diff_cold"] = run(["diff", "--exit-code"], site, cold, ok=(2,))
        run(["diff", "--exit-code"], site, env, ok=(2,))
        result["diff_warm"] = median_of(
            repeats, lambda: run(["diff", "--exit-code"], site, env, ok=(2,))
        )
        git(
            site,
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@localhost",
            "commit",
            "-qam",
            "change",
        )
        result["diff_commits_warm"] = median_of(
            repeats, lambda: run(["diff", "HEAD~1", "HEAD", "--exit-code"], site, env, ok=(2,))
        )
        return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[75, 150, 300], help="profile counts"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        print(f"benchmarking {size} profiles / {2 * size} images ...", file=sys.stderr, flush=True)
        rows.append(bench_size(size, args.repeats))
    keys = [
        "validate_cold",
        "validate_warm",
        "render_warm",
        "diff_cold",
        "diff_warm",
        "diff_commits_warm",
    ]
    header = f"{'profiles':>8} {'images':>6} {'lines':>7} " + " ".join(f"{k:>17}" for k in keys)
    print(header)
    for row in rows:
        cells = " ".join(f"{row[k]:>16.2f}s" for k in keys)
        print(f"{row['profiles']:>8} {row['images']:>6} {row['profile_lines']:>7} {cells}")
    if len(rows) > 1:
        small, large = rows[0], rows[-1]
        size_ratio = large["images"] / small["images"]
        print(f"\nsite grows x{size_ratio:.1f} ({small['images']} -> {large['images']} images):")
        for key in keys:
            print(f"  {key:<18} x{large[key] / small[key]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
