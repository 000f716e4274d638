"""Per-instance cgroups (v1 or v2): detect, create with limits, read back, OOM kills, kill members, remove."""

from __future__ import annotations

import errno
import os
import re
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.runtime.base import EffectiveLimits, Limits

CONTROLLERS = ("memory", "cpu", "pids")
CPU_PERIOD_US = 100_000
MIN_CPU_QUOTA_US = 1_000       # the kernel refuses quotas under 1 ms
UNLIMITED_FLOOR = 1 << 62      # v1 reports "unlimited" as a huge page-aligned number, not "max"


@dataclass(frozen=True)
class CgroupLayout:
    """Where the controllers Shipyard uses are mounted on this machine."""

    version: str | None                                      # "v1", "v2" or None
    mounts: Mapping[str, str] = field(default_factory=dict)  # controller -> hierarchy root dir


@dataclass(frozen=True)
class MountedHierarchies:
    """The cgroup mounts found in a mountinfo file."""

    v1: Mapping[str, str]        # controller -> mount point
    v2: tuple[str, ...]          # cgroup2 mount points


def _unescape(path: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def parse_mountinfo(text: str) -> MountedHierarchies:
    """Find cgroup v1 controller mounts and cgroup2 mounts in /proc/self/mountinfo content."""
    v1: dict[str, str] = {}
    v2: list[str] = []
    for line in text.splitlines():
        before, sep, after = line.partition(" - ")
        if not sep:
            continue
        mount_point = _unescape(before.split()[4])
        fs_type, _source, options = (after.split() + ["", "", ""])[:3]
        if fs_type == "cgroup2":
            v2.append(mount_point)
        elif fs_type == "cgroup":
            for option in options.split(","):
                if option in CONTROLLERS:
                    v1.setdefault(option, mount_point)
    return MountedHierarchies(v1=v1, v2=tuple(v2))


def choose_layout(mounted: MountedHierarchies, v2_controllers: Mapping[str, Iterable[str]]) -> CgroupLayout:
    """Prefer a cgroup2 mount that has our controllers; else the v1 controller mounts; else none."""
    for mount_point in mounted.v2:
        available = set(v2_controllers.get(mount_point, ())) & set(CONTROLLERS)
        if available:
            return CgroupLayout("v2", {c: mount_point for c in CONTROLLERS if c in available})
    if mounted.v1:
        return CgroupLayout("v1", {c: p for c, p in mounted.v1.items() if c in CONTROLLERS})
    return CgroupLayout(None, {})


def detect(mountinfo: str = "/proc/self/mountinfo") -> CgroupLayout:
    """The cgroup layout of this machine, from mountinfo and each cgroup2 root's cgroup.controllers."""
    try:
        mounted = parse_mountinfo(Path(mountinfo).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return CgroupLayout(None, {})
    controllers = {}
    for mount_point in mounted.v2:
        try:
            controllers[mount_point] = _read(Path(mount_point, "cgroup.controllers")).split()
        except OSError:
            controllers[mount_point] = []
    return choose_layout(mounted, controllers)


def _read(path: Path) -> str:
    with open(path, encoding="ascii") as file:
        return file.read().strip()


def _write(path: Path, value: str) -> None:
    with open(path, "w", encoding="ascii") as file:
        file.write(value)


def limit_files(version: str, controller: str, limits: Limits) -> list[tuple[str, str]]:
    """The (file, value) writes that put `limits` in force for one controller, in order."""
    quota = None if limits.cpu is None else max(MIN_CPU_QUOTA_US, round(limits.cpu * CPU_PERIOD_US))
    if version == "v1":
        table = {
            "memory": [("memory.limit_in_bytes", str(limits.memory or -1)),
                       ("memory.memsw.limit_in_bytes", str(limits.memory or -1))],
            "cpu": [("cpu.cfs_period_us", str(CPU_PERIOD_US)), ("cpu.cfs_quota_us", str(quota or -1))],
            "pids": [("pids.max", str(limits.pids or "max"))],
        }
    else:
        memory = str(limits.memory or "max")
        table = {
            "memory": [("memory.max", memory), ("memory.swap.max", "0" if limits.memory else "max")],
            "cpu": [("cpu.max", f"{quota or 'max'} {CPU_PERIOD_US}")],
            "pids": [("pids.max", str(limits.pids or "max"))],
        }
    return table[controller]


OPTIONAL_FILES = frozenset({"memory.memsw.limit_in_bytes", "memory.swap.max"})  # absent without swap accounting


def create(layout: CgroupLayout, parent: str, instance_id: str, limits: Limits) -> dict[str, str]:
    """Create the instance's cgroup(s) under `parent` with `limits` in force; returns controller -> dir.

    Raises OSError (the caller decides whether to run without cgroups); nothing is left behind then.
    """
    made: dict[str, str] = {}
    try:
        for controller, root in layout.mounts.items():
            directory = Path(root, parent, instance_id)
            if str(directory) not in made.values():
                if layout.version == "v2":
                    _enable_v2_controllers(Path(root), parent, list(layout.mounts))
                _fresh_dir(directory)
            made[controller] = str(directory)
            for name, value in limit_files(layout.version or "v1", controller, limits):
                if name in OPTIONAL_FILES and not Path(directory, name).exists():
                    continue
                _write(Path(directory, name), value)
    except OSError:
        remove(made, timeout=0)
        raise
    return made


def _fresh_dir(directory: Path) -> None:
    # a leftover cgroup of the same instance id (never released) is reused only when empty
    if directory.exists():
        if _read(directory / "cgroup.procs"):
            raise OSError(errno.EBUSY, f"cgroup {directory} still has processes")
        directory.rmdir()
    directory.mkdir(parents=True)


def _enable_v2_controllers(root: Path, parent: str, controllers: list[str]) -> None:
    # v2 only offers a controller to a cgroup when every ancestor lists it in cgroup.subtree_control
    wanted = " ".join(f"+{c}" for c in controllers)
    directory = root
    for part in Path(parent).parts:
        enabled = _read(directory / "cgroup.subtree_control").split()
        if not set(controllers) <= set(enabled):
            _write(directory / "cgroup.subtree_control", wanted)
        directory = directory / part
        directory.mkdir(exist_ok=True)
    if not set(controllers) <= set(_read(directory / "cgroup.subtree_control").split()):
        _write(directory / "cgroup.subtree_control", wanted)


def dirs(cgroups: Mapping[str, str]) -> list[str]:
    """The distinct cgroup dirs of an instance (one in v2, one per controller in v1)."""
    return sorted(set(cgroups.values()))


def procs_files(cgroups: Mapping[str, str]) -> list[str]:
    """The files a process writes its pid to, to join the instance's cgroups."""
    return [os.path.join(d, "cgroup.procs") for d in dirs(cgroups)]


def members(cgroups: Mapping[str, str]) -> set[int]:
    """Every pid in the instance's cgroups."""
    pids: set[int] = set()
    for directory in dirs(cgroups):
        try:
            pids.update(int(p) for p in _read(Path(directory, "cgroup.procs")).split())
        except FileNotFoundError:
            continue
    return pids


def kill(cgroups: Mapping[str, str], spare: Iterable[int] = ()) -> set[int]:
    """SIGKILL every member except `spare`; returns the pids signalled."""
    killed = members(cgroups) - set(spare)
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return killed


def oom_kills(cgroups: Mapping[str, str]) -> int:
    """How many processes the kernel OOM-killed in the instance's memory cgroup."""
    directory = cgroups.get("memory")
    if not directory:
        return 0
    for name in ("memory.oom_control", "memory.events"):   # v1, then v2
        try:
            with open(os.path.join(directory, name), encoding="ascii") as file:
                for line in file:
                    if line.startswith("oom_kill "):
                        return int(line.split()[1])
            return 0
        except FileNotFoundError:
            continue
    return 0


def read_limits(cgroups: Mapping[str, str]) -> EffectiveLimits:
    """The limits in force, read back from the cgroup files."""
    return EffectiveLimits(
        memory_bytes=_memory_limit(cgroups.get("memory")),
        cpu_cores=_cpu_limit(cgroups.get("cpu")),
        pids=_number_or_none(_first(cgroups.get("pids"), ["pids.max"])),
    )


def _first(directory: str | None, names: list[str]) -> str | None:
    if not directory:
        return None
    for name in names:
        try:
            return _read(Path(directory, name))
        except FileNotFoundError:
            continue
    return None


def _number_or_none(text: str | None) -> int | None:
    if text is None or text == "max" or int(text) < 0 or int(text) >= UNLIMITED_FLOOR:
        return None
    return int(text)


def _memory_limit(directory: str | None) -> int | None:
    return _number_or_none(_first(directory, ["memory.limit_in_bytes", "memory.max"]))


def _cpu_limit(directory: str | None) -> float | None:
    v2 = _first(directory, ["cpu.max"])
    if v2 is not None:
        quota, period = v2.split()
        return None if quota == "max" else int(quota) / int(period)
    quota_text, period_text = _first(directory, ["cpu.cfs_quota_us"]), _first(directory, ["cpu.cfs_period_us"])
    if quota_text is None or period_text is None or int(quota_text) < 0:
        return None
    return int(quota_text) / int(period_text)


def remove(cgroups: Mapping[str, str], timeout: float = 1.0) -> None:
    """Remove the instance's cgroup dirs; retries while just-killed members finish exiting.

    Raises OSError(EBUSY) when a dir still has processes after `timeout`.
    """
    deadline = time.monotonic() + timeout
    for directory in dirs(cgroups):
        while True:
            try:
                os.rmdir(directory)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)


def remove_parent(layout: CgroupLayout, parent: str) -> None:
    """Remove the (empty) parent cgroup dirs, deepest first; leaves any that still hold instances."""
    for root in sorted(set(layout.mounts.values())):
        parts = Path(parent).parts
        for depth in range(len(parts), 0, -1):
            try:
                os.rmdir(Path(root, *parts[:depth]))
            except OSError:
                break
