"""The Envoy-backed router's traffic history against a real Envoy whose cluster is updated mid-traffic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from shipyard.proxy import envoy
from shipyard.proxy.admin import ClusterStats
from shipyard.proxy.envoy_router import EnvoyRouter
from shipyard.proxy.model import Cluster, DataPlane, Route
from shipyard.proxy.ports import free_port
from shipyard.proxy.traffic import SETTLE_S

from ._support import Backend, get

DEADLINE_S = 10.0


def plane(port: int, backends: list[Backend]) -> DataPlane:
    return DataPlane(routes=(Route("svc", port, (("svc.r1", 1),)),),
                     clusters=(Cluster("svc.r1", tuple(b.endpoint for b in backends)),), ingress_port=0)


async def scrape(router: EnvoyRouter) -> None:
    """Wait for the router's next scrape (one a second at most) to be in its history."""
    history = router.traffic
    before = history.latest.at if history.latest else None
    deadline = time.monotonic() + DEADLINE_S
    while (history.latest.at if history.latest else None) == before:
        assert time.monotonic() < deadline, "no new scrape of Envoy's stats"
        await router.check()
        await asyncio.sleep(0.05)


async def send(port: int, ok: int, failing: int) -> None:
    for path in ["/"] * ok + ["/fail"] * failing:
        await asyncio.to_thread(get, port, path)


async def envoys_own(router: EnvoyRouter) -> ClusterStats:
    """Envoy's counters right now, read beside the router (its history does not see this read)."""
    assert router.handle is not None
    async with router.handle.admin() as admin:
        return (await admin.scrape()).get("svc.r1", ClusterStats())


def test_a_window_across_a_cluster_update_counts_5xx_and_requests_alike(
        tmp_path: Path, backends: Callable[..., Backend]) -> None:
    first, second, port = backends("one"), backends("two"), free_port()
    router = EnvoyRouter(tmp_path / "proxy", ingress_port=0)

    async def run() -> None:
        try:
            await router.sync(plane(port, [first]))
            await scrape(router)
            start = router.traffic.latest.at
            await send(port, 40, 10)
            await scrape(router)
            await router.sync(plane(port, [first, second]))  # an instance became ready: a CDS update
            confirmed = time.time()
            assert "svc.r1" in router.traffic._updates  # the history is told: Envoy's counters may not show it
            # Envoy dropped the old cluster and its 5xx counter with it (envoyproxy/envoy#43984) ...
            deadline = time.monotonic() + DEADLINE_S
            while (await envoys_own(router)).errors_5xx != 0:
                assert time.monotonic() < deadline, "Envoy kept the 5xx counter across the update"
                await asyncio.sleep(0.05)
            await send(port, 40, 10)
            raw = await envoys_own(router)
            assert (raw.requests, raw.errors_5xx) == (100, 10)  # ... while the requests went on: 10 % "failing"
            await scrape(router)  # 5xx 10 → 10: no counter went down, only the router knows of the update
            while time.time() < confirmed + SETTLE_S:
                await asyncio.sleep(0.05)
            await scrape(router)
            await send(port, 40, 10)
            await scrape(router)
            window = router.traffic.window("svc.r1", start)
            assert window is not None and (window.requests, window.errors_5xx) == (100, 20)
        finally:
            handle = router.handle
            await router.shutdown()
            if handle is not None and envoy.is_alive(handle):
                envoy.kill(handle)

    asyncio.run(run())
