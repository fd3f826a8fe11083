"""Tiny real RPMs and repositories for the native builder's tests.

`build_repo(dir, packages)` writes one spec file with a subpackage per
package, builds it with rpmbuild (noarch) and runs createrepo_c in `dir`.
Packages carry real files (text, or copies of this machine's binaries), so a
test can check a built root or a packed archive byte for byte; a package may
carry scriptlets (`%post`, shell or `-p <lua>`), which rpm runs in the root.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Pkg:
    name: str
    files: dict[str, str] = field(default_factory=dict)  # absolute path -> content
    requires: Sequence[str] = ()
    recommends: Sequence[str] = ()
    provides: Sequence[str] = ()  # capabilities besides its name
    version: str = "1.0"
    executables: Sequence[str] = ()  # paths installed with mode 0755
    host_files: dict[str, str] = field(default_factory=dict)  # path -> a file here, mode 0755
    scriptlets: dict[str, str] = field(default_factory=dict)  # "post" or "post -p <lua>" -> body


def _subpackage(pkg: Pkg) -> str:
    lines = [
        f"%package -n {pkg.name}",
        f"Summary: test package {pkg.name}",
        f"Version: {pkg.version}",
        "AutoReq: no",  # a script's #!/bin/sh would require a shell in the root
    ]
    lines += [f"Requires: {r}" for r in pkg.requires]
    lines += [f"Recommends: {r}" for r in pkg.recommends]
    lines += [f"Provides: {p}" for p in pkg.provides]
    lines += [f"%description -n {pkg.name}", f"Test package {pkg.name} for imagespec.", ""]
    for header, body in pkg.scriptlets.items():
        word, _, rest = header.partition(" ")
        lines += [f"%{word} -n {pkg.name} {rest}".rstrip(), body.rstrip("\n"), ""]
    return "\n".join(lines)


def _install(pkg: Pkg, sources: Path) -> list[str]:
    lines = []
    for index, (path, content) in enumerate(sorted(pkg.files.items())):
        src = sources / f"{pkg.name}-{index}"
        src.write_text(content)
        mode = "0755" if path in pkg.executables else "0644"
        lines.append(f"install -D -m {mode} {src} %{{buildroot}}{path}")
    for index, (path, host) in enumerate(sorted(pkg.host_files.items())):
        src = sources / f"{pkg.name}-host-{index}"
        shutil.copyfile(host, src)  # follows symlinks: the real bytes
        lines.append(f"install -D -m 0755 {src} %{{buildroot}}{path}")
    return lines


def spec_text(packages: Sequence[Pkg], sources: Path) -> str:
    head = [
        "Name: imagespec-test-packages",
        "Version: 1.0",
        "Release: 1",
        "Summary: test packages",
        "License: Apache-2.0",
        "BuildArch: noarch",
        "AutoReq: no",
        "%define _build_id_links none",
        "%define debug_package %{nil}",
        "%define _binaries_in_noarch_packages_terminate_build 0",
        "%define __strip /bin/true",
        "%description",
        "Test packages.",
        "",
    ]
    body = [_subpackage(p) for p in packages]
    install = ["%install"] + [line for p in packages for line in _install(p, sources)]
    files = []
    for pkg in packages:
        files.append(f"%files -n {pkg.name}")
        files += sorted([*pkg.files, *pkg.host_files])
    return "\n".join(head + body + install + [""] + files) + "\n"


def build_repo(repo: Path, packages: Sequence[Pkg]) -> Path:
    """Build the packages into `repo` and make it a repository (repodata)."""
    repo.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rpmbuild-") as tmp:
        top = Path(tmp)
        sources = top / "sources"
        sources.mkdir()
        spec = top / "test.spec"
        spec.write_text(spec_text(packages, sources))
        out = top / "rpms"
        subprocess.run(
            [
                "rpmbuild",
                "-bb",
                "--quiet",
                "--define",
                f"_topdir {top}",
                "--define",
                f"_rpmdir {out}",
                str(spec),
            ],
            check=True,
            capture_output=True,
        )
        for rpm in out.rglob("*.rpm"):
            shutil.move(str(rpm), repo / rpm.name)
    subprocess.run(["createrepo_c", "-q", str(repo)], check=True, capture_output=True)
    return repo
