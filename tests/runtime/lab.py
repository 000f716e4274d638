"""Helpers of the runtime tests: a state dir laid out like the engine's, waiting, and process trees."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.runtime import procfs
from shipyard.runtime.base import Handle, InstanceSpec, Limits
from shipyard.runtime.capabilities import capabilities
from shipyard.runtime.process import ProcessDriver

# The interpreter itself, not the venv's link to it: the sandbox gives instances a private /tmp,
# so a venv under /tmp (a CI clone there, say) is invisible inside it.
PYTHON = os.path.realpath(sys.executable)
UNLIMITED = Limits(cpu=None, memory=None, pids=None)

needs_bwrap = pytest.mark.skipif(capabilities().bwrap is None, reason="bubblewrap does not work here")
needs_cgroups = pytest.mark.skipif(capabilities().cgroup_version is None, reason="no writable cgroups here")


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (a /proc scan)."""
    stats = procfs.all_stats()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {s.pid for s in stats if s.ppid in frontier and s.state != "Z"} - found
        found |= frontier
    return found


class Lab:
    """Makes instance specs under a state dir shaped like the engine's, and kills what it started."""

    def __init__(self, root: Path, driver: ProcessDriver) -> None:
        self.root = root
        self.state = root / "state"
        self.driver = driver
        self.handles: list[tuple[ProcessDriver, Handle]] = []

    def spec(self, argv: list[str] | tuple[str, ...], *, service: str = "svc", name: str | None = None,
             limits: Limits = UNLIMITED, env: dict[str, str] | None = None,
             snapshot: str = "rel-1") -> InstanceSpec:
        snapshot_dir = self.state / "snapshots" / snapshot
        snapshot_dir.mkdir(parents=True, exist_ok=True)
        data_dir = self.state / "data" / service
        data_dir.mkdir(parents=True, exist_ok=True)
        instance_id = name or f"{service}-{uuid.uuid4().hex[:8]}"
        return InstanceSpec(
            instance_id=instance_id, service=service, argv=tuple(argv), snapshot_dir=snapshot_dir,
            data_dir=data_dir, run_dir=self.state / "instances" / instance_id,
            env=env if env is not None else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            limits=limits, hidden_dirs=(self.state,))

    def start(self, spec: InstanceSpec, driver: ProcessDriver | None = None) -> Handle:
        driver = driver or self.driver
        handle = driver.start(spec)
        self.handles.append((driver, handle))
        return handle

    def run(self, argv: list[str], **kwargs: object) -> Handle:
        return self.start(self.spec(argv, **kwargs))  # type: ignore[arg-type]

    def adopt(self, handle: Handle) -> None:
        self.handles.append((self.driver, handle))

    def cleanup(self) -> None:
        """Release every instance (killing what is left); the first failure is raised after all are done."""
        errors = []
        for driver, handle in self.handles:
            try:
                driver.release(handle)
            except Exception as exc:  # noqa: BLE001 - keep cleaning the others
                errors.append(exc)
        if errors:
            raise errors[0]


def python(code: str) -> list[str]:
    return [PYTHON, "-c", code]
