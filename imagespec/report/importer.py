"""`imagespec import`: the summary and the fidelity proof, as text or JSON."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape

from ..errors import visible
from ..ops.importer import ImportResult


def print_text(console: Console, result: ImportResult, allow_loss: bool) -> None:
    def say(text: str) -> None:
        console.print(escape(visible(text)))

    settings = result.settings
    say(f"imported {len(result.images)} osimages into {result.out}")
    say(
        f"director '{settings.director}': install_root {settings.install_root}, prefix"
        f" '{settings.prefix}' (rendered files go under {settings.install_root}/{settings.prefix}/,"
        " never over the site's existing flat files)"
    )
    say("profiles:")
    for name, info in result.profiles.items():
        parents = f" inherits {', '.join(info['inherits'])}" if info["inherits"] else ""
        origin = {"file": "shared xCAT files", "leaf": "image profile", "common": "common entries"}
        say(f"  {name} ({origin[info['made']]}, {info['entries']} entries){parents}")
    if result.hoisted:
        moved = ", ".join(f"{n}: {c}" for n, c in sorted(result.hoisted.items()))
        say(f"factored common entries into parents: {moved}")
    if result.director_files:
        say("stay on the director (from: director, never copied):")
        for path in result.director_files:
            say(f"  {path}")
    if result.builtins:
        say("postscripts not found on the director, declared as builtin_postscripts:")
        say("  " + ", ".join(result.builtins))
    if result.site_rows:
        say("litefile rows for ALL or groups stay in the director's table:")
        for row in result.site_rows:
            say(f"  {row['image']} {row['file']} {row['options'] or 'tmpfs,rw'}")
    say("fidelity (rendered files against the originals):")
    for name, image in sorted(result.images.items()):
        if image.same:
            say(f"  {name}: same (chain {', '.join(image.chain)})")
            continue
        say(f"  {name}: {len(image.losses)} loss{'es' if len(image.losses) != 1 else ''}")
        for loss in image.losses:
            say(f"    - {loss}")
    if result.losses:
        tail = "exit 0 (--allow-loss)" if allow_loss else "exit 1; pass --allow-loss to accept"
        say(f"{result.losses} losses: the site was written, review them ({tail})")


def as_json(result: ImportResult) -> dict[str, Any]:
    return result.as_json()
