"""A real OpenSSH server on 127.0.0.1 for tests, with a matching client config.

    server = start_sshd(tmp_path / "sshd", [stub_bin])
    try:
        subprocess.run(server.ssh_argv("echo ok"), ...)       # ssh -F config -- director ...
        env = {**os.environ, **server.env()}                  # IMAGESPEC_SSH_CONFIG=config
    finally:
        server.stop()

Everything lives in the given directory: a throwaway host key and user key, an
authorized_keys, sshd_config, a client config whose known_hosts already trusts the host
key, the pid file and sshd's log.  Remote commands get PATH = the caller's bin dirs
followed by the system directories, and HOME = <dir>/home (so no dotfile of the real
account, such as a ~/.bashrc that prepends to PATH, runs in remote sessions).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Optional

SSHD = Path("/usr/sbin/sshd")
ALIAS = "director"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SETUP_HINT = "run scripts/setup (it installs openssh-server, openssh-client and rsync)"


class SshdUnavailable(RuntimeError):
    """OpenSSH (server or client tools) is not installed on this machine."""


class SshServer:
    """A running sshd and the client config that reaches it as `director`."""

    def __init__(self, root: Path, port: int, user: str, path: str, startup_timeout: float) -> None:
        self.root = root
        self.port = port
        self.user = user
        self.alias = ALIAS
        self.remote_path = path
        self.startup_timeout = startup_timeout
        self.config = root / "ssh_config"
        self.sshd_config = root / "sshd_config"
        self.home = root / "home"
        self.log = root / "sshd.log"
        self._proc: Optional[subprocess.Popen[bytes]] = None

    # -- client side

    def env(self) -> dict[str, str]:
        """What imagespec needs to reach the server: IMAGESPEC_SSH_CONFIG."""
        return {"IMAGESPEC_SSH_CONFIG": str(self.config)}

    def ssh_argv(self, command: str) -> list[str]:
        """`ssh -F config -- director command`, as imagespec runs remote commands."""
        return ["ssh", "-F", str(self.config), "--", self.alias, command]

    def rsync_rsh(self) -> str:
        """The value for rsync -e."""
        return f"ssh -F {self.config}"

    def run(
        self, command: str, timeout: float = 30, input: Optional[str] = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a remote command; stdin is /dev/null unless input is given."""
        return subprocess.run(
            self.ssh_argv(command),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    # -- server side

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start sshd (again) on the same port with the same keys; wait until it answers."""
        if self.running:
            return
        with contextlib.suppress(FileExistsError, PermissionError):
            Path("/run/sshd").mkdir(mode=0o755)  # sshd's privilege separation directory
        with open(self.log, "ab") as log:
            self._proc = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(self.sshd_config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"sshd exited with {self._proc.returncode} at startup:\n{self._log_tail()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.settimeout(max(0.1, deadline - time.monotonic()))
                    if sock.recv(8).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"sshd did not answer on 127.0.0.1:{self.port} within "
                    f"{self.startup_timeout:.0f} s:\n{self._log_tail()}"
                )
            time.sleep(0.02)

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no sshd log)"

    def _tree(self) -> list[int]:
        """sshd and all its descendants (connection handlers, sessions, remote commands).

        Connection handlers call setsid(), so a process group does not reach them; the
        parent links in /proc do.
        """
        if self._proc is None or self._proc.poll() is not None:
            return []
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        tree, todo = [], [self._proc.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        return tree

    @staticmethod
    def _send(pids: list[int], sig: int) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop sshd with its sessions (SIGTERM, SIGKILL after timeout).  Idempotent."""
        if self._proc is None:
            return
        tree = self._tree()
        self._send(tree, signal.SIGTERM)
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._send(tree, signal.SIGKILL)
            self._proc.wait(timeout=timeout)
        self._send(tree[1:], signal.SIGKILL)

    def kill(self) -> None:
        """Drop everything at once (SIGKILL to sshd and all sessions): a lost connection."""
        if self._proc is None:
            return
        self._send(self._tree(), signal.SIGKILL)
        self._proc.wait(timeout=5)

    def restart(self) -> None:
        """Kill the server (dropping open connections) and start it again."""
        self.kill()
        self.start()

    def __enter__(self) -> SshServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _quote(path: Path) -> str:
    text = str(path)
    if any(c in text for c in '"\n\r'):
        raise ValueError(f"unusable path for an ssh config file: {text!r}")
    return f'"{text}"'


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "imagespec-test", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )


def _root_password_locked(user: str) -> bool:
    """True when sshd without PAM would refuse the account as locked ('!' in shadow)."""
    try:
        for line in Path("/etc/shadow").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == user:
                return fields[1].startswith("!")
    except OSError:
        pass
    return False


def check_openssh() -> None:
    """Raise SshdUnavailable with what to do when sshd, ssh or ssh-keygen is missing."""
    if not (SSHD.is_file() and os.access(SSHD, os.X_OK)):
        raise SshdUnavailable(f"{SSHD} not found: {SETUP_HINT}")
    for tool in ("ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            raise SshdUnavailable(f"{tool} not found on PATH: {SETUP_HINT}")


def start_sshd(
    tmp: Path,
    bin_dirs: Sequence[Path] = (),
    *,
    startup_timeout: float = 5.0,
) -> SshServer:
    """Start a real sshd on a free 127.0.0.1 port; all its files go into tmp.

    bin_dirs come first on PATH for remote commands (for example the xCAT stub's bin
    dir).  Raises SshdUnavailable when OpenSSH is missing.  The caller must stop() it
    (or use it as a context manager).
    """
    check_openssh()
    tmp.mkdir(parents=True, exist_ok=True)
    host_key = tmp / "ssh_host_ed25519_key"
    user_key = tmp / "id_ed25519"
    for key in (host_key, user_key):
        if not key.exists():
            _keygen(key)
    authorized = tmp / "authorized_keys"
    authorized.write_text(Path(f"{user_key}.pub").read_text())
    authorized.chmod(0o600)
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    user = getpass.getuser()
    path = ":".join([*(str(Path(d).resolve()) for d in bin_dirs), SYSTEM_PATH])
    if any(c in path for c in ' "'):
        raise ValueError(f"bin dirs must not contain spaces or quotes: {path!r}")

    last_error: Optional[BaseException] = None
    for _attempt in range(3):  # a free port can be taken between probing and binding
        port = free_port()
        server = SshServer(tmp, port, user, path, startup_timeout)
        use_pam = "yes" if _root_password_locked(user) else "no"
        server.sshd_config.write_text(
            "\n".join(
                [
                    "ListenAddress 127.0.0.1",
                    f"Port {port}",
                    f"HostKey {_quote(host_key)}",
                    f"PidFile {_quote(tmp / 'sshd.pid')}",
                    f"AuthorizedKeysFile {_quote(authorized)}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    f"UsePAM {use_pam}",
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    f'SetEnv "PATH={path}" "HOME={home}"',
                    "PermitUserEnvironment no",
                    "AllowTcpForwarding no",
                    "X11Forwarding no",
                    "PrintMotd no",
                    "MaxStartups 64:30:128",
                    "MaxSessions 64",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )
        host_pub = Path(f"{host_key}.pub").read_text().split()
        known_hosts = tmp / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
        server.config.write_text(
            "\n".join(
                [
                    f"Host {ALIAS}",
                    "    HostName 127.0.0.1",
                    f"    Port {port}",
                    f"    User {user}",
                    f"    IdentityFile {_quote(user_key)}",
                    "    IdentitiesOnly yes",
                    "    IdentityAgent none",
                    f"    UserKnownHostsFile {_quote(known_hosts)}",
                    "    GlobalKnownHostsFile /dev/null",
                    "    StrictHostKeyChecking yes",
                    "    CheckHostIP no",
                    "    UpdateHostKeys no",
                    "    BatchMode yes",
                    "    PasswordAuthentication no",
                    "    ConnectTimeout 5",
                    "    ServerAliveInterval 5",
                    "    ServerAliveCountMax 2",
                    "    LogLevel ERROR",
                    "",
                ]
            )
        )
        try:
            server.start()
            return server
        except RuntimeError as exc:
            last_error = exc
            if "Address already in use" not in str(exc):
                raise
    raise RuntimeError(f"could not start sshd on a free port: {last_error}")


@contextlib.contextmanager
def running_sshd(tmp: Path, bin_dirs: Sequence[Path] = ()) -> Iterator[SshServer]:
    """start_sshd as a context manager: the server is stopped even when the body fails."""
    server = start_sshd(tmp, bin_dirs)
    try:
        yield server
    finally:
        server.stop()
