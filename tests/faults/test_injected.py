"""Faults injected into a real control plane's collaborators: its runtime driver raises, publishing raises,
Envoy rejects what it is told, its wall clock jumps.

Each test asserts that the loop keeps running (failed passes keep being counted, `/healthz` tells), that
`status` says what is wrong, and that the environment recovers by itself once the fault ends.
"""

from __future__ import annotations

import pytest

import json
import os
import signal
import time as _time
from dataclasses import replace
from typing import Any

from shipyard.engine import reconciler as reconciler_module
from shipyard.proxy.model import DataPlane, Endpoint
from shipyard.runtime.base import Handle, InstanceSpec
from tests.controlplane import http_get, wait_for
from tests.projects import probe_service


# The in-process control plane's listening socket may be collected after its thread ends (a ResourceWarning
# pytest reports on an unrelated test); the process-level tests check that nothing is left running.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


class FaultyDriver:
    """The real driver, except that `start` raises while `failing` is set."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.failing = inner, False

    def start(self, spec: InstanceSpec) -> Handle:
        if self.failing:
            raise RuntimeError("injected: the runtime driver cannot start processes")
        return self.inner.start(spec)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_driver_that_raises_fails_passes_visibly_and_the_instance_comes_back(in_process):
    plane = in_process([probe_service("alpha")])
    driver = FaultyDriver(plane.reconciler.driver)
    plane.reconciler.driver = driver
    plane.start()
    wait_for(lambda: plane.ready("alpha", 1), timeout=30, what="alpha ready")
    driver.failing = True
    [instance] = plane.status()["services"][0]["instances"]
    os.kill(instance["pid"], signal.SIGKILL)
    failed = wait_for(lambda: plane.condition("ReconcileFailed"), timeout=20, what="ReconcileFailed")
    assert "RuntimeError: injected: the runtime driver cannot start processes" in failed["message"]
    ready = next(c for c in plane.status()["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ReconcileFailed")
    # The loop goes on: each restart (with back-off) fails again, and each failed pass is reported.
    # (identical events are counted, not repeated: `count` says how many passes failed alike)
    wait_for(lambda: sum(e.get("count", 1) for e in plane.get("/events") if e["reason"] == "ReconcileFailed") >= 3,
             timeout=20, what="more failed passes")
    assert "injected" in plane.status()["services"][0]["instances"][0]["message"]
    assert plane.healthz()[0] == 200   # passes complete between the failed restarts
    driver.failing = False
    wait_for(lambda: plane.ready("alpha", 1) and plane.condition("ReconcileFailed") is None, timeout=30,
             what="alpha back and the condition cleared")
    events = [e["reason"] for e in plane.get("/events")]
    assert "ReconcileFailed" in events and "ReconcileRecovered" in events


def test_publishing_that_raises_fails_passes_visibly_and_the_data_plane_catches_up(in_process):
    plane = in_process([probe_service("alpha")])
    router = plane.router
    real_sync = router.sync
    failing = {"on": False}

    async def sync(data_plane: DataPlane) -> None:
        if failing["on"]:
            raise KeyError("injected publishing fault")
        await real_sync(data_plane)

    router.sync = sync  # type: ignore[method-assign]
    plane.start()
    wait_for(lambda: plane.ready("alpha", 1), timeout=30, what="alpha ready")
    failing["on"] = True
    plane.post("/scale", {"service": "alpha", "replicas": 2})
    failed = wait_for(lambda: plane.condition("ReconcileFailed"), timeout=20, what="ReconcileFailed")
    assert "KeyError: 'injected publishing fault'" in failed["message"]
    wait_for(lambda: plane.ready("alpha", 2), timeout=30, what="the second instance healed anyway")
    url = plane.endpoint("alpha")
    assert len({_instance(url) for _ in range(20)}) == 1  # Envoy still serves what it was told last
    failing["on"] = False
    wait_for(lambda: plane.condition("ReconcileFailed") is None, timeout=30, what="the condition cleared")
    wait_for(lambda: len({_instance(url) for _ in range(20)}) == 2, timeout=10, what="both instances routed")


def _instance(url: str) -> str:
    return str(json.loads(http_get(url + "/")[2])["instance"])


class ShiftedClock:
    """The wall clock the reconciler reads, `offset` seconds off (the monotonic clock is untouched)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return _time.time() + self.offset

    def __getattr__(self, name: str) -> Any:
        return getattr(_time, name)


def test_the_clock_jumping_back_neither_stops_the_loop_nor_postpones_a_scheduled_restart(in_process, monkeypatch):
    clock = ShiftedClock()
    monkeypatch.setattr(reconciler_module, "time", clock)
    plane = in_process([probe_service("alpha")])
    driver = FaultyDriver(plane.reconciler.driver)
    plane.reconciler.driver = driver
    plane.start()
    wait_for(lambda: plane.status()["services"][0]["rollout"]["status"] == "complete", timeout=30,
             what="alpha deployed")
    driver.failing = True
    os.kill(plane.status()["services"][0]["instances"][0]["pid"], signal.SIGKILL)
    # Failed starts back off 0, 1, 2 s …: wait for a restart scheduled ≥ 1 s ahead, then jump back an hour.
    wait_for(lambda: (lambda i: i["restarts"] >= 2 and i["next_attempt_at"] and i["state"] == "failed")(
        plane.status()["services"][0]["instances"][0]), timeout=20, what="a restart scheduled after back-off")

    def jump() -> None:
        clock.offset = -3600.0
        driver.failing = False
    plane.on_loop(jump)
    wait_for(lambda: plane.ready("alpha", 1), timeout=15, what="the restart at its time despite the jump")
    assert plane.condition("ReconcileFailed") is None
    plane.on_loop(lambda: setattr(clock, "offset", 3600.0))   # and forward: nothing is rolled back or lost
    os.kill(plane.status()["services"][0]["instances"][0]["pid"], signal.SIGKILL)
    wait_for(lambda: plane.ready("alpha", 1), timeout=15, what="a replacement after the forward jump")
    assert plane.healthz()[0] == 200
    rollout = plane.status()["services"][0]["rollout"]
    assert rollout["status"] == "complete", rollout


def test_envoy_rejecting_config_is_reported_while_it_keeps_serving_and_the_next_publish_heals_it(in_process):
    plane = in_process([probe_service("alpha")])
    router = plane.router
    real_sync = router.sync
    corrupt = {"on": False}

    async def sync(data_plane: DataPlane) -> None:
        if corrupt["on"]:   # an address Envoy refuses: the rejection is Envoy's own
            bad = tuple(replace(c, endpoints=(Endpoint("256.0.0.1", 8080),)) for c in data_plane.clusters)
            data_plane = replace(data_plane, clusters=bad)
        await real_sync(data_plane)

    router.sync = sync  # type: ignore[method-assign]
    plane.start()
    wait_for(lambda: plane.ready("alpha", 1), timeout=30, what="alpha ready")
    url = plane.endpoint("alpha")
    corrupt["on"] = True
    plane.post("/scale", {"service": "alpha", "replicas": 2})
    rejected = wait_for(lambda: next((c for c in plane.status()["conditions"] if c["type"] == "DataPlaneInSync"),
                                     None), timeout=20, what="the rejection in status")
    assert rejected["status"] == "False" and "256.0.0.1" in rejected["message"]
    wait_for(lambda: plane.ready("alpha", 2), timeout=30, what="the second instance ready")
    assert len({_instance(url) for _ in range(20)}) == 1   # Envoy serves the last config it accepted
    corrupt["on"] = False
    plane.post("/scale", {"service": "alpha", "replicas": 2})   # nothing new: the next pass publishes again
    wait_for(lambda: not [c for c in plane.status()["conditions"] if c["type"] == "DataPlaneInSync"], timeout=30,
             what="the rejection cleared")
    wait_for(lambda: len({_instance(url) for _ in range(20)}) == 2, timeout=10, what="both instances routed")
