"""Garbage collection: what no live or recent release refers to leaves the store and the state dir.

`decide(records, now)` is pure: given the store's releases and rollouts, the instance records, the
releases the environment runs or asks for, and the snapshot and instance directories on disk (with
their modification times), it says what to delete. `collect(reconciler, now)` is the edge that reads
those records and deletes; the daemon runs it every GC_INTERVAL seconds.

Kept (docs/engine.md, "Garbage collection"):
- per service, the newest KEEP_ROLLOUTS rollout records (`rollout history`; `rollout undo` goes back to a
  release named in them), and always the current one;
- every release that is desired, declared, pinned by `rollout undo`, run by an instance record, the
  target or the previous release of a kept rollout, or was recorded or built again (its snapshot used)
  less than RECENT seconds ago — so a desired state being built and installed keeps what it names;
- the artifact snapshot of every kept release, and any snapshot younger than RECENT;
- the directory (logs) of every instance record, and of any instance that ended less than RECENT ago.
`render --at` reads git (the repository or `<state>/git`), which is never collected; applied revisions'
exports under `<state>/revisions/` are pruned by gitops/snapshots.py (the newest five and the applied one).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.engine.model import Instance, Release, Rollout
from shipyard.state.store import Store

if TYPE_CHECKING:
    from shipyard.engine.reconciler import Reconciler

KEEP_ROLLOUTS = 10
RECENT = 3600.0
GC_INTERVAL = 600.0
FIRST_GC = 60.0


@dataclass(frozen=True)
class Records:
    """What the collector decides on: store rows, in-use release ids and directories with their mtimes."""

    releases: list[tuple[float, Release]]
    rollouts: list[Rollout]
    instances: list[Instance]
    in_use: set[str]
    snapshots: dict[str, float] = field(default_factory=dict)
    instance_dirs: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Garbage:
    releases: tuple[str, ...] = ()
    rollouts: tuple[tuple[str, float], ...] = ()   # (service, started_at)
    snapshots: tuple[str, ...] = ()
    instance_dirs: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.releases or self.rollouts or self.snapshots or self.instance_dirs)

    def summary(self) -> str:
        return (f"removed {len(self.releases)} releases, {len(self.rollouts)} rollout records, "
                f"{len(self.snapshots)} snapshots and {len(self.instance_dirs)} instance directories")


def decide(records: Records, now: float) -> Garbage:
    """What to delete: nothing a kept rollout, an instance, the desired state or a recent change refers to."""
    by_service: dict[str, list[Rollout]] = defaultdict(list)
    for rollout in records.rollouts:
        by_service[rollout.service].append(rollout)
    kept_rollouts: list[Rollout] = []
    old_rollouts: list[Rollout] = []
    for history in by_service.values():
        history.sort(key=lambda r: r.started_at, reverse=True)
        kept_rollouts += history[:KEEP_ROLLOUTS]
        old_rollouts += history[KEEP_ROLLOUTS:]
    referenced = set(records.in_use) | {i.release for i in records.instances}
    referenced |= {r.target for r in kept_rollouts} | {r.previous for r in kept_rollouts if r.previous}
    def recent(created: float, release: Release) -> bool:  # recorded, or its snapshot used, a short while ago
        return now - max(created, records.snapshots.get(release.snapshot, 0.0)) < RECENT

    kept_releases = [release for created, release in records.releases
                     if release.id in referenced or recent(created, release)]
    kept_ids = {release.id for release in kept_releases}
    kept_snapshots = {release.snapshot for release in kept_releases}
    live_dirs = {i.id for i in records.instances}
    return Garbage(
        releases=tuple(sorted(r.id for _, r in records.releases if r.id not in kept_ids)),
        rollouts=tuple(sorted((r.service, r.started_at) for r in old_rollouts)),
        snapshots=tuple(sorted(name for name, mtime in records.snapshots.items()
                               if name not in kept_snapshots and now - mtime >= RECENT)),
        instance_dirs=tuple(sorted(name for name, mtime in records.instance_dirs.items()
                                   if name not in live_dirs and now - mtime >= RECENT)),
    )


def in_use(reconciler: "Reconciler") -> tuple[set[str], list[Instance]]:
    """The releases the environment runs, asks for, pins or rolls between, and its instance records.

    Read on the event loop: the reconciler's fields are only touched there.
    """
    used: set[str] = set()
    for state in (reconciler.desired, reconciler.declared):
        if state is not None:
            used |= {service.release.id for service in state.services.values()}
    used |= {pin.release for pin in reconciler.pins.values()} | {pin.declared for pin in reconciler.pins.values()}
    used |= {rollout.target for rollout in reconciler.rollouts.values()}
    used |= {rollout.previous for rollout in reconciler.rollouts.values() if rollout.previous}
    return used, list(reconciler.instances.values())


def read_records(store: Store, state_dir: Path, used: set[str], instances: list[Instance]) -> Records:
    """The store's rows and the state dir's directories (off the event loop)."""
    return Records(releases=store.all_releases(), rollouts=store.all_rollouts(), instances=instances, in_use=used,
                   snapshots=_mtimes(state_dir / "snapshots"), instance_dirs=_mtimes(state_dir / "instances"))


def remove(store: Store, state_dir: Path, garbage: Garbage) -> None:
    """Delete GARBAGE: store rows first (so nothing refers to a directory about to go), then directories."""
    store.delete_rollouts(list(garbage.rollouts))
    store.delete_releases(list(garbage.releases))
    for name in garbage.snapshots:
        _remove_tree(state_dir / "snapshots" / name)
    for name in garbage.instance_dirs:
        _remove_tree(state_dir / "instances" / name)


async def collect(reconciler: "Reconciler", now: float | None = None) -> Garbage:
    """One collection: decided on the event loop, directories removed in a thread; an event says what went."""
    used, instances = in_use(reconciler)
    records = await asyncio.to_thread(read_records, reconciler.store, reconciler.state_dir, used, instances)
    garbage = decide(records, time.time() if now is None else now)
    if garbage:
        await asyncio.to_thread(remove, reconciler.store, reconciler.state_dir, garbage)
        reconciler.event("Normal", "environment", "GarbageCollected", garbage.summary())
    return garbage


async def collect_periodically(reconciler: "Reconciler", interval: float = GC_INTERVAL,
                               first: float = FIRST_GC) -> None:
    """Collect FIRST seconds after start, then every INTERVAL; a failure is an event, not the end."""
    delay = first
    while True:
        await asyncio.sleep(delay)
        delay = interval
        try:
            await collect(reconciler)
        except Exception as exc:  # noqa: BLE001 - the next round tries again
            reconciler.event("Warning", "environment", "GarbageCollectionFailed", str(exc))


def _mtimes(directory: Path) -> dict[str, float]:
    try:
        return {entry.name: entry.stat(follow_symlinks=False).st_mtime for entry in os.scandir(directory)
                if entry.is_dir(follow_symlinks=False)}
    except FileNotFoundError:
        return {}


def _remove_tree(path: Path) -> None:
    """rmtree, after making every directory writable (snapshots may be read-only)."""
    for root, dirs, _ in os.walk(path):
        for name in [".", *dirs]:
            directory = os.path.join(root, name)
            if not os.path.islink(directory):
                os.chmod(directory, os.stat(directory).st_mode | stat.S_IWUSR | stat.S_IXUSR)
    shutil.rmtree(path, ignore_errors=True)
