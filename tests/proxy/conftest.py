"""Fixtures for data plane tests: real Envoys and backend processes, stopped by pid at the end."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipyard.proxy import envoy
from shipyard.proxy.envoy import EnvoyHandle
from shipyard.proxy.ports import free_port

from ._support import BACKEND, Backend, start_envoy


@pytest.fixture
def backends() -> Iterator[Callable[..., Backend]]:
    """Start backends with `backends(id, delay_ms=0)`; all are killed at the end."""
    started: list[Backend] = []

    def start(backend_id: str, delay_ms: float = 0) -> Backend:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, str(BACKEND), str(port), backend_id, str(delay_ms)],
            stdout=subprocess.PIPE,
        )
        backend = Backend(backend_id, port, process)
        started.append(backend)
        assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        return backend

    yield start
    for backend in started:
        backend.kill()


@pytest.fixture
def envoy_handle(tmp_path: Path) -> Iterator[EnvoyHandle]:
    """A running Envoy on an empty config dir; killed by pid at the end, with any restart of it."""
    config_dir = tmp_path / "proxy"
    handle = start_envoy(config_dir)
    yield handle
    current = EnvoyHandle.load(config_dir)
    for h in {handle, current}:
        if h is not None:
            envoy.kill(h)
