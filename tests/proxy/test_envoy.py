"""Tests of the Envoy process: restart, surviving its starter, adoption, failures under load,
graceful stop."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.errors import DataPlaneError
from shipyard.proxy import envoy
from shipyard.proxy.envoy import EnvoyHandle
from shipyard.proxy.model import Cluster, DataPlane, Route
from shipyard.proxy.ports import free_port
from shipyard.proxy.publish import publish

from ._support import Backend, Load, get


def service(port: int, *backends: Backend, retries: int = 2) -> DataPlane:
    return DataPlane(
        routes=(Route("catalog", port, (("catalog.r1", 1),), retries=retries),),
        clusters=(Cluster("catalog.r1", tuple(b.endpoint for b in backends)),),
        ingress_port=0,
    )


def test_a_killed_envoy_restarts_on_its_config_and_serves_within_a_second(
    envoy_handle: EnvoyHandle, backends: Callable[..., Backend]
) -> None:
    b1 = backends("b1")
    port = free_port()
    asyncio.run(publish(service(port, b1), envoy_handle))
    envoy.kill(envoy_handle)
    assert not envoy.is_alive(envoy_handle)
    started = time.monotonic()
    handle = asyncio.run(
        envoy.start(
            envoy_handle.config_dir,
            envoy_handle.admin_port,
            envoy_handle.base_id,
            envoy_handle.log_path,
        )
    )
    status = get(port)
    serving_after = time.monotonic() - started
    print(f"restart: serving again {serving_after * 1000:.0f} ms after start() was called")
    assert status == (200, "b1 /\n")
    assert serving_after < 1.0
    assert EnvoyHandle.load(envoy_handle.config_dir) == handle


STARTER = """
import asyncio, sys, time
from pathlib import Path
import pytest

from shipyard.errors import DataPlaneError
from shipyard.proxy import envoy
config_dir, port = Path(sys.argv[1]), int(sys.argv[2])
asyncio.run(envoy.start(config_dir, port, port, config_dir / "envoy.log"))
print("started", flush=True)
time.sleep(60)
"""


def test_envoy_outlives_the_process_that_started_it_and_is_adopted(
    tmp_path: Path, backends: Callable[..., Backend]
) -> None:
    b1, b2 = backends("b1"), backends("b2")
    config_dir, admin_port, port = tmp_path / "proxy", free_port(), free_port()
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(config_dir), str(admin_port)], stdout=subprocess.PIPE
    )
    handle = None
    try:
        assert starter.stdout is not None and starter.stdout.readline() == b"started\n"
        handle = EnvoyHandle.load(config_dir)
        assert handle is not None
        starter.send_signal(signal.SIGKILL)  # the control plane dies without a word
        starter.wait(5)
        time.sleep(0.3)  # Envoy would be SIGTERMed at once if it were still the starter's child
        assert envoy.is_alive(handle)
        assert asyncio.run(envoy.adopt(handle))
        asyncio.run(publish(service(port, b1), handle))
        assert get(port) == (200, "b1 /\n")
        asyncio.run(publish(service(port, b2), handle))
        assert get(port) == (200, "b2 /\n")
    finally:
        if handle is not None:
            envoy.kill(handle)
        starter.kill()
        starter.wait(5)
        assert starter.stdout is not None
        starter.stdout.close()


def test_adopt_refuses_anything_but_that_envoy(envoy_handle: EnvoyHandle) -> None:
    assert asyncio.run(envoy.adopt(envoy_handle))
    assert asyncio.run(envoy.ready(envoy_handle))
    reused_pid = dataclasses.replace(envoy_handle, start_time=envoy_handle.start_time + 1)
    assert not asyncio.run(envoy.adopt(reused_pid))
    me = os.getpid()
    other_process = dataclasses.replace(
        envoy_handle, pid=me, start_time=envoy.start_time_of(me) or 0
    )
    assert envoy.is_alive(other_process) and not asyncio.run(envoy.adopt(other_process))
    other_config = dataclasses.replace(
        envoy_handle, config_dir=envoy_handle.config_dir / "elsewhere"
    )
    assert not asyncio.run(envoy.adopt(other_config))


def test_a_backend_killed_under_get_load_fails_no_request(
    envoy_handle: EnvoyHandle, backends: Callable[..., Backend]
) -> None:
    b1, b2 = backends("b1", delay_ms=5), backends("b2", delay_ms=5)
    port = free_port()
    asyncio.run(publish(service(port, b1, b2), envoy_handle))
    with Load(port, concurrency=8) as load:
        load.wait_for(200)
        b1.kill()  # in-flight requests are reset, new connections refused
        load.wait_for(400)
    assert load.failures == []
    assert load.answers["b1"] > 0 and load.answers["b2"] > load.answers["b1"]

    async def ejections() -> dict[str, str]:
        async with envoy_handle.admin() as admin:
            return await admin.stats(
                r"^cluster\.catalog_r1\.outlier_detection\.ejections_enforced_total$"
            )

    assert (
        int(
            asyncio.run(ejections())[
                "cluster.catalog_r1.outlier_detection.ejections_enforced_total"
            ]
        )
        >= 1
    )


def test_graceful_stop_lets_in_flight_requests_finish(
    envoy_handle: EnvoyHandle, backends: Callable[..., Backend]
) -> None:
    b1 = backends("b1", delay_ms=300)
    port = free_port()
    asyncio.run(publish(service(port, b1), envoy_handle))
    result: list[tuple[int, str]] = []
    request = threading.Thread(target=lambda: result.append(get(port)))
    request.start()
    time.sleep(0.1)
    started = time.monotonic()
    asyncio.run(envoy.stop(envoy_handle, drain_s=3))
    request.join(5)
    assert result == [(200, "b1 /\n")]
    assert not envoy.is_alive(envoy_handle)
    assert time.monotonic() - started < 2
    assert not Path(f"/dev/shm/envoy_shared_memory_{envoy_handle.base_id * 10}").exists()


def test_a_second_envoy_on_the_same_admin_port_fails_with_the_reason(
    envoy_handle: EnvoyHandle, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    with pytest.raises(DataPlaneError, match="Envoy exited while starting: .*(in use|bind)"):
        asyncio.run(
            envoy.start(other, envoy_handle.admin_port, envoy_handle.base_id + 1, other / "log")
        )
    assert envoy.is_alive(envoy_handle)
