"""Tests of the machine capability probe."""

from __future__ import annotations

from shipyard.runtime.capabilities import capabilities


def test_capabilities_are_cached_and_consistent() -> None:
    caps = capabilities()
    assert capabilities() is caps
    assert (caps.bwrap is None) == bool(caps.sandbox_notes)
    assert caps.cgroup_version in ("v1", "v2", None)
    assert set(caps.controllers) <= {"memory", "cpu", "pids"}
    if caps.cgroup_version is None:
        assert caps.cgroup_notes
