from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo_root() -> Path:
    """The project checkout, which is itself the example site."""
    return REPO_ROOT


@pytest.fixture(autouse=True, scope="session")
def _private_parse_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the persistent parse cache of the tests out of the user's home."""
    import os

    os.environ["IMAGESPEC_CACHE_DIR"] = str(tmp_path_factory.mktemp("parse-cache"))
