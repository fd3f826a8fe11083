"""Generate large synthetic sites for the benchmarks (and a small one for the tests).

A site with P profiles and 2*P images (two distros), layered like a real
cluster's: a few roots (base variants), a middle layer (aux, ib, gpu ...)
inheriting a root, and leaves (login, compute ...) inheriting one or two
middle profiles, so chains are 3 to 5 profiles long.  Each profile has ~100
package lines plus excludes, sync entries, postinstall scripts and
postscripts.
"""

from __future__ import annotations

import random
from pathlib import Path

PACKAGES_PER_PROFILE = 100


def parents_of(index: int, rng: random.Random, roots: int, middle: int) -> list[int]:
    """Roots have none; the middle layer inherits a root; leaves one or two middle profiles."""
    if index < roots:
        return []
    if index < roots + middle:
        return [rng.randrange(0, roots)]
    return sorted({rng.randrange(roots, roots + middle) for _ in range(rng.choice((1, 2)))})


def profile_text(index: int, rng: random.Random, roots: int, middle: int = 0) -> str:
    lines = [f"# synthetic profile {index}", f"description: synthetic profile p{index:04d}"]
    parents = parents_of(index, rng, roots, middle)
    if parents:
        lines.append(f"inherits: [{', '.join(f'p{p:04d}' for p in parents)}]")
    lines.append("packages:")
    lines += [f"  - pkg-{index}-{n}" for n in range(PACKAGES_PER_PROFILE)]
    if parents:
        lines.append(f"  - -pkg-{parents[0]}-{rng.randrange(0, PACKAGES_PER_PROFILE)}")
    lines += ["otherpkgs:", f"  - extra/tool-{index}", "erase:", f"  - junk-{index}"]
    lines += [
        "exclude:",
        f'  - "./usr/share/doc/p{index}*"',
        f'  - "+./usr/share/doc/p{index}/keep*"',
    ]
    lines += ["sync:", f"  - {{src: etc/conf-{index % 20}, dest: /etc/site/conf-{index}}}"]
    lines += [
        "postinstall:",
        f'  - "10-setup {index}"',
        "postscripts:",
        "  - confignetwork",
        "  - 50-site",
    ]
    lines += ["attributes:", f"  usercomment: profile {index}"]
    return "\n".join(lines) + "\n"


def site_yaml(profiles: int) -> str:
    lines = [
        "site: bench",
        "defaults: {osname: Linux, imagetype: linux, provmethod: netboot, permission: '755'}",
        "distros:",
        "  el8: {osvers: rocky8, osarch: x86_64, family: rocky, pkgdir: /install/rocky8/x86_64}",
        "  el9: {osvers: rocky9, osarch: x86_64, family: rocky, pkgdir: /install/rocky9/x86_64}",
        "directors:",
        "  main: {branch: main, host: mn, install_root: /install, prefix: main, builder: xcat}",
        "images:",
    ]
    for index in range(profiles):
        for distro in ("el8", "el9"):
            lines.append(
                f"  {distro}-x86_64-netboot-p{index:04d}: {{profile: p{index:04d}, distro: {distro}}}"
            )
    return "\n".join(lines) + "\n"


def generate(root: Path, profiles: int, seed: int = 1) -> Path:
    """Write a synthetic site with `profiles` profiles and 2x as many images under root."""
    rng = random.Random(seed)
    roots = max(2, profiles // 60)
    middle = max(2, profiles // 12)
    (root / "profiles").mkdir(parents=True, exist_ok=True)
    (root / "imagespec.yaml").write_text(site_yaml(profiles))
    for index in range(profiles):
        (root / "profiles" / f"p{index:04d}.yaml").write_text(
            profile_text(index, rng, roots, middle)
        )
    for folder, name in (("postinstall", "10-setup"), ("postscripts", "50-site")):
        (root / folder).mkdir(exist_ok=True)
        script = root / folder / name
        script.write_text("#!/bin/sh\nexit 0\n")
        script.chmod(0o755)
    for index in range(20):
        path = root / "synclists" / "etc" / f"conf-{index}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"setting = {index}\n")
    return root
