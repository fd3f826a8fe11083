"""The package check (`plan --check-packages`, `validate --repos`): lines for people."""

from __future__ import annotations

from typing import TextIO

from ..ops.repocheck import PackageCheck


def summary(check: PackageCheck) -> str:
    """One line: how much was looked up and what was found missing."""
    images = len(check.checked)
    sets = check.queries
    text = (
        f"packages of {images} image{'s' if images != 1 else ''} on director {check.director}"
        f" looked up in {sets} repository set{'s' if sets != 1 else ''}: "
    )
    if check.missing:
        return text + f"{len(check.missing)} missing"
    return text + ("all found" if images else "nothing checked")


def write_problems(stream: TextIO, check: PackageCheck) -> None:
    """Each missing package as `file:line:col: message`, then what could not be checked."""
    for missing in check.missing:
        stream.write(f"{missing.message}\n")
    for reason in check.not_checked:
        stream.write(f"warning: {reason}\n")
