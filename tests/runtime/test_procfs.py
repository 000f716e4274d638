"""Tests of the /proc readers, against real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from shipyard.runtime import procfs


def test_parse_stat_handles_spaces_and_parentheses_in_the_command_name() -> None:
    fields = " ".join(str(n) for n in range(4, 53))   # fields 4.. of the file
    stat = procfs.parse_stat(f"42 (a) b (c)) S {fields}")
    assert (stat.pid, stat.state, stat.ppid, stat.session, stat.start_time) == (42, "S", 4, 6, 22)
    assert stat.name == "a) b (c)"


def test_read_stat_of_this_process() -> None:
    stat = procfs.read_stat(os.getpid())
    assert stat is not None and stat.ppid == os.getppid() and stat.session == os.getsid(0)
    assert procfs.is_running(os.getpid(), stat.start_time)
    assert not procfs.is_running(os.getpid(), stat.start_time + 1)   # same pid, other process


def test_missing_and_invalid_pids_are_not_running() -> None:
    assert procfs.read_stat(0) is None and procfs.read_stat(-1) is None
    assert not procfs.is_running(2**22 + 1, None)


def test_a_zombie_counts_as_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 5
        while (stat := procfs.read_stat(child.pid)) and stat.state != "Z" and time.monotonic() < deadline:
            time.sleep(0.005)
        assert stat is not None and stat.state == "Z"
        assert not procfs.is_running(child.pid, stat.start_time)
    finally:
        child.wait()


def test_children_and_ns_pid() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in procfs.children(os.getpid())
        assert procfs.ns_pid(child.pid) == child.pid    # the test runs in the host's pid namespace
        assert child.pid in procfs.session_members(os.getsid(0))
    finally:
        child.kill()
        child.wait()
