"""Every external command imagespec runs goes through here.

One place for dry runs (commands are printed, not run), for logging (each
command and its output can be appended to a log), and for running on a
director over ssh (the admin's own OpenSSH client, so ssh config, keys,
jump hosts and ControlMaster apply).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable, Optional

from .errors import ImagespecError


class CommandError(ImagespecError):
    """An external command failed; carries its output for the logs."""

    def __init__(self, argv: Sequence[str], returncode: int, output: str):
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        tail = output.strip().splitlines()[-1] if output.strip() else "no output"
        super().__init__(f"{shlex.join(argv)} failed with exit code {returncode}: {tail}")


@dataclass
class Result:
    argv: list[str]
    returncode: int
    output: str  # stdout and stderr interleaved

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def ssh_base() -> list[str]:
    """The ssh client command; IMAGESPEC_SSH_CONFIG adds `-F file` (the tests' sshd uses it).

    Keep-alives make a dead link fail within a minute instead of hanging.
    """
    argv = [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        "ServerAliveInterval=15",
        "-o",
        "ServerAliveCountMax=4",
    ]
    config = os.environ.get("IMAGESPEC_SSH_CONFIG")
    if config:
        argv[1:1] = ["-F", config]
    return argv


@dataclass
class Runner:
    """Runs commands locally or on `host` over ssh; in dry-run mode only prints them."""

    host: Optional[str] = None
    dry_run: bool = False
    echo: Callable[[str], None] = print
    timeout: Optional[float] = None
    printed: list[str] = field(default_factory=list)

    def wrap(self, argv: Sequence[str], stdin_path: Optional[str] = None) -> list[str]:
        """The argv that actually runs: remote commands become one ssh call.

        Input from a file is piped with cat: xCAT's mkdef/chdef read a stanza from
        standard input only when it is a pipe (a `< file` redirect is ignored).
        """
        command = shlex.join(argv)
        if stdin_path:
            command = f"cat {shlex.quote(stdin_path)} | {command}"
        if self.host is None:
            return ["sh", "-c", command] if stdin_path else list(argv)
        return [*ssh_base(), self.host, "--", command]

    def describe(self, argv: Sequence[str], stdin_path: Optional[str] = None) -> str:
        return shlex.join(self.wrap(argv, stdin_path))

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin_path: Optional[str] = None,
        input_data: Optional[bytes] = None,
        check: bool = True,
        mutating: bool = True,
        env: Optional[dict[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> Result:
        """Run a command (on the director).  Read-only commands (mutating=False) run even in dry runs."""
        full = self.wrap(argv, stdin_path)
        if self.dry_run and mutating:
            line = shlex.join(full)
            self.printed.append(line)
            self.echo(line)
            return Result(full, 0, "")
        return run_local(
            full, input_data=input_data, check=check, env=env, timeout=timeout or self.timeout
        )


def run_local(
    argv: Sequence[str],
    *,
    input_data: Optional[bytes] = None,
    check: bool = True,
    env: Optional[dict[str, str]] = None,
    timeout: Optional[float] = None,
    cwd: Optional[str] = None,
) -> Result:
    """Run a command here, capturing stdout+stderr together; CommandError when it fails."""
    try:
        proc = subprocess.run(
            list(argv),
            input=input_data,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env} if env else None,
            timeout=timeout,
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError:
        raise CommandError(argv, 127, f"{argv[0]}: command not found") from None
    except subprocess.TimeoutExpired as exc:
        output = (exc.output or b"").decode("utf-8", "replace")
        raise CommandError(argv, 124, output + f"\ntimed out after {timeout} s") from None
    output = proc.stdout.decode("utf-8", "replace")
    result = Result(list(argv), proc.returncode, output)
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, output)
    return result
