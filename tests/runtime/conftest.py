"""Fixtures of the runtime tests: a driver with its own cgroup parent, and a lab that kills what it started."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.runtime import cgroups
from shipyard.runtime.capabilities import capabilities
from shipyard.runtime.process import ProcessDriver
from tests.runtime.lab import Lab


@pytest.fixture(scope="session")
def cgroup_parent() -> Iterator[str]:
    parent = f"shipyard-test-{os.getpid()}"
    yield parent
    layout = capabilities().cgroups
    for root in set(layout.mounts.values()):
        # a failed test may leave an (empty) instance cgroup behind; populated ones stay and fail rmdir
        for leftover in Path(root, parent).glob("*/"):
            if (leftover / "cgroup.procs").exists():
                try:
                    leftover.rmdir()
                except OSError:
                    pass
    cgroups.remove_parent(layout, parent)


@pytest.fixture()
def driver(cgroup_parent: str) -> ProcessDriver:
    return ProcessDriver(cgroup_parent=cgroup_parent)


@pytest.fixture()
def lab(tmp_path: Path, driver: ProcessDriver) -> Iterator[Lab]:
    lab = Lab(tmp_path, driver)
    yield lab
    lab.cleanup()
