"""Publish a DataPlane to Envoy through its watched files, in a safe order, confirming each step."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.errors import DataPlaneError
from shipyard.proxy.admin import Admin
from shipyard.proxy.model import DataPlane
from shipyard.proxy.resources import (
    BOOTSTRAP_FILE,
    CDS_FILE,
    LDS_FILE,
    RDS_DIR,
    bootstrap,
    discovery_file,
    merge_clusters,
    render,
    serialize,
)
from shipyard.proxy.routes import Json

if TYPE_CHECKING:
    from shipyard.proxy.envoy import EnvoyHandle

POLL_S = 0.005


def prepare_config_dir(config_dir: Path, admin_port: int) -> None:
    """Create the watched directories, the bootstrap, and empty LDS/CDS files if there are none.

    Envoy refuses to start when a watched file is missing; existing files are kept, so a
    restarted Envoy serves the last published data plane at once.
    """
    for sub in ("lds", "cds", RDS_DIR):
        (config_dir / sub).mkdir(parents=True, exist_ok=True)
    boot = serialize(bootstrap(config_dir.resolve(), admin_port))
    if _read_text(config_dir / BOOTSTRAP_FILE) != boot:
        write_atomic(config_dir / BOOTSTRAP_FILE, boot)
    for name in (LDS_FILE, CDS_FILE):
        if not (config_dir / name).exists():
            write_atomic(config_dir / name, serialize(discovery_file([])))


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` by a rename: Envoy reacts to the rename (and never sees half a file)."""
    tmp = path.parent / f".{path.name}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    # The rename itself must survive a crash, or a restarted Envoy could read the old file.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def read_published(config_dir: Path) -> dict[str, Json]:
    """The xDS files currently in `config_dir`, by relative path."""
    files: dict[str, Json] = {}
    paths = [
        config_dir / LDS_FILE,
        config_dir / CDS_FILE,
        *sorted((config_dir / RDS_DIR).glob("*.json")),
    ]
    for path in paths:
        text = _read_text(path)
        if text is not None:
            files[str(path.relative_to(config_dir))] = json.loads(text)
    return files


def _stat_prefix(relative: str) -> str:
    """Where Envoy reports the subscription of this file in /stats."""
    if relative == CDS_FILE:
        return "cluster_manager.cds."
    if relative == LDS_FILE:
        return "listener_manager.lds."
    name = Path(relative).stem
    return f"http.{name}.rds.{name}."


async def publish(plane: DataPlane, envoy: EnvoyHandle, timeout_s: float = 5.0) -> None:
    """Make Envoy serve `plane`, and return once Envoy confirmed every change.

    Order: clusters are added (old ones kept), then routes and listeners change, then clusters
    no route uses any more are removed. A rejected file is restored to its previous content (so
    the files always hold what Envoy accepted) and DataPlaneError names it with Envoy's reason.
    Calls for one Envoy must not overlap.
    """
    config_dir = envoy.config_dir
    desired = render(plane, config_dir.resolve())
    current = read_published(config_dir)
    async with envoy.admin() as admin:
        step = _Publisher(admin, config_dir, envoy.log_path, timeout_s)
        merged = merge_clusters(current.get(CDS_FILE), desired[CDS_FILE])
        await step.apply(CDS_FILE, merged, current.get(CDS_FILE))
        await _publish_routes(step, desired, current)
        await step.apply(CDS_FILE, desired[CDS_FILE], merged)
    for relative in current:
        if relative.startswith(RDS_DIR + "/") and relative not in desired:
            (config_dir / relative).unlink(missing_ok=True)


async def _publish_routes(
    step: _Publisher, desired: dict[str, Json], current: dict[str, Json]
) -> None:
    """Route files, then listeners: an existing listener's routes are confirmed before LDS, a new
    listener's after (Envoy only reads its routes once the listener exists)."""
    existing = {r["name"] for r in current.get(LDS_FILE, {}).get("resources", [])}
    routes = sorted(p for p in desired if p.startswith(RDS_DIR + "/"))
    for relative in routes:
        if Path(relative).stem in existing:
            await step.apply(relative, desired[relative], current.get(relative))
        else:
            step.write(relative, desired[relative])
    await step.apply(LDS_FILE, desired[LDS_FILE], current.get(LDS_FILE))
    await step.wait_listeners_warm()
    for relative in routes:
        if Path(relative).stem not in existing:
            await step.apply(relative, desired[relative], current.get(relative))


class _Publisher:
    """Writes files and confirms them through the admin API."""

    def __init__(self, admin: Admin, config_dir: Path, log_path: Path, timeout_s: float) -> None:
        self.admin = admin
        self.config_dir = config_dir
        self.log_path = log_path
        self.timeout_s = timeout_s

    def write(self, relative: str, content: Json) -> None:
        """Write a file if its content differs from what is on disk."""
        path = self.config_dir / relative
        text = serialize(content)
        if _read_text(path) != text:
            write_atomic(path, text)

    async def apply(self, relative: str, content: Json, previous: Json | None) -> None:
        """Write `content` (if Envoy does not already serve it) and wait for Envoy to take it."""
        prefix = _stat_prefix(relative)
        before = await self._subscription(prefix)
        version = content["version_info"]
        if before.get("version_text") == version and _read_text(
            self.config_dir / relative
        ) == serialize(content):
            return
        log_offset = _size(self.log_path)
        path = self.config_dir / relative
        # Always rename, even if the bytes on disk match: a file Envoy has not taken (a crash
        # between write and confirm) is then offered again.
        write_atomic(path, serialize(content))
        deadline = time.monotonic() + self.timeout_s
        while True:
            now = await self._subscription(prefix)
            if now.get("version_text") == version:
                return
            failed = [
                k
                for k in ("update_rejected", "update_failure")
                if int(now.get(k, 0)) > int(before.get(k, 0))
            ]
            if failed or time.monotonic() > deadline:
                if previous is not None:
                    write_atomic(path, serialize(previous))
                raise DataPlaneError(
                    await self._failure(relative, content, previous, failed, log_offset)
                )
            await asyncio.sleep(POLL_S)

    async def _subscription(self, prefix: str) -> dict[str, str]:
        pattern = "^" + re.escape(prefix) + "(version_text|update_rejected|update_failure)$"
        found = await self.admin.stats(pattern)
        return {name[len(prefix) :]: value for name, value in found.items()}

    async def _failure(
        self,
        relative: str,
        content: Json,
        previous: Json | None,
        failed: list[str],
        log_offset: int,
    ) -> str:
        names = ", ".join(_changed_names(content, previous)) or "none"
        if failed:
            reason = await _rejection_reason(self.log_path, log_offset) or "see the Envoy log"
            what = "rejected" if "update_rejected" in failed else "could not parse"
            return (
                f"Envoy {what} {relative} (changed: {names}): {reason}. It keeps serving the "
                "previous configuration, which was restored on disk."
            )
        return (
            f"Envoy did not confirm {relative} within {self.timeout_s:g}s (changed: {names}); "
            f"is it running and watching {self.config_dir}? "
            f"Log: {' | '.join(_last_lines(self.log_path, log_offset)[-3:])}"
        )

    async def wait_listeners_warm(self) -> None:
        """Wait until no listener is warming (a new one waits for its routes before serving)."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            found = await self.admin.stats(r"^listener_manager\.total_listeners_warming$")
            if int(found.get("listener_manager.total_listeners_warming", "0")) == 0:
                return
            if time.monotonic() > deadline:
                raise DataPlaneError(f"Envoy listeners still warming after {self.timeout_s:g}s")
            await asyncio.sleep(POLL_S)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


async def _rejection_reason(log_path: Path, offset: int) -> str:
    """Envoy's reason for a rejection, from the log written since `offset`.

    Envoy flushes its log every 100 ms (see envoy.command), so the reason may take that long.
    """
    deadline = time.monotonic() + 0.5
    while True:
        lines = [
            line
            for line in _last_lines(log_path, offset)
            if "update rejected" in line or "update failure" in line
        ]
        if lines or time.monotonic() > deadline:
            return lines[-1] if lines else ""
        await asyncio.sleep(0.02)


def _last_lines(log_path: Path, offset: int) -> list[str]:
    """The messages (without Envoy's prefixes) logged since `offset`."""
    try:
        with open(log_path, "rb") as f:
            f.seek(offset)
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return []
    return [line.split("] ", 2)[-1] for line in lines[-20:]]


def _changed_names(content: Json, previous: Json | None) -> list[str]:
    """Names of the resources in `content` that are new or differ from `previous`."""
    before = {r.get("name"): r for r in (previous or {}).get("resources", [])}
    return [r.get("name", "?") for r in content["resources"] if before.get(r.get("name")) != r]
