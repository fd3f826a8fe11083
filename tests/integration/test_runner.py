"""The runner with real processes: deadlines stop a command's whole process group,
leftovers do not hold its output, and a director host never reaches ssh as an option."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from imagespec.errors import ImagespecError
from imagespec.runner import CommandError, Runner, run_local
from imagespec.transport.ssh import SshTransport, ssh_argv, ssh_base
from tests.helpers import kill_processes_with, processes_with


def test_a_command_past_its_deadline_is_stopped_with_its_whole_group() -> None:
    marker = "987661"
    try:
        with pytest.raises(CommandError) as caught:
            run_local(["sh", "-c", f"sleep {marker} & sleep 1{marker}"], timeout=1)
        assert caught.value.timed_out and caught.value.returncode == 124
        assert "timed out after 1 s; stopped it and its process group" in str(caught.value)
        assert not processes_with(marker)
    finally:
        kill_processes_with(marker)


def test_a_leftover_holding_the_output_is_stopped_when_the_command_ends() -> None:
    marker = "987662"
    try:
        result = run_local(["sh", "-c", f"sleep {marker} & echo built"], timeout=60)
        assert result.ok and result.output == "built\n"
        assert result.note == "(imagespec stopped processes the command left running)"
        assert not processes_with(marker)
    finally:
        kill_processes_with(marker)


def test_a_check_false_command_past_its_deadline_still_fails() -> None:
    with pytest.raises(CommandError) as caught:
        run_local(["sleep", "30"], timeout=1, check=False)
    assert caught.value.timed_out


@pytest.mark.parametrize("host", ["-oProxyCommand=touch x", "-F/tmp/evil", ""])
def test_a_host_that_ssh_would_read_as_an_option_is_refused(host: str) -> None:
    with pytest.raises(ImagespecError, match="would be read by ssh as an option"):
        SshTransport(host, "/install", Runner()).wrap(["true"])
    with pytest.raises(ImagespecError, match="would be read by ssh as an option"):
        ssh_argv(host, "true")


def test_ssh_is_given_the_host_after_the_end_of_its_options(tmp_path: Path) -> None:
    assert ssh_argv("cn-mn", "uptime")[-3:] == ["--", "cn-mn", "uptime"]
    assert SshTransport("root@cn-mn", "/install", Runner()).wrap(["genimage", "x"])[-3:] == [
        "--",
        "root@cn-mn",
        "genimage x",
    ]
    # Even without the check, ssh reads a host after `--` as a name, never as an option.
    witness = tmp_path / "proxy-ran"
    argv = [*ssh_base(), "--", f"-oProxyCommand=touch {witness}", "true"]
    done = subprocess.run(argv, capture_output=True, timeout=30, check=False)
    assert done.returncode != 0
    assert not witness.exists()
