"""Queries to Envoy's admin API: stats, in-flight requests, draining, and per-cluster metrics."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from shipyard.errors import DataPlaneError
from shipyard.proxy.model import Endpoint, envoy_name, model_name

POLL_S = 0.02


@dataclass(frozen=True)
class EndpointLoad:
    """What Envoy has open to one endpoint of a cluster right now."""

    rq_active: int
    cx_active: int


@dataclass(frozen=True)
class ClusterStats:
    """Cumulative counters of one cluster; `later - earlier` is the window between two scrapes
    (proxy/traffic.py keeps the scrapes; proxy/window.py computes rates and quantiles).

    `latency_buckets` are (upper bound in ms, cumulative count) pairs, the last bound +inf.
    """

    requests: int = 0
    errors_5xx: int = 0
    latency_buckets: tuple[tuple[float, int], ...] = ()

    def __sub__(self, earlier: ClusterStats) -> ClusterStats:
        if not earlier.latency_buckets:
            buckets = self.latency_buckets
        elif not self.latency_buckets:
            raise ValueError("the later scrape has no histogram where the earlier one had")
        elif [b for b, _ in self.latency_buckets] != [b for b, _ in earlier.latency_buckets]:
            raise ValueError("histogram bounds changed between the two scrapes")
        else:
            pairs = zip(self.latency_buckets, earlier.latency_buckets, strict=True)
            buckets = tuple((b, n - m) for (b, n), (_, m) in pairs)
        return ClusterStats(
            self.requests - earlier.requests, self.errors_5xx - earlier.errors_5xx, buckets
        )


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}\s+(\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> dict[str, ClusterStats]:
    """Per-cluster stats (by model cluster name) from Envoy's /stats/prometheus output."""
    requests: dict[str, int] = {}
    errors: dict[str, int] = {}
    buckets: dict[str, list[tuple[float, int]]] = {}
    for line in text.splitlines():
        sample = _SAMPLE.match(line)
        if not sample:
            continue
        metric, labels, value = sample[1], dict(_LABEL.findall(sample[2])), sample[3]
        cluster = labels.get("envoy_cluster_name")
        if cluster is None:
            continue
        if metric == "envoy_cluster_upstream_rq_completed":
            requests[cluster] = int(float(value))
        elif (
            metric == "envoy_cluster_upstream_rq_xx"
            and labels.get("envoy_response_code_class") == "5"
        ):
            errors[cluster] = int(float(value))
        elif metric == "envoy_cluster_upstream_rq_time_bucket":
            buckets.setdefault(cluster, []).append((float(labels["le"]), int(float(value))))
    names = set(requests) | set(errors) | set(buckets)
    return {
        model_name(n): ClusterStats(
            requests.get(n, 0), errors.get(n, 0), tuple(sorted(buckets.get(n, [])))
        )
        for n in sorted(names)
    }


class Admin:
    """Envoy's admin API on 127.0.0.1:`port`; `pid` (Envoy's) is needed for `wait_drained`."""

    def __init__(self, port: int, pid: int | None = None, timeout_s: float = 2.0) -> None:
        self.port = port
        self.pid = pid
        self._timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Admin:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def request(self, method: str, path: str) -> str:
        """The body of an admin call; DataPlaneError when Envoy cannot be reached or says no."""
        if self._client is None:
            # trust_env=False: an HTTP(S)_PROXY in the environment must not capture loopback calls.
            # verify=False: plain HTTP only, and it spares loading CA certificates (~50 ms).
            self._client = httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{self.port}",
                timeout=self._timeout_s,
                trust_env=False,
                verify=False,
            )
        try:
            response = await self._client.request(method, path)
        except httpx.HTTPError as exc:
            raise DataPlaneError(
                f"Envoy admin on 127.0.0.1:{self.port} did not answer {method} {path}: {exc!r}; "
                "is Envoy running?"
            ) from exc
        if response.status_code != 200:
            raise DataPlaneError(
                f"Envoy admin {method} {path} answered {response.status_code}: "
                f"{response.text[:200]}"
            )
        return response.text

    async def stats(self, pattern: str) -> dict[str, str]:
        """Stats whose name matches the regex `pattern`, as name -> raw value text."""
        text = await self.request("GET", f"/stats?{httpx.QueryParams(filter=pattern)}")
        result: dict[str, str] = {}
        for line in text.splitlines():
            name, sep, value = line.partition(": ")
            if sep:
                result[name] = value.strip().strip('"')
        return result

    async def ready(self) -> bool:
        """True when Envoy answers /ready with LIVE; False if it does not answer."""
        try:
            return (await self.request("GET", "/ready")).strip() == "LIVE"
        except DataPlaneError:
            return False

    async def server_info(self) -> dict[str, Any]:
        """Envoy's /server_info (version, state, command line options, uptime)."""
        info: dict[str, Any] = json.loads(await self.request("GET", "/server_info"))
        return info

    async def active_requests(self, cluster: str) -> int:
        """Requests in flight to `cluster` (0 when Envoy has no such cluster)."""
        name = f"cluster.{envoy_name(cluster)}.upstream_rq_active"
        found = await self.stats("^" + re.escape(name) + "$")
        return int(found.get(name, "0"))

    async def endpoint_loads(self, cluster: str) -> dict[Endpoint, EndpointLoad]:
        """Active requests and connections per endpoint that `cluster` routes to."""
        data = json.loads(await self.request("GET", "/clusters?format=json"))
        loads: dict[Endpoint, EndpointLoad] = {}
        for status in data.get("cluster_statuses", []):
            if status.get("name") != envoy_name(cluster):
                continue
            for host in status.get("host_statuses", []):
                address = host["address"]["socket_address"]
                # Zero values are left out of proto JSON, and 64-bit ones come as strings.
                stats = {s["name"]: int(s.get("value", 0)) for s in host.get("stats", [])}
                endpoint = Endpoint(address["address"], int(address["port_value"]))
                loads[endpoint] = EndpointLoad(stats.get("rq_active", 0), stats.get("cx_active", 0))
        return loads

    async def connections_to(self, endpoint: Endpoint) -> int:
        """Envoy's TCP connections to `endpoint` that are established or being opened.

        Read from /proc, because Envoy's admin API forgets a removed endpoint at once while its
        in-flight requests are still completing on their connections.
        """
        if self.pid is None:
            raise ValueError("Admin needs Envoy's pid to count its connections")
        return await asyncio.to_thread(_count_connections, self.pid, endpoint)

    async def wait_drained(
        self, cluster: str, endpoint: Endpoint | None, timeout_s: float
    ) -> float:
        """Wait until Envoy has nothing in flight to `endpoint` of `cluster` (or to `cluster`).

        For an endpoint: it must be gone from the cluster (publish first), then Envoy must hold no
        connection to it (idle ones of a removed endpoint are closed at once, busy ones when their
        request completes). For a whole cluster: its `upstream_rq_active` must be 0; it may still
        hold idle connections until it is removed. Returns the seconds waited; DataPlaneError on
        timeout.
        """
        start = time.monotonic()
        while True:
            pending = await self._pending(cluster, endpoint)
            if pending is None:
                return time.monotonic() - start
            if time.monotonic() - start > timeout_s:
                what = (
                    f"endpoint {endpoint} of cluster {cluster}"
                    if endpoint
                    else f"cluster {cluster}"
                )
                raise DataPlaneError(
                    f"{what} not drained after {timeout_s:g}s: {pending}; "
                    "stop it anyway only if losing those requests is acceptable"
                )
            await asyncio.sleep(POLL_S)

    async def _pending(self, cluster: str, endpoint: Endpoint | None) -> str | None:
        """Why `cluster`/`endpoint` is not drained yet, or None if it is."""
        if endpoint is None:
            active = await self.active_requests(cluster)
            return f"{active} requests in flight" if active else None
        if endpoint in await self.endpoint_loads(cluster):
            return "still routed by Envoy (publish a data plane without it first)"
        connections = await self.connections_to(endpoint)
        return f"{connections} connections from Envoy still open" if connections else None

    async def scrape(self) -> dict[str, ClusterStats]:
        """Cumulative stats of every cluster that has served anything, by model cluster name."""
        return parse_prometheus(
            await self.request("GET", "/stats/prometheus?usedonly&filter=" + quote(_SCRAPED, safe=""))
        )


# Only what parse_prometheus reads: a scrape every second stays small with many clusters.
_SCRAPED = r"^cluster\..+\.(upstream_rq_completed|upstream_rq_5xx|upstream_rq_time)$"

# /proc/net/tcp states that mean a request may be in flight: ESTABLISHED, SYN_SENT.
_BUSY_STATES = {"01", "02"}


def _count_connections(pid: int, endpoint: Endpoint) -> int:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        for fd in os.listdir(fd_dir):
            try:
                target = os.readlink(fd_dir / fd)
            except OSError:
                continue  # closed meanwhile
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError as exc:
        raise DataPlaneError(f"cannot read Envoy's sockets (pid {pid}): {exc}") from exc
    wanted = (ipaddress.ip_address(endpoint.host), endpoint.port)
    count = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] in _BUSY_STATES and fields[9] in inodes and _address(fields[2]) == wanted:
                count += 1
    return count


def _address(hex_address: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """Decode a /proc/net/tcp address ("0100007F:1F90"): 32-bit words in host byte order."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(raw)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, int(port, 16)
    return ip, int(port, 16)
