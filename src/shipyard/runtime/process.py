"""ProcessDriver: instances as detached processes, sandboxed by bubblewrap and limited by cgroups."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import json
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.errors import RuntimeDriverError
from shipyard.runtime import cgroups, procfs, sandbox
from shipyard.runtime.base import EffectiveLimits, Handle, InstanceSpec, Isolation, ProcessStatus
from shipyard.runtime.capabilities import Capabilities, capabilities
from shipyard.runtime.detach import LogRotation, spawn_detached

STATUS_FILE = "status.json"      # bwrap's JSON status (child-pid, then exit-code); the shell writes exit-code
PID_FILE = "service.pid"         # without a sandbox: the service's pid, written before it execs
META_FILE = "instance.json"      # how the instance was started: isolation in force, namespace init, session
SUPERVISOR_GRACE = 0.5           # how long the supervisor gets to record the exit status after a kill
KILL_TIMEOUT = 2.0               # how long kill_all keeps sweeping until every process is gone
POLL = 0.002


@dataclass(frozen=True)
class _Started:
    """What start() learned while waiting for the service's pid."""

    pid: int
    init_pid: int | None          # bwrap's pid-namespace init (host pid)


class ProcessDriver:
    """Runs each instance detached, in bubblewrap when it works, in its own cgroups when they can be made.

    `cgroup_parent` is the path, relative to each hierarchy's root, under which instance cgroups are
    made (not under the control plane's own cgroup, so that stopping the control plane's unit does not
    take the instances with it). `sandbox=False` and `use_cgroups=False` turn those features off.
    Each instance's stdout.log and stderr.log rotate at `log_rotation` (default: SHIPYARD_LOG_MAX_BYTES,
    SHIPYARD_LOG_FILES, else 10 MiB × 3), by a writer process of its own (runtime/logwriter.py).
    """

    def __init__(self, cgroup_parent: str = "shipyard", *, sandbox: bool = True, use_cgroups: bool = True,
                 start_timeout: float = 2.0, caps: Capabilities | None = None,
                 log_rotation: LogRotation | None = None) -> None:
        self._parent = cgroup_parent.strip("/")
        self._log_rotation = log_rotation or LogRotation.from_env(os.environ)
        self._sandbox = sandbox
        self._use_cgroups = use_cgroups
        self._start_timeout = start_timeout
        self._caps = caps

    @property
    def capabilities(self) -> Capabilities:
        if self._caps is None:
            self._caps = capabilities()
        return self._caps

    # ---- start -------------------------------------------------------------------------------------
    def start(self, spec: InstanceSpec) -> Handle:
        """Start the instance detached; returns once the service's own pid is known (typically ~30 ms)."""
        caps = self.capabilities
        _prepare(spec)
        groups, cgroup_notes = self._make_cgroups(spec, caps)
        bwrap = caps.bwrap if self._sandbox else None
        if spec.rootfs and not bwrap:
            raise RuntimeDriverError(f"instance {spec.instance_id}: a full OCI image needs bubblewrap to run with "
                                     "its own root (" + ("; ".join(caps.sandbox_notes) or "sandbox disabled") + ")")
        run_dir = Path(spec.run_dir)
        status_file, pid_file = run_dir / STATUS_FILE, run_dir / PID_FILE
        stderr_path = run_dir / "stderr.log"
        stderr_offset = stderr_path.stat().st_size if stderr_path.exists() else 0
        if bwrap:
            argv = sandbox.bwrap_argv(spec, bwrap)
        else:
            argv = sandbox.direct_argv(spec, str(pid_file), str(status_file))
        try:
            detached = spawn_detached(
                argv, env=sandbox.service_env(spec), cwd=os.path.abspath(spec.snapshot_dir),
                stdout_path=str(run_dir / "stdout.log"), stderr_path=str(stderr_path),
                status_path=str(status_file) if bwrap else None, join_cgroups=cgroups.procs_files(groups),
                rotate=self._log_rotation)
        except RuntimeDriverError:
            _remove_quietly(groups)
            raise
        supervisor_start = procfs.start_time(detached.pid)
        handle = Handle(
            instance_id=spec.instance_id, pid=0, start_time=0, supervisor_pid=detached.pid,
            supervisor_start_time=supervisor_start, cgroups=groups, status_file=str(status_file),
            stdout_path=str(run_dir / "stdout.log"), stderr_path=str(stderr_path))
        try:
            started = self._await_service(handle, bwrap, pid_file, stderr_path, stderr_offset)
        except RuntimeDriverError:
            self._abandon(handle, detached.session)
            raise
        service_start = procfs.start_time(started.pid) if started.pid else None
        handle = dataclasses.replace(handle, pid=started.pid if service_start else 0, start_time=service_start or 0)
        _write_meta(run_dir, self._meta(spec, caps, bool(bwrap), groups, cgroup_notes, started, detached.session))
        return handle

    def _make_cgroups(self, spec: InstanceSpec, caps: Capabilities) -> tuple[dict[str, str], list[str]]:
        if not self._use_cgroups:
            return {}, ["cgroups disabled by configuration: running without resource limits"]
        if caps.cgroups.version is None:
            return {}, list(caps.cgroup_notes)
        try:
            groups = cgroups.create(caps.cgroups, self._parent, spec.instance_id, spec.limits)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise RuntimeDriverError(f"instance {spec.instance_id} is already running ({exc})") from exc
            return {}, [f"could not create cgroups ({exc}): running without resource limits"]
        return groups, list(caps.cgroup_notes)

    def _await_service(self, handle: Handle, bwrap: str | None, pid_file: Path, stderr_path: Path,
                       stderr_offset: int) -> _Started:
        """Poll (bounded) until the service's host pid is known, or it has already exited."""
        deadline = time.monotonic() + self._start_timeout
        launcher = _file_identity(bwrap) if bwrap else None
        while True:
            # sampled before the status file is read: a supervisor already gone has written all it will
            supervising = procfs.is_running(handle.supervisor_pid or 0, handle.supervisor_start_time)
            status = read_status_file(handle.status_file)
            if bwrap:
                init_pid = status.get("child-pid")
                pid = _service_under_init(init_pid) if init_pid else None
                # bwrap records no exit code for a child that dies before its exec (say, of an early
                # SIGTERM), so the pid is handed out only once it runs the service's program
                if pid and _file_identity(f"/proc/{pid}/exe") in (launcher, None):
                    pid = None
            else:
                init_pid, pid = None, _read_pid(pid_file)
            if pid:
                return _Started(pid, init_pid)
            if "exit-code" in status:
                return _Started(0, init_pid)   # the service came and went before we could see it
            if not supervising:
                why = _wait_for_stderr(stderr_path, stderr_offset)
                raise RuntimeDriverError(f"instance {handle.instance_id} did not start: {why}")
            if time.monotonic() >= deadline:
                raise RuntimeDriverError(
                    f"instance {handle.instance_id}: service pid not known after {self._start_timeout:g}s")
            time.sleep(POLL)

    def _abandon(self, handle: Handle, session: int) -> None:
        # a start that failed half-way must not leave processes or cgroups behind
        for pid in procfs.session_members(session):
            _kill(pid, signal.SIGKILL)
        self._sweep(handle, {})
        _remove_quietly(handle.cgroups)

    def _meta(self, spec: InstanceSpec, caps: Capabilities, sandboxed: bool, groups: Mapping[str, str],
              cgroup_notes: list[str], started: _Started, session: int) -> dict[str, Any]:
        notes: list[str] = []
        if not sandboxed:
            notes += caps.sandbox_notes or ("sandbox disabled by configuration: running without a sandbox",)
        notes += cgroup_notes
        if not sandboxed and not groups:
            notes.append("without a sandbox or cgroups, processes that leave the instance's session "
                         "may survive a stop")
        init_start = procfs.start_time(started.init_pid) if started.init_pid else None
        return {
            "sandbox": "bubblewrap" if sandboxed else None,
            "namespaces": list(sandbox.NAMESPACES) if sandboxed else [],
            "readonly_root": sandboxed,
            "writable": list(sandbox.writable_paths(spec, sandboxed)),
            "cgroup": caps.cgroups.version if groups else None,
            "notes": notes,
            "init_pid": started.init_pid if init_start else None,
            "init_start_time": init_start,
            "session": session,
        }

    # ---- observe -----------------------------------------------------------------------------------
    def status(self, handle: Handle) -> ProcessStatus:
        """A few small file reads: /proc/<pid>/stat, the status file once exited, the OOM counter."""
        alive = handle.pid > 0 and procfs.is_running(handle.pid, handle.start_time)
        recorded = None if alive else read_status_file(handle.status_file).get("exit-code")
        exit_code = recorded if isinstance(recorded, int) else None
        return ProcessStatus(alive=alive, exit_code=exit_code, oom_killed=cgroups.oom_kills(handle.cgroups) > 0)

    def isolation(self, handle: Handle) -> Isolation:
        meta = _read_meta(handle)
        if not meta:
            return Isolation(sandbox=None, namespaces=(), readonly_root=False, writable=(), cgroup=None,
                             notes=(f"no record of how instance {handle.instance_id} was started",))
        return Isolation(
            sandbox=meta.get("sandbox"), namespaces=tuple(meta.get("namespaces", ())),
            readonly_root=bool(meta.get("readonly_root")), writable=tuple(meta.get("writable", ())),
            cgroup=meta.get("cgroup"), notes=tuple(meta.get("notes", ())))

    def limits(self, handle: Handle) -> EffectiveLimits:
        try:
            return cgroups.read_limits(handle.cgroups)
        except (OSError, ValueError) as exc:
            raise RuntimeDriverError(f"cannot read the limits of instance {handle.instance_id}: {exc}") from exc

    # ---- act ---------------------------------------------------------------------------------------
    def signal(self, handle: Handle, sig: int) -> None:
        if handle.pid > 0 and procfs.is_running(handle.pid, handle.start_time):
            try:
                os.kill(handle.pid, sig)
            except ProcessLookupError:
                pass
            except PermissionError as exc:
                raise RuntimeDriverError(f"cannot signal instance {handle.instance_id} (pid {handle.pid}): "
                                         f"{exc}") from exc

    def kill_all(self, handle: Handle) -> None:
        """SIGKILL every process of the instance; blocks until they are gone (normally a few ms, at most ~2.5 s)."""
        meta = _read_meta(handle)
        self._kill_pass(handle, meta, spare_supervisor=True)
        # the supervisor records the exit status once the service is gone; only then is it killed too
        _wait_sync(lambda: not self._supervisor_running(handle), SUPERVISOR_GRACE)
        self._sweep(handle, meta)

    async def stop(self, handle: Handle, grace: float) -> ProcessStatus:
        """SIGTERM to the service, up to `grace` s for it to exit, then SIGKILL whatever is left."""
        self.signal(handle, signal.SIGTERM)
        await _wait_async(lambda: not self.status(handle).alive, grace)
        # a dead service is a zombie until its parent has reaped it and reported the exit code;
        # killing the namespace init before then would record 137 instead of the real code
        await _wait_async(lambda: self._exit_recorded(handle), SUPERVISOR_GRACE)
        meta = _read_meta(handle)
        self._kill_pass(handle, meta, spare_supervisor=True)
        await _wait_async(lambda: not self._supervisor_running(handle), SUPERVISOR_GRACE)
        await asyncio.to_thread(self._sweep, handle, meta)
        return self.status(handle)

    def release(self, handle: Handle) -> None:
        """Kill anything still left in the instance, then remove its cgroups; data_dir is never touched."""
        self.kill_all(handle)
        try:
            cgroups.remove(handle.cgroups)
        except OSError as exc:
            raise RuntimeDriverError(f"cannot remove the cgroups of instance {handle.instance_id}: {exc}") from exc

    # ---- killing -----------------------------------------------------------------------------------
    def _exit_recorded(self, handle: Handle) -> bool:
        status = self.status(handle)
        return status.alive or status.exit_code is not None or not self._supervisor_running(handle)

    def _supervisor_running(self, handle: Handle) -> bool:
        return bool(handle.supervisor_pid) and procfs.is_running(handle.supervisor_pid or 0,
                                                                 handle.supervisor_start_time)

    def _kill_pass(self, handle: Handle, meta: Mapping[str, Any], spare_supervisor: bool) -> bool:
        """SIGKILL the namespace init, the service and every member; True when anything was still running."""
        spare = {handle.supervisor_pid} if spare_supervisor and handle.supervisor_pid else set()
        targets: set[int] = set()
        init_pid = meta.get("init_pid")
        if init_pid and procfs.is_running(init_pid, meta.get("init_start_time")):
            targets.add(init_pid)     # killing a pid namespace's init kills everything in the namespace
        if handle.pid > 0 and procfs.is_running(handle.pid, handle.start_time):
            targets.add(handle.pid)
        targets |= {pid for pid in cgroups.members(handle.cgroups) if procfs.is_running(pid, None)}
        if not handle.cgroups and meta.get("session"):
            targets |= set(procfs.session_members(int(meta["session"])))
        if not spare_supervisor and self._supervisor_running(handle):
            targets.add(handle.supervisor_pid or 0)
        targets -= spare | {0}
        for pid in targets:
            _kill(pid, signal.SIGKILL)
        return bool(targets)

    def _sweep(self, handle: Handle, meta: Mapping[str, Any]) -> None:
        # repeat: a process may fork between reading the members and killing them, and killed
        # processes stay visible until they have finished exiting
        deadline = time.monotonic() + KILL_TIMEOUT
        while self._kill_pass(handle, meta, spare_supervisor=False):
            if time.monotonic() >= deadline:
                raise RuntimeDriverError(f"instance {handle.instance_id}: processes survived SIGKILL "
                                         f"for {KILL_TIMEOUT:g}s")
            time.sleep(POLL * 5)


# ---- files ---------------------------------------------------------------------------------------------
def _prepare(spec: InstanceSpec) -> None:
    if not spec.argv:
        raise RuntimeDriverError(f"instance {spec.instance_id}: empty command")
    if not Path(spec.snapshot_dir).is_dir():
        raise RuntimeDriverError(f"instance {spec.instance_id}: snapshot dir {spec.snapshot_dir} does not exist")
    for hidden in spec.hidden_dirs:
        # bwrap cannot mask a dir that does not exist (and one made later would be visible)
        if not Path(hidden).is_dir():
            raise RuntimeDriverError(f"instance {spec.instance_id}: hidden dir {hidden} does not exist")
    try:
        Path(spec.data_dir).mkdir(parents=True, exist_ok=True)
        Path(spec.run_dir).mkdir(parents=True, exist_ok=True)
        for name in (STATUS_FILE, PID_FILE, META_FILE):
            Path(spec.run_dir, name).unlink(missing_ok=True)
    except OSError as exc:
        raise RuntimeDriverError(f"instance {spec.instance_id}: cannot prepare {spec.run_dir}: {exc}") from exc


def read_status_file(path: str) -> dict[str, Any]:
    """The JSON objects of a status file (one per line), merged; partial lines are skipped."""
    merged: dict[str, Any] = {}
    try:
        with open(path, encoding="utf-8") as file:
            for line in file:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    merged.update(record)
    except FileNotFoundError:
        pass
    return merged


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def _service_under_init(init_pid: int) -> int | None:
    """The service: the child bwrap's namespace init forked first (pid 2 inside the namespace)."""
    kids = procfs.children(init_pid)
    for child in kids:
        inner = procfs.ns_pid(child)
        # not "the only child": once the service has exited, a child it forked is reparented to init
        if inner == 2 or (inner is None and len(kids) == 1):   # None: a kernel without NSpid
            return child
    return None


def _wait_for_stderr(path: Path, offset: int, patience: float = 0.5) -> str:
    """The last new line of stderr; the log writer may still be copying it, so wait briefly for one."""
    deadline = time.monotonic() + patience
    while not (line := _new_stderr(path, offset)) and time.monotonic() < deadline:
        time.sleep(POLL)
    return line or "no output"


def _new_stderr(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            lines = file.read().decode(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    return lines[-1] if lines else ""


def _file_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file at `path` (following /proc/<pid>/exe to the program), None if unknown."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _write_meta(run_dir: Path, meta: Mapping[str, Any]) -> None:
    tmp = run_dir / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    os.replace(tmp, run_dir / META_FILE)


def _read_meta(handle: Handle) -> dict[str, Any]:
    try:
        data = json.loads(Path(handle.status_file).with_name(META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remove_quietly(groups: Mapping[str, str]) -> None:
    try:
        cgroups.remove(groups, timeout=0.2)
    except OSError:
        pass


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_sync(done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(POLL)


async def _wait_async(done: Callable[[], bool], timeout: float) -> None:
    # short polls first (most services exit within milliseconds of SIGTERM), then back off
    deadline, delay = time.monotonic() + timeout, 0.005
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.05)
