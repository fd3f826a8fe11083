"""Transports: how imagespec reaches a director (a local directory, or a host over ssh + rsync).

base.py says what every transport promises; a new way to reach a director is
one module here and one line in `transport_for`.
"""

from __future__ import annotations

from typing import Optional

from ..runner import Runner
from .base import Transport
from .local import LocalTransport
from .ssh import SshTransport


def transport_for(host: Optional[str], root: str, runner: Runner) -> Transport:
    """The way to a director: ssh when it names a host, else this machine."""
    if host:
        return SshTransport(host, root, runner)
    return LocalTransport(root, runner)
