"""Tests of publishing data planes to a real Envoy: traffic, confirmed switches, rejections,
removals and ingress routing."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shipyard.errors import DataPlaneError
from shipyard.proxy.envoy import EnvoyHandle
from shipyard.proxy.model import (
    Cluster,
    CookieMatch,
    DataPlane,
    Endpoint,
    HeaderMatch,
    IngressRule,
    Route,
)
from shipyard.proxy.ports import free_port
from shipyard.proxy.publish import publish
from shipyard.proxy.resources import CDS_FILE, LDS_FILE

from ._support import Backend, get


def answers(port: int, n: int = 20, **kwargs: str) -> Counter[str]:
    """Which backends answered `n` requests (by id), or the status of those that failed."""
    result: Counter[str] = Counter()
    for _ in range(n):
        status, body = get(port, **kwargs)
        result[body.split()[0] if status == 200 else f"HTTP {status}"] += 1
    return result


def canary(
    port: int, b1: Backend, b2: Backend, weights: tuple[int, int], **extra: object
) -> DataPlane:
    return DataPlane(
        routes=(Route("catalog", port, (("catalog.r1", weights[0]), ("catalog.r2", weights[1]))),),
        clusters=(Cluster("catalog.r1", (b1.endpoint,)), Cluster("catalog.r2", (b2.endpoint,))),
        ingress_port=0,
        **extra,  # type: ignore[arg-type]
    )


def test_published_routes_reach_the_backends(
    envoy_handle: EnvoyHandle, backends: Callable[..., Backend]
) -> None:
    b1, b2 = backends("b1"), backends("b2")
    port = free_port()
    plane = DataPlane(
        routes=(Route("catalog", port, (("catalog.r1", 1),)),),
        clusters=(Cluster("catalog.r1", (b1.endpoint, b2.endpoint)),),
        ingress_port=0,
    )
    asyncio.run(publish(plane, envoy_handle))
    assert answers(port, 40).keys() == {"b1", "b2"}
    assert get(port, "/x", method="POST") == (200, "b1 /x\n") or get(port, "/x")[0] == 200


def test_weight_switches_are_confirmed_before_publish_returns(
    envoy_handle: EnvoyHandle, backends: Callable[..., Backend]
) -> None:
    b1, b2 = backends("b1"), backends("b2")
    port = free_port()
    asyncio.run(publish(canary(port, b1, b2, (0, 100)), envoy_handle))
    assert answers(port) == {"b2": 20}
    asyncio.run(publish(canary(port, b1, b2, (100, 0)), envoy_handle))
    assert answers(port) == {"b1": 20}  # not a single answer from the old split
    asyncio.run(publish(canary(port, b1, b2, (0, 0)), envoy_handle))
    assert answers(port, 3) == {"HTTP 503": 3}

    async def versions() -> dict[str, str]:
        async with envoy_handle.admin() as admin:
            return await admin.stats("version_text")

    on_disk = json.loads((envoy_handle.config_dir / "rds/svc_catalog.json").read_text())
    assert (
        asyncio.run(versions())["http.svc_catalog.rds.svc_catalog.version_text"]
        == on_disk["version_info"]
    )


def test_publishing_the_same_plane_again_changes_nothing(
    envoy_handle: EnvoyHandle, backends: Callable[..., Backend]
) -> None:
    b1, b2 = backends("b1"), backends("b2")
    plane = canary(free_port(), b1, b2, (50, 50))
    asyncio.run(publish(plane, envoy_handle))
    files = sorted(envoy_handle.config_dir.glob("*/*.json"))
    mtimes = [f.stat().st_mtime_ns for f in files]
    asyncio.run(publish(plane, envoy_handle))
    assert [
        f.stat().st_mtime_ns for f in sorted(envoy_handle.config_dir.glob("*/*.json"))
    ] == mtimes


def test_a_rejected_cluster_is_named_and_the_old_config_keeps_serving(
    envoy_handle: EnvoyHandle, backends: Callable[..., Backend]
) -> None:
    b1, b2 = backends("b1"), backends("b2")
    port = free_port()
    good = canary(port, b1, b2, (100, 0))
    asyncio.run(publish(good, envoy_handle))
    cds_before = (envoy_handle.config_dir / CDS_FILE).read_text()
    bad = DataPlane(
        routes=(Route("catalog", port, (("catalog.r1", 0), ("catalog.r2", 100))),),
        clusters=(
            Cluster("catalog.r1", (b1.endpoint,)),
            Cluster("catalog.r2", (Endpoint("localhost", b2.port),)),
        ),
        ingress_port=0,
    )
    with pytest.raises(
        DataPlaneError, match=r"rejected cds/clusters\.json .*catalog_r2.*malformed IP address"
    ):
        asyncio.run(publish(bad, envoy_handle))
    assert answers(port) == {"b1": 20}
    assert (envoy_handle.config_dir / CDS_FILE).read_text() == cds_before


def test_a_listener_on_a_taken_port_is_rejected_and_the_others_keep_serving(
    envoy_handle: EnvoyHandle, backends: Callable[..., Backend]
) -> None:
    b1, b2 = backends("b1"), backends("b2")
    port = free_port()
    asyncio.run(publish(canary(port, b1, b2, (100, 0)), envoy_handle))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        plane = DataPlane(
            routes=(
                Route("catalog", port, (("catalog.r1", 100),)),
                Route("orders", taken.getsockname()[1], (("catalog.r2", 100),)),
            ),
            clusters=(Cluster("catalog.r1", (b1.endpoint,)), Cluster("catalog.r2", (b2.endpoint,))),
            ingress_port=0,
        )
        with pytest.raises(DataPlaneError, match=r"rejected lds/listeners\.json .*svc_orders"):
            asyncio.run(publish(plane, envoy_handle))
    assert answers(port) == {"b1": 20}
    listeners = json.loads((envoy_handle.config_dir / LDS_FILE).read_text())["resources"]
    assert [x["name"] for x in listeners] == ["svc_catalog"]


def test_removed_services_and_clusters_are_gone(
    envoy_handle: EnvoyHandle, backends: Callable[..., Backend]
) -> None:
    b1, b2 = backends("b1"), backends("b2")
    catalog, orders = free_port(), free_port()
    both = DataPlane(
        routes=(
            Route("catalog", catalog, (("catalog.r1", 1),)),
            Route("orders", orders, (("orders.r1", 1),)),
        ),
        clusters=(Cluster("catalog.r1", (b1.endpoint,)), Cluster("orders.r1", (b2.endpoint,))),
        ingress_port=0,
    )
    asyncio.run(publish(both, envoy_handle))
    assert answers(orders, 2) == {"b2": 2}
    only_catalog = DataPlane(routes=both.routes[:1], clusters=both.clusters[:1], ingress_port=0)
    asyncio.run(publish(only_catalog, envoy_handle))
    with pytest.raises(ConnectionRefusedError):
        get(orders)
    assert not (envoy_handle.config_dir / "rds/svc_orders.json").exists()

    async def clusters() -> str:
        async with envoy_handle.admin() as admin:
            return await admin.request("GET", "/clusters")

    assert "orders_r1::" not in asyncio.run(clusters())
    assert answers(catalog, 2) == {"b1": 2}


def test_ingress_routes_by_host_and_path_prefix(
    envoy_handle: EnvoyHandle, backends: Callable[..., Backend]
) -> None:
    api, shop, static = backends("api"), backends("shop"), backends("static")
    ingress = free_port()
    plane = DataPlane(
        routes=tuple(Route(b.id, free_port(), ((f"{b.id}.r1", 1),)) for b in (api, shop, static)),
        clusters=tuple(Cluster(f"{b.id}.r1", (b.endpoint,)) for b in (api, shop, static)),
        ingress_port=ingress,
        ingress=(
            IngressRule("api", "shop.test", "/api"),
            IngressRule("shop", "shop.test", None),
            IngressRule("static", None, "/static/"),
        ),
    )
    asyncio.run(publish(plane, envoy_handle))
    cases = {
        ("shop.test", "/api/items"): "api",
        ("shop.test:8080", "/api"): "api",
        ("shop.test", "/apix"): "shop",
        ("shop.test", "/"): "shop",
        ("shop.test", "/static/a.css"): "static",
        ("other.test", "/static/a.css"): "static",
        ("other.test", "/api/items"): "HTTP 404",
    }
    seen = {case: answers(ingress, 1, host=case[0], path=case[1]) for case in cases}
    assert {case: next(iter(c)) for case, c in seen.items()} == cases
    # The service endpoints serve the same clusters.
    assert answers(plane.routes[0].port, 1) == {"api": 1}


def test_header_prefix_regex_and_cookie_matches_reach_the_match_cluster(
    envoy_handle: EnvoyHandle, backends: Callable[..., Backend]
) -> None:
    b1, b2 = backends("b1"), backends("b2")
    port = free_port()
    matches = (
        HeaderMatch("X-Beta", "team-", "prefix"),
        HeaderMatch("x-user", r"user-\d+", "regex"),
        CookieMatch("group", "b"),
    )
    plane = canary(port, b1, b2, (100, 0))
    plane = DataPlane(
        routes=(Route("catalog", port, plane.routes[0].weights, "catalog.r2", matches),),
        clusters=plane.clusters,
        ingress_port=0,
    )
    asyncio.run(publish(plane, envoy_handle))
    cases: dict[tuple[tuple[str, str], ...], str] = {
        (("x-beta", "team-a"),): "b2",
        (("x-beta", "TEAM-a"),): "b1",  # values are case-sensitive
        (("x-beta", "my-team-a"),): "b1",
        (("x-user", "user-42"),): "b2",
        (("x-user", "user-42x"),): "b1",  # the regex must match the whole value
        (("cookie", "a=1; group=b"),): "b2",
        (("cookie", "group=bb"),): "b1",
        (): "b1",
    }
    for _ in range(2):  # idempotent (GET) and other methods have routes of their own
        for method in ("GET", "POST"):
            seen = {
                headers: get(port, method=method, headers=dict(headers))[1].split()[0]
                for headers in cases
            }
            assert seen == cases, method


class _Recorder(BaseHTTPRequestHandler):
    """Answers "mirror" and records (path, host) of every request it gets."""

    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        _Recorder.seen.append((self.path, self.headers.get("host", "")))
        body = b"mirror\n"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def recorder() -> Iterator[Endpoint]:
    """A backend in this process that records what it was sent; its endpoint."""
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Endpoint("127.0.0.1", server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join()


def test_mirroring_sends_a_copy_while_the_client_gets_the_primarys_answer(
    envoy_handle: EnvoyHandle, backends: Callable[..., Backend], recorder: Endpoint
) -> None:
    b1 = backends("b1")
    port = free_port()
    plane = DataPlane(
        routes=(
            Route(
                "catalog",
                port,
                (("catalog.r1", 100),),
                mirror_cluster="catalog.r2",
                mirror_percent=100,
            ),
        ),
        clusters=(Cluster("catalog.r1", (b1.endpoint,)), Cluster("catalog.r2", (recorder,))),
        ingress_port=0,
    )
    asyncio.run(publish(plane, envoy_handle))
    paths = [f"/mirrored/{i}" for i in range(5)]
    assert [get(port, path) for path in paths] == [(200, f"b1 {path}\n") for path in paths]
    deadline = time.monotonic() + 5
    while len(_Recorder.seen) < len(paths) and time.monotonic() < deadline:
        time.sleep(0.02)  # mirrored requests are sent alongside, not before the answer
    assert sorted(path for path, _ in _Recorder.seen) == paths
    # Envoy marks the copy: "-shadow" is added to the Host of a mirrored request.
    assert {host for _, host in _Recorder.seen} == {f"127.0.0.1-shadow:{port}"}
