"""Side effects on instance processes: start one for an instance record, and watch for its exit."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Callable

from shipyard.engine.desired import DesiredState
from shipyard.engine.model import Instance, Release
from shipyard.runtime.base import Handle, InstanceSpec, Limits, RuntimeDriver
from shipyard.data.databases import database_env
from shipyard.secrets.release import release_env

BASE_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "TZ")
ROOTFS_DATA_DIR = "/data"   # where a full image's instances find the service's data dir


def instance_spec(state_dir: Path, desired: DesiredState, release: Release, instance: Instance) -> InstanceSpec:
    """Everything the runtime needs to run one instance of a release."""
    data_dir = state_dir / "data" / instance.service
    run_dir = state_dir / "instances" / instance.id
    env = {key: os.environ[key] for key in BASE_ENV_KEYS if key in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update({
        "HOME": "/tmp",
        "PORT": str(instance.port),
        "SHIPYARD_ENVIRONMENT": desired.environment,
        "SHIPYARD_SERVICE": instance.service,
        "SHIPYARD_VERSION": release.version,
        "SHIPYARD_RELEASE": release.id,
        "SHIPYARD_INSTANCE": instance.id,
        "SHIPYARD_DATA_DIR": str(data_dir),
    })
    if desired.ofrep_url:
        env["SHIPYARD_OFREP_URL"] = desired.ofrep_url  # the environment's feature flags (OFREP)
    if release.rootfs:   # a full image: its own PATH, the data dir at /data
        env["PATH"] = dict(release.env).get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        env["SHIPYARD_DATA_DIR"] = ROOTFS_DATA_DIR
    env.update(dict(release.env))
    if release.secrets:  # decrypted into the instance's environment only: never argv, the store or a log
        env.update(release_env(state_dir, release.id))
    if release.databases:  # the URLs hold the role's password: the same rule
        env.update(database_env(state_dir, release.service, release.databases))
    if release.rootfs:
        return InstanceSpec(
            instance_id=instance.id, service=instance.service, argv=release.command,
            snapshot_dir=state_dir / "snapshots" / release.snapshot, data_dir=data_dir, run_dir=run_dir, env=env,
            limits=Limits(cpu=release.cpu, memory=release.memory), rootfs=True, workdir=release.workdir or "/",
            user=release.user)
    return InstanceSpec(
        instance_id=instance.id, service=instance.service, argv=release.command,
        snapshot_dir=state_dir / "snapshots" / release.snapshot, data_dir=data_dir, run_dir=run_dir, env=env,
        limits=Limits(cpu=release.cpu, memory=release.memory), hidden_dirs=(state_dir,),
    )


def prepare_dirs(spec: InstanceSpec) -> None:
    spec.data_dir.mkdir(parents=True, exist_ok=True)
    spec.run_dir.mkdir(parents=True, exist_ok=True)


class ExitWatcher:
    """Calls back when a watched process exits, via pidfds on the event loop: no polling, no children needed."""

    def __init__(self, on_exit: Callable[[str], None]) -> None:
        self._on_exit = on_exit
        self._fds: dict[str, int] = {}

    def watch(self, instance_id: str, handle: Handle) -> None:
        self.unwatch(instance_id)
        pid = handle.supervisor_pid or handle.pid
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            loop.call_soon(self._on_exit, instance_id)
            return
        self._fds[instance_id] = fd
        loop.add_reader(fd, self._fired, instance_id)

    def _fired(self, instance_id: str) -> None:
        self.unwatch(instance_id)
        self._on_exit(instance_id)

    def unwatch(self, instance_id: str) -> None:
        fd = self._fds.pop(instance_id, None)
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)

    def close(self) -> None:
        for instance_id in list(self._fds):
            self.unwatch(instance_id)


def start_process(driver: RuntimeDriver, spec: InstanceSpec) -> Handle:
    prepare_dirs(spec)
    return driver.start(spec)
