"""Tests of ProcessDriver against real processes: detach, sandbox, cgroups, stop, re-adopt."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shipyard.errors import RuntimeDriverError
from shipyard.runtime import cgroups, procfs
from shipyard.runtime.base import EffectiveLimits, Handle, Limits, ProcessStatus
from shipyard.runtime.process import ProcessDriver
from tests.runtime.lab import Lab, descendants, needs_bwrap, needs_cgroups, python, wait_for

SLEEPER = python("import time; time.sleep(60)")
GRACEFUL = python("import signal, sys, time\n"
                  "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
                  "print('ready', flush=True)\n"
                  "time.sleep(60)")
STUBBORN = python("import signal, time\n"
                  "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                  "print('ready', flush=True)\n"
                  "time.sleep(60)")
# forks a grandchild that leaves the session, ignores SIGTERM and is reparented away from the service
FORKER = python("import os, signal, time\n"
                "if os.fork() == 0:\n"
                "    os.setsid()\n"
                "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "    if os.fork():\n"
                "        os._exit(0)\n"
                "    open(os.environ['MARK'], 'w').write('up')\n"
                "    while True:\n"
                "        time.sleep(1)\n"
                "time.sleep(60)")

def stop(driver: ProcessDriver, handle: Handle, grace: float = 2.0) -> tuple[float, ProcessStatus]:
    began = time.monotonic()
    status = asyncio.run(driver.stop(handle, grace))
    return time.monotonic() - began, status


def exited(driver: ProcessDriver, handle: Handle) -> bool:
    status = driver.status(handle)
    return not status.alive and status.exit_code is not None


def ready(handle: Handle) -> bool:
    return "ready" in Path(handle.stdout_path).read_text()


def execed(handle: Handle, word: str) -> bool:
    """start() returns as soon as the pid is known, which can be just before the service's exec."""
    return wait_for(lambda: word in Path(f"/proc/{handle.pid}/cmdline").read_text())


def instance_processes(handle: Handle) -> dict[int, int]:
    """pid -> start time of every process of the instance (cgroup members and the supervisor's tree)."""
    pids = cgroups.members(handle.cgroups) | descendants(handle.supervisor_pid or 0)
    return {pid: start for pid in pids if (start := procfs.start_time(pid)) is not None}


def none_running(processes: dict[int, int]) -> bool:
    return not any(procfs.is_running(pid, start) for pid, start in processes.items())


# ---- start, status, signals ---------------------------------------------------------------------------
@needs_bwrap
def test_start_returns_the_services_own_pid_inside_the_sandbox(lab: Lab) -> None:
    handle = lab.run(SLEEPER)
    assert execed(handle, "time.sleep(60)")
    assert procfs.ns_pid(handle.pid) == 2           # bwrap's init is pid 1, the service its child
    service = procfs.read_stat(handle.pid)
    assert service is not None and service.start_time == handle.start_time
    assert procfs.read_stat(service.ppid).ppid == handle.supervisor_pid   # type: ignore[union-attr]
    assert lab.driver.status(handle).alive
    assert lab.driver.isolation(handle).sandbox == "bubblewrap"


def test_direct_mode_pid_is_the_service_itself(lab: Lab, cgroup_parent: str) -> None:
    driver = ProcessDriver(cgroup_parent=cgroup_parent, sandbox=False)
    handle = lab.start(lab.spec(SLEEPER), driver)
    assert execed(handle, "time.sleep(60)")
    assert procfs.read_stat(handle.pid).ppid == handle.supervisor_pid   # type: ignore[union-attr]
    isolation = driver.isolation(handle)
    assert isolation.sandbox is None and isolation.namespaces == () and not isolation.readonly_root
    assert any("without a sandbox" in note for note in isolation.notes)


@pytest.mark.parametrize("sandbox", [pytest.param(True, marks=needs_bwrap), False])
def test_exit_code_and_signal_deaths_are_recorded(lab: Lab, cgroup_parent: str, sandbox: bool) -> None:
    driver = ProcessDriver(cgroup_parent=cgroup_parent, sandbox=sandbox)
    exits = lab.start(lab.spec(["/bin/sh", "-c", "sleep 0.1; exit 7"]), driver)
    killed = lab.start(lab.spec(["sleep", "30"]), driver)
    terminated = lab.start(lab.spec(["sleep", "30"]), driver)
    assert driver.status(killed).alive and driver.status(killed).exit_code is None
    driver.signal(killed, signal.SIGKILL)
    driver.signal(terminated, signal.SIGTERM)
    for handle in (exits, killed, terminated):
        assert wait_for(lambda: exited(driver, handle)), handle   # noqa: B023
    assert [driver.status(h).exit_code for h in (exits, killed, terminated)] == [7, 137, 143]
    assert not driver.status(killed).oom_killed
    driver.signal(killed, signal.SIGTERM)    # gone: a no-op


@pytest.mark.parametrize("sandbox", [pytest.param(True, marks=needs_bwrap), False])
def test_service_starts_with_default_signal_handling(lab: Lab, cgroup_parent: str, sandbox: bool) -> None:
    driver = ProcessDriver(cgroup_parent=cgroup_parent, sandbox=sandbox)
    handle = lab.start(lab.spec(["sleep", "30"]), driver)
    assert execed(handle, "sleep")
    status = Path(f"/proc/{handle.pid}/status").read_text()
    masks = dict(line.split(":\t") for line in status.splitlines() if line.startswith(("SigIgn", "SigBlk")))
    # Nothing beyond what the test run itself inherited (a CI wrapper may block a real-time signal).
    ours = dict(line.split(":\t") for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith(("SigIgn", "SigBlk")))
    assert int(masks["SigIgn"], 16) & ~int(ours["SigIgn"], 16) == 0
    assert int(masks["SigBlk"], 16) & ~int(ours["SigBlk"], 16) == 0


def test_a_command_that_exits_at_once_still_gets_a_handle(lab: Lab) -> None:
    handle = lab.run(["true"])
    assert wait_for(lambda: exited(lab.driver, handle))
    assert lab.driver.status(handle).exit_code == 0


@needs_bwrap
def test_a_command_the_sandbox_cannot_run_fails_to_start_and_leaves_nothing(lab: Lab) -> None:
    spec = lab.spec(["/nonexistent/program"])
    with pytest.raises(RuntimeDriverError, match="nonexistent/program"):
        lab.start(spec)   # tracked, so released even if it unexpectedly starts
    parent = Path("/sys/fs/cgroup/memory") / lab.driver._parent / spec.instance_id
    assert not parent.exists()


def test_a_missing_snapshot_dir_fails_to_start(lab: Lab) -> None:
    spec = lab.spec(SLEEPER)
    spec.snapshot_dir.rmdir()
    with pytest.raises(RuntimeDriverError, match="snapshot dir"):
        lab.start(spec)   # tracked, so released even if it unexpectedly starts


def test_logs_are_appended_to_files_in_the_run_dir(lab: Lab) -> None:
    spec = lab.spec(["/bin/sh", "-c", "echo out-$N; echo err-$N >&2"], env={"N": "1"}, name="logger-1")
    first = lab.start(spec)
    assert wait_for(lambda: exited(lab.driver, first))
    # the instance's log writer copies its output to the files: they are complete soon after it exits
    assert wait_for(lambda: Path(first.stdout_path).read_text() == "out-1\n")
    lab.driver.release(first)
    second = lab.start(lab.spec(spec.argv, env={"N": "2"}, name="logger-1"))
    assert wait_for(lambda: exited(lab.driver, second))
    assert first.stdout_path == str(spec.run_dir / "stdout.log")
    assert wait_for(lambda: Path(first.stdout_path).read_text() == "out-1\nout-2\n")
    assert wait_for(lambda: Path(first.stderr_path).read_text() == "err-1\nerr-2\n")


def test_service_gets_exactly_its_environment_plus_a_path(lab: Lab) -> None:
    handle = lab.run(python("import json, os; print(json.dumps(dict(os.environ)))"), env={"A": "1"})
    assert wait_for(lambda: exited(lab.driver, handle))
    env = json.loads(Path(handle.stdout_path).read_text())
    assert env.pop("A") == "1" and env.pop("PATH").startswith("/usr/local/sbin")
    assert env.pop("PWD") == str(lab.state / "snapshots" / "rel-1")   # set by bwrap's --chdir (or the shell)
    assert set(env) <= {"LC_CTYPE"}     # Python may set LC_CTYPE itself under the C locale


def test_status_is_cheap(lab: Lab) -> None:
    handle = lab.run(SLEEPER)
    began = time.process_time()  # CPU time: what polling costs, not how busy the shared machine is
    for _ in range(200):
        lab.driver.status(handle)
    # 200 instances polled every second must cost far less than a second; measured ~50 µs each
    assert time.process_time() - began < 0.2


# ---- detach and re-adopt ------------------------------------------------------------------------------
STARTER = """
import json, sys
from pathlib import Path
from shipyard.runtime.base import InstanceSpec, Limits
from shipyard.runtime.process import ProcessDriver
args = json.loads(sys.argv[1])
spec = InstanceSpec(
    instance_id=args["id"], service="svc", argv=tuple(args["argv"]), snapshot_dir=Path(args["snapshot"]),
    data_dir=Path(args["data"]), run_dir=Path(args["run"]), env={}, limits=Limits(cpu=0.5, memory=128 << 20),
    hidden_dirs=(Path(args["hidden"]),))
handle = ProcessDriver(cgroup_parent=args["parent"]).start(spec)
print(json.dumps(handle.to_dict()), flush=True)
import time; time.sleep(60)
"""


def test_instance_survives_sigkill_of_its_starter_and_is_re_adopted_from_the_handle(
        lab: Lab, cgroup_parent: str) -> None:
    spec = lab.spec(SLEEPER)
    args = {"id": spec.instance_id, "argv": list(spec.argv), "snapshot": str(spec.snapshot_dir),
            "data": str(spec.data_dir), "run": str(spec.run_dir), "hidden": str(lab.state), "parent": cgroup_parent}
    starter = subprocess.Popen([sys.executable, "-c", STARTER, json.dumps(args)], stdout=subprocess.PIPE, text=True)
    try:
        line = starter.stdout.readline()   # type: ignore[union-attr]
    finally:
        starter.kill()
        starter.communicate()
    handle = Handle.from_dict(json.loads(line))
    lab.adopt(handle)
    assert starter.pid not in {s.ppid for s in procfs.all_stats() if s.pid in (handle.pid, handle.supervisor_pid)}
    fresh = ProcessDriver(cgroup_parent=cgroup_parent)      # a new control plane knows only the handle
    assert fresh.status(handle).alive
    assert fresh.limits(handle).cpu_cores == (0.5 if handle.cgroups else None)
    assert fresh.isolation(handle) == lab.driver.isolation(handle)
    _, status = stop(fresh, handle)
    assert status == fresh.status(handle) and not fresh.status(handle).alive


def test_starting_leaves_no_zombie_under_the_caller(lab: Lab) -> None:
    lab.run(SLEEPER)
    lab.run(["true"])
    zombies = [c for c in procfs.children(os.getpid()) if (s := procfs.read_stat(c)) and s.state == "Z"]
    assert zombies == []


def test_a_reused_pid_is_not_taken_for_the_instance(lab: Lab) -> None:
    handle = lab.run(SLEEPER)
    impostor = Handle.from_dict({**handle.to_dict(), "start_time": handle.start_time - 1})
    assert not lab.driver.status(impostor).alive
    lab.driver.signal(impostor, signal.SIGKILL)     # must not reach the real process
    assert lab.driver.status(handle).alive


# ---- stop and kill_all --------------------------------------------------------------------------------
def test_stop_is_graceful_when_the_service_handles_sigterm(lab: Lab) -> None:
    handle = lab.run(GRACEFUL)
    assert wait_for(lambda: ready(handle))
    elapsed, status = stop(lab.driver, handle, grace=5)
    assert status == lab.driver.status(handle)
    assert lab.driver.status(handle).exit_code == 0 and elapsed < 1


def test_stop_kills_a_service_that_ignores_sigterm_after_the_grace_period(lab: Lab) -> None:
    handle = lab.run(STUBBORN)
    assert wait_for(lambda: ready(handle))
    elapsed, _ = stop(lab.driver, handle, grace=0.3)
    status = lab.driver.status(handle)
    assert not status.alive and status.exit_code == 137
    assert 0.3 <= elapsed < 2


@pytest.mark.parametrize("sandbox, use_cgroups", [
    pytest.param(True, True, marks=needs_bwrap, id="bubblewrap+cgroups"),
    pytest.param(True, False, marks=needs_bwrap, id="bubblewrap-only"),
    pytest.param(False, True, marks=needs_cgroups, id="cgroups-only"),
])
def test_stop_leaves_no_process_behind_not_even_an_escaped_grandchild(
        lab: Lab, cgroup_parent: str, sandbox: bool, use_cgroups: bool) -> None:
    driver = ProcessDriver(cgroup_parent=cgroup_parent, sandbox=sandbox, use_cgroups=use_cgroups)
    spec = lab.spec(FORKER)
    mark = spec.data_dir / f"{spec.instance_id}.mark"
    handle = lab.start(lab.spec(FORKER, name=spec.instance_id, env={"MARK": str(mark)}), driver)
    assert wait_for(mark.exists)
    processes = instance_processes(handle)
    assert len(processes) >= 3      # supervisor (+ init), service, grandchild
    _, status = stop(driver, handle, grace=1)
    assert none_running(processes)
    assert not status.alive and status.exit_code == 143     # the service itself obeyed SIGTERM


def test_kill_all_kills_everything_at_once(lab: Lab) -> None:
    spec = lab.spec(FORKER)
    mark = spec.data_dir / "kill-all.mark"
    handle = lab.start(lab.spec(FORKER, name=spec.instance_id, env={"MARK": str(mark)}))
    assert wait_for(mark.exists)
    processes = instance_processes(handle)
    lab.driver.kill_all(handle)
    assert none_running(processes)
    assert lab.driver.status(handle).exit_code == 137


# ---- isolation ----------------------------------------------------------------------------------------
PROBE = """
import json, os
results = {}
def attempt(name, action):
    try:
        action()
        results[name] = "ok"
    except OSError as exc:
        results[name] = exc.strerror
attempt("snapshot", lambda: open("new.txt", "w").write("x"))
attempt("etc", lambda: open("/etc/shipyard-isolation-test", "w").write("x"))
attempt("state", lambda: open(os.environ["STATE"] + "/x", "w").write("x"))
attempt("sibling", lambda: open(os.environ["SIBLING"]).read())
attempt("data", lambda: open(os.environ["DATA"] + "/written", "w").write("x"))
attempt("tmp", lambda: open("/tmp/x", "w").write("x"))
results["code"] = open("app.txt").read()
results["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print(json.dumps(results))
"""


@needs_bwrap
def test_the_sandbox_allows_writes_only_to_the_data_dir_and_hides_the_rest(lab: Lab) -> None:
    sibling = lab.state / "data" / "other" / "secret.txt"
    sibling.parent.mkdir(parents=True)
    sibling.write_text("secret")
    spec = lab.spec(python(PROBE))
    (spec.snapshot_dir / "app.txt").write_text("code")
    env = {"STATE": str(lab.state), "SIBLING": str(sibling), "DATA": str(spec.data_dir)}
    handle = lab.start(lab.spec(spec.argv, name=spec.instance_id, env=env))
    assert wait_for(lambda: exited(lab.driver, handle))
    results = json.loads(Path(handle.stdout_path).read_text())
    assert results == {
        "snapshot": "Read-only file system", "etc": "Read-only file system", "state": "Read-only file system",
        "sibling": "No such file or directory", "data": "ok", "tmp": "ok", "code": "code", "pids": [1, 2],
    }
    assert (spec.data_dir / "written").read_text() == "x"
    assert not (spec.snapshot_dir / "new.txt").exists() and not (lab.state / "x").exists()
    isolation = lab.driver.isolation(handle)
    assert isolation.sandbox == "bubblewrap" and isolation.readonly_root
    assert isolation.namespaces == ("pid", "ipc", "uts", "mount")
    assert isolation.writable == (str(spec.data_dir), "/tmp", "/dev")


@needs_cgroups
def test_a_memory_hog_is_oom_killed_while_its_neighbour_keeps_running(lab: Lab) -> None:
    limits = Limits(cpu=None, memory=64 << 20)
    neighbour = lab.run(SLEEPER, limits=limits)
    hog = lab.run(python("import time; b = b'x' * (256 << 20); time.sleep(60)"), limits=limits)
    assert wait_for(lambda: exited(lab.driver, hog))
    assert lab.driver.status(hog) == ProcessStatus(alive=False, exit_code=137, oom_killed=True)
    assert lab.driver.status(neighbour).alive and not lab.driver.status(neighbour).oom_killed


@needs_cgroups
def test_limits_reads_back_what_is_in_force(lab: Lab) -> None:
    limited = lab.run(SLEEPER, limits=Limits(cpu=0.25, memory=100 << 20, pids=64))
    unlimited = lab.run(SLEEPER, limits=Limits(cpu=None, memory=None, pids=None))
    assert lab.driver.limits(limited) == EffectiveLimits(memory_bytes=100 << 20, cpu_cores=0.25, pids=64)
    assert lab.driver.limits(unlimited) == EffectiveLimits(memory_bytes=None, cpu_cores=None, pids=None)
    assert lab.driver.isolation(limited).cgroup == lab.driver.capabilities.cgroup_version


def test_without_cgroups_the_instance_runs_and_says_so(lab: Lab, cgroup_parent: str) -> None:
    driver = ProcessDriver(cgroup_parent=cgroup_parent, use_cgroups=False)
    handle = lab.start(lab.spec(SLEEPER, limits=Limits(cpu=0.5, memory=1 << 30)), driver)
    assert handle.cgroups == {} and driver.status(handle).alive
    assert driver.limits(handle) == EffectiveLimits(memory_bytes=None, cpu_cores=None, pids=None)
    isolation = driver.isolation(handle)
    assert isolation.cgroup is None and any("without resource limits" in n for n in isolation.notes)


@needs_cgroups
def test_release_removes_the_cgroups_and_keeps_the_data(lab: Lab) -> None:
    spec = lab.spec(["/bin/sh", "-c", "echo kept > $DATA/file"], env={"DATA": str(lab.state / "data" / "svc")})
    handle = lab.start(spec)
    assert wait_for(lambda: exited(lab.driver, handle))
    assert all(Path(d).is_dir() for d in handle.cgroups.values())
    lab.driver.release(handle)
    assert not any(Path(d).exists() for d in handle.cgroups.values())
    assert (spec.data_dir / "file").read_text() == "kept\n"
    lab.driver.release(handle)      # idempotent



def test_without_sandbox_or_cgroups_stop_still_works_and_the_notes_say_what_is_missing(
        lab: Lab, cgroup_parent: str) -> None:
    driver = ProcessDriver(cgroup_parent=cgroup_parent, sandbox=False, use_cgroups=False)
    handle = lab.start(lab.spec(["/bin/sh", "-c", "sleep 30 & sleep 30"]), driver)
    processes = instance_processes(handle)
    _, status = stop(driver, handle, grace=1)
    assert none_running(processes) and status.exit_code == 143
    notes = " ".join(driver.isolation(handle).notes)
    assert "without a sandbox" in notes and "without resource limits" in notes and "may survive" in notes


def test_a_missing_hidden_dir_fails_to_start(lab: Lab) -> None:
    spec = lab.spec(SLEEPER)
    spec = dataclasses.replace(spec, hidden_dirs=(lab.root / "missing",))
    with pytest.raises(RuntimeDriverError, match="hidden dir"):
        lab.start(spec)   # tracked, so released even if it unexpectedly starts
