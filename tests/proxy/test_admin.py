"""Tests of admin queries: metrics parsing (pure), and against a real Envoy:
per-cluster counts, and draining an endpoint under load without a failed request."""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections.abc import Callable

import pytest

from shipyard.errors import DataPlaneError
from shipyard.proxy.window import WindowStats
from shipyard.proxy.admin import Admin, ClusterStats, _address, parse_prometheus
from shipyard.proxy.envoy import EnvoyHandle
from shipyard.proxy.model import Cluster, DataPlane, Endpoint, Route
from shipyard.proxy.ports import free_port
from shipyard.proxy.publish import publish

from ._support import Backend, Load, get

INF = math.inf


PROMETHEUS = """\
# TYPE envoy_cluster_upstream_rq_completed counter
envoy_cluster_upstream_rq_completed{envoy_cluster_name="catalog_r1"} 15
envoy_cluster_upstream_rq_completed{envoy_cluster_name="catalog_r2"} 2
# TYPE envoy_cluster_upstream_rq_xx counter
envoy_cluster_upstream_rq_xx{envoy_response_code_class="2",envoy_cluster_name="catalog_r1"} 10
envoy_cluster_upstream_rq_xx{envoy_response_code_class="5",envoy_cluster_name="catalog_r1"} 5
# TYPE envoy_cluster_upstream_rq_time histogram
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="catalog_r1",le="0.5"} 3
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="catalog_r1",le="1"} 12
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="catalog_r1",le="+Inf"} 15
envoy_cluster_upstream_rq_time_sum{envoy_cluster_name="catalog_r1"} 12.5
envoy_cluster_upstream_rq_time_count{envoy_cluster_name="catalog_r1"} 15
envoy_cluster_upstream_cx_active{envoy_cluster_name="catalog_r1"} 4
"""


def test_parse_prometheus_per_cluster_by_model_name() -> None:
    stats = parse_prometheus(PROMETHEUS)
    assert stats == {
        "catalog.r1": ClusterStats(15, 5, ((0.5, 3), (1.0, 12), (INF, 15))),
        "catalog.r2": ClusterStats(2, 0, ()),
    }


def test_a_window_is_the_difference_of_two_scrapes() -> None:
    earlier = {"a": ClusterStats(10, 1, ((1, 4), (INF, 10)))}
    later = {
        "a": ClusterStats(30, 2, ((1, 14), (INF, 30))),
        "b": ClusterStats(3, 0, ((1, 3), (INF, 3))),
    }
    differences = {name: stats - earlier.get(name, ClusterStats()) for name, stats in later.items()}
    assert differences == {
        "a": ClusterStats(20, 1, ((1, 10), (INF, 20))),
        "b": ClusterStats(3, 0, ((1, 3), (INF, 3))),
    }
    a = differences["a"]
    assert WindowStats(a.requests, a.errors_5xx, 1.0, a.latency_buckets).quantile(0.5) == 1.0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0100007F:1F90", ("127.0.0.1", 8080)),
        ("00000000000000000000000001000000:0050", ("::1", 80)),
        ("0000000000000000FFFF00000100007F:0050", ("127.0.0.1", 80)),
    ],
)
def test_proc_net_tcp_addresses_decode(text: str, expected: tuple[str, int]) -> None:
    assert _address(text) == (ipaddress.ip_address(expected[0]), expected[1])


def one_service(port: int, cluster: Cluster, retries: int = 2) -> DataPlane:
    return DataPlane(
        routes=(Route("catalog", port, ((cluster.name, 1),), retries=retries),),
        clusters=(cluster,),
        ingress_port=0,
    )


def test_scrape_counts_requests_5xx_and_latency_per_cluster(
    envoy_handle: EnvoyHandle, backends: Callable[..., Backend]
) -> None:
    port = free_port()
    cluster = Cluster("catalog.r1", (backends("b1").endpoint,))
    asyncio.run(publish(one_service(port, cluster), envoy_handle))

    async def measure() -> ClusterStats:
        async with envoy_handle.admin() as admin:
            before = await admin.scrape()
            for path in ["/ok"] * 10 + ["/fail"] * 5:
                await asyncio.to_thread(get, port, path)
            # Counters are live; the histogram arrives at the next stats flush (1 s).
            deadline = time.monotonic() + 3
            while True:
                stats = (await admin.scrape())["catalog.r1"] - before.get("catalog.r1", ClusterStats())
                if stats.latency_buckets and stats.latency_buckets[-1][1] == 15:
                    return stats
                assert time.monotonic() < deadline, f"histogram incomplete: {stats}"
                await asyncio.sleep(0.1)

    stats = asyncio.run(measure())
    assert (stats.requests, stats.errors_5xx) == (15, 5)
    p50 = WindowStats(stats.requests, stats.errors_5xx, 1.0, stats.latency_buckets).quantile(0.5)
    assert p50 is not None and 0 < p50 < 100


def test_wait_drained_lets_an_endpoint_be_stopped_under_load_without_failures(
    envoy_handle: EnvoyHandle, backends: Callable[..., Backend]
) -> None:
    # 50 ms requests and no retries: a request still in flight to b1 when it is killed would fail.
    b1, b2 = backends("b1", delay_ms=50), backends("b2", delay_ms=50)
    port = free_port()
    both = Cluster("catalog.r1", (b1.endpoint, b2.endpoint))
    asyncio.run(publish(one_service(port, both, retries=0), envoy_handle))

    async def remove_b1() -> float:
        async with envoy_handle.admin() as admin:
            await publish(
                one_service(port, Cluster("catalog.r1", (b2.endpoint,)), retries=0), envoy_handle
            )
            return await admin.wait_drained("catalog.r1", b1.endpoint, timeout_s=5)

    with Load(port, concurrency=8) as load:
        load.wait_for(50)
        waited = asyncio.run(remove_b1())
        b1.kill()
        load.wait_for(50)
    assert load.failures == []
    assert load.answers["b1"] > 0 and load.answers["b2"] > 0
    assert waited < 1.0, f"draining took {waited:.2f}s"


def test_wait_drained_refuses_an_endpoint_still_routed(
    envoy_handle: EnvoyHandle, backends: Callable[..., Backend]
) -> None:
    b1 = backends("b1")
    cluster = Cluster("catalog.r1", (b1.endpoint,))
    asyncio.run(publish(one_service(free_port(), cluster), envoy_handle))

    async def wait() -> None:
        async with envoy_handle.admin() as admin:
            await admin.wait_drained("catalog.r1", b1.endpoint, timeout_s=0.1)

    with pytest.raises(DataPlaneError, match="still routed"):
        asyncio.run(wait())


def test_wait_drained_for_a_cluster_waits_for_its_requests(
    envoy_handle: EnvoyHandle, backends: Callable[..., Backend]
) -> None:
    b1 = backends("b1", delay_ms=300)
    port = free_port()
    asyncio.run(publish(one_service(port, Cluster("catalog.r1", (b1.endpoint,))), envoy_handle))

    async def scenario() -> tuple[int, float]:
        async with envoy_handle.admin() as admin:
            request = asyncio.create_task(asyncio.to_thread(get, port))
            while await admin.active_requests("catalog.r1") == 0:
                await asyncio.sleep(0.01)
            waited = await admin.wait_drained("catalog.r1", None, timeout_s=5)
            status, _ = await request
            return status, waited

    status, waited = asyncio.run(scenario())
    assert status == 200 and 0.1 < waited < 1.0


def test_endpoint_loads_report_per_host_connections(
    envoy_handle: EnvoyHandle, backends: Callable[..., Backend]
) -> None:
    b1 = backends("b1")
    port = free_port()
    asyncio.run(publish(one_service(port, Cluster("catalog.r1", (b1.endpoint,))), envoy_handle))
    assert get(port)[0] == 200

    async def loads() -> dict[Endpoint, object]:
        async with Admin(envoy_handle.admin_port, envoy_handle.pid) as admin:
            return dict(await admin.endpoint_loads("catalog.r1"))

    found = asyncio.run(loads())
    assert list(found) == [b1.endpoint]
    assert found[b1.endpoint].cx_active == 1  # type: ignore[attr-defined]
    assert found[b1.endpoint].rq_active == 0  # type: ignore[attr-defined]


def test_a_removed_cluster_finishes_its_requests_and_wait_drained_sees_them(
    envoy_handle: EnvoyHandle, backends: Callable[..., Backend]
) -> None:
    slow, fast = backends("slow", delay_ms=400), backends("fast")
    port = free_port()
    clusters = (Cluster("catalog.r1", (slow.endpoint,)), Cluster("catalog.r2", (fast.endpoint,)))
    asyncio.run(
        publish(
            DataPlane((Route("catalog", port, (("catalog.r1", 1),)),), clusters, 0), envoy_handle
        )
    )

    async def switch_and_remove() -> tuple[tuple[int, str], float]:
        async with envoy_handle.admin() as admin:
            request = asyncio.create_task(asyncio.to_thread(get, port))
            while await admin.active_requests("catalog.r1") == 0:
                await asyncio.sleep(0.01)
            only_r2 = DataPlane((Route("catalog", port, (("catalog.r2", 1),)),), clusters[1:], 0)
            await publish(only_r2, envoy_handle)  # r1 removed with a request in flight
            waited = await admin.wait_drained("catalog.r1", slow.endpoint, timeout_s=5)
            return await request, waited

    answer, waited = asyncio.run(switch_and_remove())
    assert answer == (200, "slow /\n")
    assert 0.1 < waited < 1.0
    assert get(port) == (200, "fast /\n")


def test_counters_survive_an_endpoint_change_of_the_cluster(
    envoy_handle: EnvoyHandle, backends: Callable[..., Backend]
) -> None:
    # Endpoints are static in CDS, so a changed endpoint list replaces the cluster in Envoy; its
    # stats must carry over or a canary window spanning a scale-up would be garbage.
    b1, b2 = backends("b1"), backends("b2")
    port = free_port()
    asyncio.run(publish(one_service(port, Cluster("catalog.r1", (b1.endpoint,))), envoy_handle))
    for _ in range(5):
        get(port)
    both = Cluster("catalog.r1", (b1.endpoint, b2.endpoint))
    asyncio.run(publish(one_service(port, both), envoy_handle))
    get(port)

    async def requests() -> int:
        async with envoy_handle.admin() as admin:
            return (await admin.scrape())["catalog.r1"].requests

    assert asyncio.run(requests()) == 6
