"""Fixtures of the fault-injection suite: in-process control planes that are always taken down."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from tests.faults.harness import InProcessPlane


@pytest.fixture
def in_process(tmp_path: Path):
    planes: list[InProcessPlane] = []

    def make(services: list[dict[str, Any]]) -> InProcessPlane:
        plane = InProcessPlane(tmp_path, services)
        planes.append(plane)
        return plane

    make_plane: Callable[[list[dict[str, Any]]], InProcessPlane] = make
    yield make_plane
    for plane in planes:
        plane.close()
