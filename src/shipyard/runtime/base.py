"""The runtime driver contract: what the engine asks of whatever runs its instances."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Limits:
    """Resources one instance may use; None means unlimited."""

    cpu: float | None        # cores, e.g. 0.5
    memory: int | None       # bytes
    pids: int | None = 512


@dataclass(frozen=True)
class InstanceSpec:
    """Everything needed to run one instance of a release."""

    instance_id: str          # unique, e.g. "catalog-3f2a1b9c-k7x2"
    service: str
    argv: tuple[str, ...]     # the command, run with cwd = snapshot_dir
    snapshot_dir: Path        # read-only release snapshot (the service's code)
    data_dir: Path            # the only writable dir (shared by the instances of one service)
    run_dir: Path             # per-instance dir for the driver's own files (status file, logs)
    env: Mapping[str, str]    # full environment; the driver adds nothing but a PATH if missing
    limits: Limits
    hidden_dirs: tuple[Path, ...] = ()   # masked with an empty read-only tmpfs inside the sandbox
    rootfs: bool = False      # a full OCI image: snapshot_dir is the instance's `/` (bubblewrap required)
    workdir: str = "/"        # with rootfs: the working directory inside it
    user: str = ""            # with rootfs: `uid:gid` the service runs as inside its user namespace ("": root)


@dataclass(frozen=True)
class Handle:
    """Enough to find, inspect and stop an instance again, even from another process after a restart.

    `pid` is the service's own process (0 when it exited before it could be observed during start),
    `start_time` is field 22 of /proc/<pid>/stat, so a reused pid is never taken for the instance.
    """

    instance_id: str
    pid: int
    start_time: int
    supervisor_pid: int | None          # the process that records the exit status (bwrap's monitor, or a shell)
    supervisor_start_time: int | None
    cgroups: Mapping[str, str]          # controller -> absolute cgroup dir
    status_file: str
    stdout_path: str
    stderr_path: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "pid": self.pid,
            "start_time": self.start_time,
            "supervisor_pid": self.supervisor_pid,
            "supervisor_start_time": self.supervisor_start_time,
            "cgroups": dict(self.cgroups),
            "status_file": self.status_file,
            "stdout_path": self.stdout_path,
            "stderr_path": self.stderr_path,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Handle:
        return cls(
            instance_id=str(data["instance_id"]),
            pid=int(data["pid"]),
            start_time=int(data["start_time"]),
            supervisor_pid=_optional_int(data.get("supervisor_pid")),
            supervisor_start_time=_optional_int(data.get("supervisor_start_time")),
            cgroups={str(k): str(v) for k, v in dict(data.get("cgroups") or {}).items()},
            status_file=str(data["status_file"]),
            stdout_path=str(data["stdout_path"]),
            stderr_path=str(data["stderr_path"]),
        )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class Isolation:
    """What isolation is actually in force for one instance, as `shipyard status` reports it."""

    sandbox: str | None                 # "bubblewrap" or None
    namespaces: tuple[str, ...]         # e.g. ("pid", "ipc", "uts", "mount")
    readonly_root: bool
    writable: tuple[str, ...]           # writable paths inside the sandbox
    cgroup: str | None                  # "v1" / "v2" / None
    notes: tuple[str, ...] = field(default=())   # plain-language reasons when something is unavailable


@dataclass(frozen=True)
class EffectiveLimits:
    """Limits read back from the cgroup files; None means unlimited (or no cgroup)."""

    memory_bytes: int | None
    cpu_cores: float | None
    pids: int | None


@dataclass(frozen=True)
class ProcessStatus:
    """The state of an instance's service process."""

    alive: bool
    exit_code: int | None     # once exited: the exit code, or 128+signal; None while alive or not yet recorded
    oom_killed: bool          # the instance's cgroup recorded an OOM kill


class RuntimeDriver(Protocol):
    """Runs instances as detached processes that outlive the control plane and can be re-adopted."""

    def start(self, spec: InstanceSpec) -> Handle:
        """Start the instance; returns once the service's own pid is known (blocks up to ~2 s)."""
        ...

    def status(self, handle: Handle) -> ProcessStatus:
        """Cheap (a few file reads, no subprocesses); works from the handle alone."""
        ...

    def signal(self, handle: Handle, sig: int) -> None:
        """Send `sig` to the service's own process; a no-op when it is gone."""
        ...

    def kill_all(self, handle: Handle) -> None:
        """SIGKILL everything left in the instance, including processes the service forked."""
        ...

    async def stop(self, handle: Handle, grace: float) -> ProcessStatus:
        """SIGTERM, wait up to `grace` seconds, then kill_all; returns the final status."""
        ...

    def isolation(self, handle: Handle) -> Isolation:
        ...

    def limits(self, handle: Handle) -> EffectiveLimits:
        ...

    def release(self, handle: Handle) -> None:
        """Tear down what the instance leaves behind (its cgroups); never touches data_dir."""
        ...
