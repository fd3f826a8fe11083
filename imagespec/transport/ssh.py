"""A remote director: commands over ssh, files with rsync (checksums, delayed updates).

Both are the admin's own OpenSSH client and rsync, so ssh config, keys, jump
hosts and ControlMaster apply.  Every remote call has a deadline
(IMAGESPEC_IO_TIMEOUT for the small reads and writes, IMAGESPEC_SYNC_TIMEOUT
for rsync); when it passes, the call's whole process group (ssh, rsync and
what they started) is stopped and the call fails with a TransportError.  The
director's host reaches ssh and rsync only after `--`, never where it could
be read as an option.  Every command goes through the runner; see
transport/base.py for what every transport promises.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shlex
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Optional

from ..errors import ImagespecError, first_line
from ..runner import CommandError, Effect, Finished, Runner, env_seconds
from .base import (
    RSYNC_TEMP_DIR,
    TEMP_GLOB,
    TEMP_NAME,
    CommandsThroughWrap,
    FileData,
    TransportError,
    director_file,
    inside,
    last_line,
    not_a_directory,
    piped,
)


def io_timeout() -> int:
    """Seconds a remote director may stay silent (IMAGESPEC_IO_TIMEOUT, default 120): rsync's
    --timeout, ssh's keep-alives, and the deadline of each small read or write over ssh."""
    return env_seconds("IMAGESPEC_IO_TIMEOUT", 120)


def sync_timeout() -> int:
    """Deadline of one rsync of the rendered files (IMAGESPEC_SYNC_TIMEOUT, default 1800)."""
    return env_seconds("IMAGESPEC_SYNC_TIMEOUT", 1800)


def ssh_base() -> list[str]:
    """The ssh client command; IMAGESPEC_SSH_CONFIG adds `-F file` (the tests' sshd uses it).

    A connection that cannot be made, or a link that carries nothing (not even
    keep-alive replies) for about IMAGESPEC_IO_TIMEOUT seconds, fails instead
    of hanging.
    """
    io = io_timeout()
    interval = max(1, min(15, io // 4))
    argv = [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        f"ConnectTimeout={min(io, 30)}",
        "-o",
        f"ServerAliveInterval={interval}",
        "-o",
        f"ServerAliveCountMax={max(1, io // interval)}",
    ]
    config = os.environ.get("IMAGESPEC_SSH_CONFIG")
    if config:
        argv[1:1] = ["-F", config]
    return argv


def check_host(host: str) -> str:
    """A director host must never reach ssh or rsync as an option."""
    if not host or host.startswith("-"):
        raise ImagespecError(
            f"director host {host!r} would be read by ssh as an option; use a host name,"
            " user@host or an ssh config alias"
        )
    return host


def ssh_argv(host: str, command: str) -> list[str]:
    """`ssh OPTIONS -- HOST COMMAND`: the `--` keeps any host from being read as an option.

    COMMAND is one shell string that starts with a command name, never with `-`
    (older OpenSSH parses options again after the host).
    """
    return [*ssh_base(), "--", check_host(host), command]


# What OpenSSH itself prints when it cannot open the session (it then exits 255).
SSH_FAILURES = re.compile(
    r"^ssh: |Connection (refused|timed out|closed)|No route to host|Network is unreachable"
    r"|Permission denied \(|Host key verification failed|kex_exchange_identification",
)


def unreachable(returncode: int, output: bytes) -> Optional[str]:
    """Why ssh could not reach the host (its own message), or None when it did: exit 255
    with one of OpenSSH's connection errors, not a remote command's own failure."""
    if returncode != 255:
        return None
    for line in output.decode("utf-8", "replace").splitlines():
        if SSH_FAILURES.search(line.strip()):
            return first_line(line.strip())[:200]
    return None


RSYNC_CAUSE_LINES = 3
RSYNC_CAUSE_CHARS = 500


def rsync_cause(output: str) -> str:
    """The lines of rsync's output that say what went wrong (not its closing summary).

    rsync's sender, generator and receiver write to stderr each on its own, so
    over ssh the order of their lines varies from run to run ("cannot delete
    non-empty directory: X" may come before or after "could not make way for
    new regular file: X"): the first few distinct ones are kept, in the order seen.
    """
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    causes = [line for line in lines if not line.startswith(("rsync error:", "Warning:"))]
    kept = "; ".join(dict.fromkeys((causes or lines or ["no output"])[:RSYNC_CAUSE_LINES]))
    return kept if len(kept) <= RSYNC_CAUSE_CHARS else kept[: RSYNC_CAUSE_CHARS - 3] + "..."


class SshTransport(CommandsThroughWrap):
    """A remote director: commands over ssh, files with rsync (checksums, delayed updates)."""

    def __init__(self, host: str, root: str, runner: Runner):
        self.host = check_host(host)
        self.root = root
        self.runner = runner
        self.description = f"{host}:{root}"

    def _abs(self, rel: str) -> str:
        return posixpath.join(self.root, rel)

    def wrap(self, argv: Sequence[str], stdin_path: Optional[str] = None) -> list[str]:
        """The argv that runs: one ssh call with the command as one shell string."""
        return ssh_argv(self.host, piped(argv, stdin_path))

    def _call(self, script: str, data: Optional[bytes], effect: Effect, merge: bool) -> Finished:
        argv = ssh_argv(self.host, script)
        done = self.runner.io(
            argv, timeout=io_timeout(), input_data=data, effect=effect, merge=merge
        )
        if done.timed_out:
            raise TransportError(self._timed_out())
        cause = unreachable(done.returncode, done.stdout if merge else done.stderr)
        if cause:
            raise TransportError(self._unreachable(cause))
        return done

    def _unreachable(self, cause: str) -> str:
        return (
            f"cannot reach the director's host {self.host} ({cause}); plan, status and"
            " apply (--dry-run too) read the director over ssh: run them where"
            f" `ssh {self.host}` works, or plan from a saved copy of its state with"
            " `imagespec plan --offline --state FILE`"
        )

    def _sh(
        self,
        script: str,
        data: Optional[bytes] = None,
        effect: Effect = Effect.CHANGE,
        check: bool = True,
    ) -> str:
        """Run a shell script on the director; its output (stdout and stderr)."""
        done = self._call(script, data, effect, merge=True)
        output = done.stdout.decode("utf-8", "replace")
        if check and done.returncode != 0:
            failed = CommandError(ssh_argv(self.host, script), done.returncode, output + done.note)
            raise TransportError(f"{self.host}: {last_line(failed.output) or failed}")
        return output

    def _timed_out(self) -> str:
        return (
            f"{self.host} did not answer within {io_timeout():g} s (IMAGESPEC_IO_TIMEOUT);"
            " the ssh call and everything it started were stopped: check the director and"
            " the link, then try again"
        )

    def read(self, rel: str) -> Optional[bytes]:
        path = shlex.quote(self._abs(rel))
        script = f"if [ -f {path} ]; then cat {path}; else exit 3; fi"
        done = self._call(script, None, Effect.READ, merge=False)
        if done.returncode == 3:
            return None
        if done.returncode != 0:
            detail = last_line((done.stderr + done.note.encode()).decode("utf-8", "replace"))
            raise TransportError(f"cannot read {self.description}/{rel}: {detail}")
        return done.stdout

    def exists(self, rel: str) -> bool:
        path = shlex.quote(self._abs(rel))
        out = self._sh(f"if [ -e {path} ]; then echo yes; fi", effect=Effect.READ)
        return out.strip() == "yes"

    def hashes(self, rels: Iterable[str]) -> dict[str, Optional[str]]:
        names = sorted(rels)
        script = (
            f"cd {shlex.quote(self.root)} 2>/dev/null && xargs -0 -r sha256sum -- 2>/dev/null; true"
        )
        return self._sha256sum(script, names)

    def hashes_abs(self, paths: Iterable[str]) -> dict[str, Optional[str]]:
        names = sorted(director_file(path) for path in paths)
        # only regular files ([ -f ] follows symlinks): sha256sum would wait on a FIFO
        each = 'for p; do [ -f "$p" ] && sha256sum -- "$p"; done; true'
        script = f"xargs -0 -r sh -c {shlex.quote(each)} sh 2>/dev/null; true"
        return self._sha256sum(script, names)

    def _sha256sum(self, script: str, names: list[str]) -> dict[str, Optional[str]]:
        """Run a script that reads NUL-separated names and prints sha256sum lines; each
        name's hex digest, None for those it printed nothing for."""
        out: dict[str, Optional[str]] = dict.fromkeys(names)
        if not names:
            return out
        listing = self._sh(script, "\0".join(names).encode(), effect=Effect.READ)
        for line in listing.splitlines():
            digest, _, name = line.partition("  ")
            if name in out:
                out[name] = digest
        return out

    def write_files(self, files: dict[str, FileData]) -> None:
        """Stage the files locally, then one rsync: checksums, updates renamed into place at the end."""
        if not files:
            return
        for rel in files:
            inside(rel, self.root, "write")
        with tempfile.TemporaryDirectory(prefix="imagespec-stage-") as stage:
            for rel, (data, mode) in files.items():
                path = Path(stage) / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                path.chmod(mode)
            argv = [
                "rsync",
                "-rlpc",
                "--delay-updates",
                "--no-owner",
                "--no-group",
                "--omit-dir-times",
                f"--timeout={io_timeout()}",
                "-e",
                shlex.join(ssh_base()),
                "--",
                f"{stage}/",
                f"{check_host(self.host)}:{self.root}/",
            ]
            done = self.runner.io(argv, timeout=sync_timeout(), effect=Effect.CHANGE)
        if done.returncode != 0:
            self._clean_partial(files)
            raise TransportError(self._rsync_failed(done))

    def _rsync_failed(self, done: Finished) -> str:
        if done.timed_out:
            return (
                f"rsync to {self.description} did not finish within {sync_timeout():g} s"
                " (IMAGESPEC_SYNC_TIMEOUT); it was stopped with everything it started, and"
                " rsync renames files into place only at the end, so no file was half-written"
            )
        output = done.stdout.decode("utf-8", "replace") + done.note
        return (
            f"rsync to {self.description} failed: {rsync_cause(output)};"
            " rsync renames files into place only when the whole transfer is done,"
            " so no file was half-written; apply again when that is fixed"
        )

    def _clean_partial(self, files: dict[str, FileData]) -> None:
        """Remove what a broken transfer left in rsync's delay-updates directories."""
        dirs = sorted({posixpath.dirname(self._abs(rel)) for rel in files})
        script = "rm -rf " + " ".join(shlex.quote(posixpath.join(d, ".~tmp~")) for d in dirs)
        with contextlib.suppress(TransportError):
            self._sh(script, effect=Effect.RECORD, check=False)

    def write_atomic(self, rel: str, data: bytes, mode: int = 0o644) -> bool:
        """A temporary file named like stage_file's, synced, then renamed over the target."""
        path = self._abs(inside(rel, self.root, "write"))
        if self.runner.skips(Effect.RECORD):
            return False
        parent, name = posixpath.split(path)
        template = shlex.quote(posixpath.join(parent, f".{name}.imagespec-XXXXXXXX"))
        script = (
            f"mkdir -p {shlex.quote(parent)} && t=$(mktemp {template}) || exit 1; "
            f'if cat > "$t" && chmod {mode:o} "$t" && {{ sync -- "$t" 2>/dev/null || true; }}'
            f' && mv -f "$t" {shlex.quote(path)}; then exit 0; fi; rm -f "$t"; exit 1'
        )
        try:
            self._sh(script, data, Effect.RECORD)
        except TransportError as exc:
            raise TransportError(
                f"cannot write {self.description}/{rel}: {first_line(str(exc))}; it was left as"
                " it was (fix the cause on the director, then apply again)"
            ) from None
        return True

    def delete(self, rels: Iterable[str]) -> None:
        """Remove files; a directory found in a file's place is not ours and is left alone."""
        names = [inside(rel, self.root, "delete") for rel in sorted(rels)]
        if names:
            script = (
                f"cd {shlex.quote(self.root)} && xargs -0 -r sh -c"
                """ 'for f; do [ -d "$f" ] && [ ! -L "$f" ] || rm -f -- "$f" || exit 1; done' sh"""
            )
            self._sh(script, "\0".join(f"./{n}" for n in names).encode())

    def copy(self, pairs: dict[str, str]) -> None:
        for src, dest in sorted(pairs.items()):
            s = shlex.quote(self._abs(inside(src, self.root, "copy")))
            d = shlex.quote(self._abs(inside(dest, self.root, "copy to")))
            self._sh(f'mkdir -p "$(dirname {d})" && cp -p {s} {d}', effect=Effect.RECORD)

    def make_dir_exclusive(self, rel: str) -> bool:
        """As LocalTransport's: False if a real directory is there, a symlink is refused."""
        path = shlex.quote(self._abs(rel))
        if self.runner.skips(Effect.RECORD):
            return True
        out = self._sh(
            f'mkdir -p "$(dirname {path})" && if mkdir {path} 2>/dev/null; then echo ok;'
            f" elif [ -L {path} ] || [ ! -d {path} ]; then echo refused; fi",
            effect=Effect.RECORD,
        )
        if out.strip() == "refused":
            raise TransportError(not_a_directory(f"{self.host}:{self._abs(rel)}"))
        return out.strip() == "ok"

    def remove_tree(self, rel: str) -> None:
        path = shlex.quote(self._abs(inside(rel, self.root, "remove")))
        out = self._sh(
            f"if [ -L {path} ]; then echo refused; else rm -rf -- {path}; fi", effect=Effect.RECORD
        )
        if out.strip() == "refused":
            raise TransportError(not_a_directory(f"{self.host}:{self._abs(rel)}"))

    def clean_temp(self, dirs: Iterable[str]) -> list[str]:
        """Remove what a killed apply left in these directories: imagespec's temporary files
        and rsync's delay-updates directory."""
        names = [inside(rel, self.root, "clean") for rel in sorted(set(dirs))]
        if not names or self.runner.skips(Effect.RECORD):
            return []
        find = (
            'find "$@" -mindepth 1 -maxdepth 1 \\('
            f" -type f -name {shlex.quote(TEMP_GLOB)}"
            f" -o -type d -name {shlex.quote(RSYNC_TEMP_DIR)} \\) -print"
        )
        script = (
            f"cd {shlex.quote(self.root)} && xargs -0 -r sh -c {shlex.quote(find)} sh 2>/dev/null;"
            " true"
        )
        listing = self._sh(script, "\0".join(f"./{n}" for n in names).encode(), Effect.READ)
        found = [
            line[2:]
            for line in listing.splitlines()
            if line.startswith("./")
            and (
                TEMP_NAME.fullmatch(posixpath.basename(line))
                or posixpath.basename(line) == RSYNC_TEMP_DIR
            )
        ]
        if found:
            removal = f"cd {shlex.quote(self.root)} && xargs -0 -r rm -rf --"
            self._sh(removal, "\0".join(f"./{n}" for n in found).encode(), Effect.RECORD)
        return [self._abs(n) for n in found]
