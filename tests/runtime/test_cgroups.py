"""Tests of cgroup detection (pure) and of creating, reading and removing real cgroups."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.runtime import cgroups
from shipyard.runtime.base import EffectiveLimits, Limits
from shipyard.runtime.capabilities import capabilities, usable_cgroups
from shipyard.runtime.cgroups import CgroupLayout, MountedHierarchies, choose_layout, limit_files, parse_mountinfo
from tests.runtime.lab import needs_cgroups, wait_for

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:9 - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
UNIFIED = """\
25 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
26 22 0:24 / /mnt/with\\040space rw - ext4 /dev/sda1 rw
"""


def test_parse_mountinfo_finds_v1_controllers_and_v2_mounts() -> None:
    mounted = parse_mountinfo(HYBRID)
    assert mounted.v1 == {"cpu": "/sys/fs/cgroup/cpu,cpuacct", "memory": "/sys/fs/cgroup/memory",
                          "pids": "/sys/fs/cgroup/pids"}
    assert mounted.v2 == ("/sys/fs/cgroup/unified",)


def test_parse_mountinfo_unescapes_mount_points() -> None:
    text = "26 22 0:24 / /sys/fs/my\\040cgroup rw - cgroup2 cgroup2 rw\n"
    assert parse_mountinfo(text).v2 == ("/sys/fs/my cgroup",)


def test_hybrid_without_v2_controllers_uses_v1() -> None:
    layout = choose_layout(parse_mountinfo(HYBRID), {"/sys/fs/cgroup/unified": []})
    assert layout.version == "v1" and layout.mounts["cpu"] == "/sys/fs/cgroup/cpu,cpuacct"


def test_unified_with_controllers_uses_v2() -> None:
    layout = choose_layout(parse_mountinfo(UNIFIED), {"/sys/fs/cgroup": ["cpuset", "cpu", "io", "memory", "pids"]})
    assert layout == CgroupLayout("v2", {"memory": "/sys/fs/cgroup", "cpu": "/sys/fs/cgroup", "pids": "/sys/fs/cgroup"})


def test_no_cgroups_at_all() -> None:
    assert choose_layout(MountedHierarchies(v1={}, v2=()), {}).version is None
    assert choose_layout(parse_mountinfo(UNIFIED), {"/sys/fs/cgroup": []}).version is None


def test_limit_files_v1_and_v2() -> None:
    limits = Limits(cpu=0.5, memory=64 << 20, pids=100)
    assert limit_files("v1", "memory", limits) == [
        ("memory.limit_in_bytes", str(64 << 20)), ("memory.memsw.limit_in_bytes", str(64 << 20))]
    assert limit_files("v1", "cpu", limits) == [("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", "50000")]
    assert limit_files("v2", "memory", limits) == [("memory.max", str(64 << 20)), ("memory.swap.max", "0")]
    assert limit_files("v2", "cpu", limits) == [("cpu.max", "50000 100000")]
    assert limit_files("v2", "pids", limits) == [("pids.max", "100")]
    unlimited = Limits(cpu=None, memory=None, pids=None)
    assert limit_files("v1", "cpu", unlimited)[1] == ("cpu.cfs_quota_us", "-1")
    assert limit_files("v2", "cpu", unlimited) == [("cpu.max", "max 100000")]
    assert limit_files("v2", "memory", unlimited) == [("memory.max", "max"), ("memory.swap.max", "max")]
    assert limit_files("v2", "cpu", Limits(cpu=0.001, memory=None)) == [("cpu.max", "1000 100000")]


def test_usable_cgroups_explains_what_is_missing(tmp_path: Path) -> None:
    layout, notes = usable_cgroups(CgroupLayout(None, {}))
    assert layout.version is None and notes == ["cgroups not mounted: running without resource limits"]
    layout, notes = usable_cgroups(CgroupLayout("v1", {"memory": str(tmp_path)}))
    assert layout.mounts == {"memory": str(tmp_path)}
    assert notes == ["cgroup controller cpu unavailable: no cpu limit",
                     "cgroup controller pids unavailable: no pids limit"]


@needs_cgroups
def test_create_read_back_join_and_remove(cgroup_parent: str) -> None:
    layout = capabilities().cgroups
    limits = Limits(cpu=0.25, memory=96 << 20, pids=64)
    groups = cgroups.create(layout, cgroup_parent, "unit-create", limits)
    try:
        assert set(groups) == set(layout.mounts)
        assert all(Path(d).is_dir() for d in groups.values())
        assert cgroups.read_limits(groups) == EffectiveLimits(memory_bytes=96 << 20, cpu_cores=0.25, pids=64)
        assert cgroups.oom_kills(groups) == 0
        join = "; ".join(f"echo $$ > {f}" for f in cgroups.procs_files(groups))
        proc = subprocess.Popen(["/bin/sh", "-c", f"{join}; exec sleep 30"])
        try:
            assert wait_for(lambda: cgroups.members(groups) == {proc.pid})
            with pytest.raises(OSError):
                cgroups.remove(groups, timeout=0.05)      # still populated
            assert cgroups.kill(groups) == {proc.pid}
        finally:
            proc.wait()
        cgroups.remove(groups)
        assert not any(Path(d).exists() for d in groups.values())
    finally:
        for directory in groups.values():
            if os.path.isdir(directory):
                os.rmdir(directory)


@needs_cgroups
def test_create_replaces_an_empty_leftover_and_refuses_a_busy_one(cgroup_parent: str) -> None:
    layout = capabilities().cgroups
    first = cgroups.create(layout, cgroup_parent, "unit-leftover", Limits(cpu=None, memory=None))
    again = cgroups.create(layout, cgroup_parent, "unit-leftover", Limits(cpu=1.0, memory=None))
    try:
        assert again == first and cgroups.read_limits(again).cpu_cores == 1.0
        assert cgroups.read_limits(again).memory_bytes is None
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            for procs in cgroups.procs_files(again):
                Path(procs).write_text(str(proc.pid))
            with pytest.raises(OSError):
                cgroups.create(layout, cgroup_parent, "unit-leftover", Limits(cpu=None, memory=None))
        finally:
            proc.kill()
            proc.wait()
    finally:
        cgroups.remove(again)



def test_v2_writes_and_reads_back_against_a_fake_hierarchy(tmp_path: Path) -> None:
    # cgroupfs files are plain files here, so this checks which files are written, not the kernel
    root = tmp_path / "cgroup"
    (root / "shipyard").mkdir(parents=True)
    (root / "cgroup.subtree_control").write_text("cpu\n")
    (root / "shipyard" / "cgroup.subtree_control").write_text("")
    layout = CgroupLayout("v2", {c: str(root) for c in ("memory", "cpu", "pids")})
    groups = cgroups.create(layout, "shipyard", "inst", Limits(cpu=1.5, memory=1 << 30, pids=10))
    instance = root / "shipyard" / "inst"
    assert groups == {"memory": str(instance), "cpu": str(instance), "pids": str(instance)}
    assert (root / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    assert (root / "shipyard" / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    assert (instance / "memory.max").read_text() == str(1 << 30)
    assert not (instance / "memory.swap.max").exists()     # no swap accounting: skipped, not created
    assert cgroups.procs_files(groups) == [str(instance / "cgroup.procs")]
    assert cgroups.read_limits(groups) == EffectiveLimits(memory_bytes=1 << 30, cpu_cores=1.5, pids=10)
    (instance / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert cgroups.oom_kills(groups) == 1
