"""The benchmark's site generator must keep producing valid, layered sites."""

from __future__ import annotations

from pathlib import Path

from bench import sitegen
from imagespec.site import validate_site
from imagespec.source import WorktreeSource


def test_generated_site_validates_and_has_realistic_chains(tmp_path: Path) -> None:
    sitegen.generate(tmp_path, 24)
    view = validate_site(WorktreeSource(tmp_path))
    assert len(view.images) == 48
    chains = [len(c) for c in view.graph.chains.values()]
    assert max(chains) <= 5 and min(chains) == 1
    rendered = view.render("main")
    image = rendered.images["el8-x86_64-netboot-p0023"]
    assert len(image.resolved.values("packages")) > sitegen.PACKAGES_PER_PROFILE
