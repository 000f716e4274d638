"""Tests of spawning detached processes, for real."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.errors import RuntimeDriverError
from shipyard.runtime import cgroups, procfs
from shipyard.runtime.base import Limits
from shipyard.runtime.capabilities import capabilities
from shipyard.runtime.detach import Detached, setsid_with_fork, spawn_detached
from tests.runtime.lab import needs_cgroups, wait_for

needs_setsid = pytest.mark.skipif(setsid_with_fork() is None, reason="no util-linux setsid --fork")
METHODS = [pytest.param("setsid", marks=needs_setsid), "python"]

SCRIPT = 'echo "out $A $PWD"; echo err >&2; echo status >&3; exec sleep 30'


@pytest.fixture(params=METHODS)
def method(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture()
def spawned() -> Iterator[list[int]]:
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def spawn(tmp_path: Path, method: str, script: str = SCRIPT, **kwargs: object) -> Detached:
    (tmp_path / "out.log").write_text("before\n")
    return spawn_detached(
        ["/bin/sh", "-c", script], env={"A": "1", "PATH": "/usr/bin:/bin"}, cwd=str(tmp_path),
        stdout_path=str(tmp_path / "out.log"), stderr_path=str(tmp_path / "err.log"),
        status_path=str(tmp_path / "status"), method=method, **kwargs)  # type: ignore[arg-type]


def test_detached_process_is_not_our_child_and_leaves_no_zombie(
        tmp_path: Path, spawned: list[int], method: str) -> None:
    detached = spawn(tmp_path, method)
    spawned.append(detached.pid)
    stat = procfs.read_stat(detached.pid)
    assert stat is not None and stat.ppid != os.getpid()
    assert stat.session == detached.session != os.getsid(0)
    assert not [c for c in procfs.children(os.getpid()) if (s := procfs.read_stat(c)) and s.state == "Z"]


def test_detached_process_gets_files_cwd_and_env(tmp_path: Path, spawned: list[int], method: str) -> None:
    detached = spawn(tmp_path, method)
    spawned.append(detached.pid)
    assert wait_for(lambda: (tmp_path / "status").read_text() == "status\n")
    assert (tmp_path / "out.log").read_text() == f"before\nout 1 {tmp_path}\n"   # appended
    assert (tmp_path / "err.log").read_text() == "err\n"


def test_no_signal_is_ignored_or_blocked_in_the_detached_process(
        tmp_path: Path, spawned: list[int], method: str) -> None:
    detached = spawn(tmp_path, method)
    spawned.append(detached.pid)
    assert wait_for(lambda: "sleep" in Path(f"/proc/{detached.pid}/cmdline").read_text())
    status = Path(f"/proc/{detached.pid}/status").read_text()
    masks = dict(line.split(":\t") for line in status.splitlines() if line.startswith(("SigIgn", "SigBlk")))
    # Nothing beyond what the test run itself inherited (a CI wrapper may block a real-time signal).
    ours = dict(line.split(":\t") for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith(("SigIgn", "SigBlk")))
    assert int(masks["SigIgn"], 16) & ~int(ours["SigIgn"], 16) == 0
    assert int(masks["SigBlk"], 16) & ~int(ours["SigBlk"], 16) == 0


def test_exec_failure_is_reported_by_the_python_launcher(tmp_path: Path) -> None:
    with pytest.raises(RuntimeDriverError, match="No such file"):
        spawn_detached(["/nonexistent/program"], env={}, cwd=str(tmp_path), method="python",
                       stdout_path=str(tmp_path / "o"), stderr_path=str(tmp_path / "e"))


@needs_setsid
def test_exec_failure_ends_the_setsid_launched_process_with_the_reason_in_stderr(tmp_path: Path) -> None:
    detached = spawn_detached(["/nonexistent/program"], env={}, cwd=str(tmp_path), method="setsid",
                              stdout_path=str(tmp_path / "o"), stderr_path=str(tmp_path / "e"))
    assert wait_for(lambda: not procfs.is_running(detached.pid, None))
    assert "/nonexistent/program" in (tmp_path / "e").read_text()


@needs_cgroups
def test_detached_process_is_in_its_cgroups_from_the_start(tmp_path: Path, spawned: list[int],
                                                          cgroup_parent: str, method: str) -> None:
    groups = cgroups.create(capabilities().cgroups, cgroup_parent, "unit-detach", Limits(cpu=None, memory=None))
    try:
        # renamed into place: the shell's redirect creates the file before cat has written a line of it
        detached = spawn(tmp_path, method, 'cat /proc/self/cgroup > c.tmp; mv c.tmp cgroups.txt; exec sleep 30',
                         join_cgroups=cgroups.procs_files(groups))
        spawned.append(detached.pid)
        assert wait_for(lambda: cgroups.members(groups) == {detached.pid})
        assert wait_for(lambda: (tmp_path / "cgroups.txt").exists())
        seen = {}
        for line in (tmp_path / "cgroups.txt").read_text().splitlines():
            _, names, path = line.split(":", 2)
            seen.update({name: path for name in names.split(",")})
        for controller, directory in groups.items():
            assert directory.endswith(seen[controller] if capabilities().cgroup_version == "v1" else seen[""])
    finally:
        cgroups.kill(groups)
        cgroups.remove(groups)
