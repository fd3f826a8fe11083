"""Fixtures for integration tests: the xCAT stub and a real sshd on 127.0.0.1.

xcat_state  Path of the stub's state dir (osimage.json, litefile.json, calls.jsonl)
stub_bin    bin dir with the stub's mkdef ... tabdump wrappers (install_stub)
sshd        a running SshServer whose remote PATH starts with stub_bin;
            stopped after the test, also when it fails
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sshd import SshdUnavailable, SshServer, start_sshd
from tests.xcatstub import install_stub


@pytest.fixture
def xcat_state(tmp_path: Path) -> Path:
    state = tmp_path / "xcat-state"
    state.mkdir()
    return state


@pytest.fixture
def stub_bin(tmp_path: Path, xcat_state: Path) -> Path:
    return install_stub(tmp_path / "xcat-bin", xcat_state)


@pytest.fixture
def sshd(tmp_path: Path, stub_bin: Path) -> Iterator[SshServer]:
    try:
        server = start_sshd(tmp_path / "sshd", [stub_bin])
    except SshdUnavailable as exc:
        pytest.fail(f"a real sshd is needed for this test: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


from tests.integration.sites import env, native, native_repos  # noqa: E402,F401 - shared sites
