"""The cause of a failed command, as apply reports it and state.json records it."""

from __future__ import annotations

from imagespec.runner import CommandError, cause_of

DNF_MISSING = """\
Last metadata expiration check: 0:00:01 ago on Mon 01 Jan 2024.
No match for argument: htop
Error: Unable to find a match: htop
"""

DNF_PROBLEM = """\
Dependencies resolved.
Error:
 Problem: conflicting requests
  - nothing provides libfoo.so.1()(64bit) needed by bar-1.0-1.x86_64
(try to add '--skip-broken' to skip uninstallable packages)
"""


def test_dnf_missing_package_gives_its_own_words_not_the_command() -> None:
    exc = CommandError(["env", "HOME=/tmp/x", "dnf", "-y", "install", "htop"], 1, DNF_MISSING)
    assert exc.cause == "No match for argument: htop; Error: Unable to find a match: htop"
    assert "dnf" not in exc.cause
    assert exc.command == "env HOME=/tmp/x dnf -y install htop"


def test_a_dependency_problem_keeps_the_lines_after_error() -> None:
    cause = cause_of(DNF_PROBLEM)
    assert cause.startswith("Error:; Problem: conflicting requests; - nothing provides libfoo")
    assert "Dependencies resolved" not in cause


def test_a_script_without_error_words_gives_its_last_lines() -> None:
    output = "".join(f"step {n}\n" for n in range(20)) + "tuning hugepages\nbad value 7\n"
    assert cause_of(output) == "step 18; step 19; tuning hugepages; bad value 7"


def test_an_error_word_long_before_the_end_is_not_taken() -> None:
    output = "error: early\n" + "".join(f"line {n}\n" for n in range(12))
    assert cause_of(output) == "line 8; line 9; line 10; line 11"


def test_no_output_says_so_with_the_exit_code() -> None:
    assert cause_of("\n  \n", 7) == "exit code 7, no output"


def test_control_characters_and_length_are_tamed() -> None:
    cause = cause_of("Error: \x1b[31mred\x1b[0m " + "x" * 1000 + "\n")
    assert "\x1b" not in cause and len(cause) == 500 and cause.endswith("...")


def test_a_line_starting_with_an_error_wins_over_a_word_inside_a_path() -> None:
    output = "cd /x; ./genimage --rootimgdir /tmp/test_failed_build/staging img\nError: injected\n"
    assert cause_of(output) == "Error: injected"


def test_only_ssh_failing_to_connect_counts_as_an_unreachable_host() -> None:
    from imagespec.transport.ssh import unreachable

    refused = b"ssh: connect to host d1 port 22: Connection refused\n"
    assert unreachable(255, refused) == "ssh: connect to host d1 port 22: Connection refused"
    assert unreachable(255, b"lsdef: no such object\n") is None  # the remote command's own 255
    assert unreachable(1, refused) is None


def test_rsync_s_cause_keeps_both_lines_whatever_order_its_processes_wrote_them() -> None:
    from imagespec.transport.ssh import rsync_cause

    summary = "rsync error: some files/attrs were not transferred (code 23) at main.c(1338)"
    make_way = "could not make way for new regular file: postscripts/p/50-site"
    not_empty = "cannot delete non-empty directory: postscripts/p/50-site"
    for first, second in ((make_way, not_empty), (not_empty, make_way)):
        cause = rsync_cause(f"{first}\n{second}\n{summary}\n")
        assert cause == f"{first}; {second}"
    assert rsync_cause(f"{summary}\n") == summary
    assert rsync_cause("") == "no output"
    assert len(rsync_cause("x" * 2000)) == 500
