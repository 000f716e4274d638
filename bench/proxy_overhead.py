"""What Shipyard's Envoy endpoint costs: throughput and latency against nginx and a minimal Envoy.

Run: .venv/bin/python bench/proxy_overhead.py [--rounds 3] [--seconds 4] [--connections 16]

Measures, with the same load generator (wrk, 1 thread) and the same backend (nginx, 1 worker,
a static 3-byte response), rounds interleaved and medians reported:
  1. straight to the nginx backend
  2. through nginx as a plain reverse proxy (1 worker, upstream keep-alive)
  3. through a minimal hand-written Envoy (static listener -> cluster, nothing else)
  4. through a Shipyard service endpoint (the config resources.py renders for one route,
     one cluster, one endpoint, published to a detached Envoy)
Both Envoys run with --concurrency 1, like the nginx proxy's single worker. Target: 4 >= 0.85 x 3.
Needs wrk (apt-get install wrk) and nginx.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from shipyard.proxy import envoy
from shipyard.proxy.model import Cluster, DataPlane, Endpoint, Route
from shipyard.proxy.ports import free_port
from shipyard.proxy.publish import publish

NGINX_BACKEND = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fcgi;
  uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  keepalive_requests 1000000;
  {body}
}}
"""
BACKEND_SERVER = 'server {{ listen 127.0.0.1:{port}; location / {{ return 200 "ok\\n"; }} }}'
PROXY_SERVER = """
upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; keepalive_requests 1000000; }}
server {{ listen 127.0.0.1:{port};
  location / {{ proxy_pass http://backend; proxy_http_version 1.1;
               proxy_set_header Connection ""; }} }}
"""
MINIMAL_ENVOY = """
admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}}}
static_resources:
  listeners:
  - name: minimal
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: minimal
          route_config:
            virtual_hosts:
            - {{name: all, domains: ["*"], routes: [{{match: {{prefix: /}}, route: {{cluster: backend}}}}]}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: backend
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {backend}}}}}}}
"""  # noqa: E501


@dataclass(frozen=True)
class Result:
    """One wrk run; `cpu_us` is the CPU the proxy process tree spent per request."""

    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float = 0.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its children (nginx's workers), in seconds."""
    pids = [pid] + [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    ticks = 0
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def measure(port: int, pid: int, seconds: float, connections: int) -> Result:
    """One wrk run against `port`, with the CPU used meanwhile by process `pid` (the proxy)."""
    before = cpu_seconds(pid)
    result = wrk(port, seconds, connections)
    spent = cpu_seconds(pid) - before
    return Result(result.rps, result.p50_ms, result.p99_ms, spent / (result.rps * seconds) * 1e6)


def wrk(port: int, seconds: float, connections: int) -> Result:
    """Run wrk (1 thread) against 127.0.0.1:port and parse requests/s and latency quantiles."""
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--latency",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if errors:
        raise SystemExit(f"wrk saw errors on port {port}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    return Result(rps, _latency(out, "50%"), _latency(out, "99%"))


def _latency(out: str, quantile: str) -> float:
    match = re.search(rf"^\s+{quantile}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if match is None:
        raise SystemExit(f"cannot read the {quantile} latency from wrk:\n{out}")
    return float(match[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match[2]]


def start_nginx(directory: Path, server: str) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True)
    conf = directory / "nginx.conf"
    conf.write_text(NGINX_BACKEND.format(dir=directory, body=server))
    return subprocess.Popen(
        ["nginx", "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(conf)]
    )


def start_minimal_envoy(directory: Path, backend: int) -> tuple[subprocess.Popen[bytes], int]:
    port, admin = free_port(), free_port()
    directory.mkdir(parents=True)
    config = directory / "minimal.yaml"
    config.write_text(MINIMAL_ENVOY.format(admin=admin, port=port, backend=backend))
    command = [str(envoy.envoy_binary()), "-c", str(config), "--concurrency", "1"]
    command += ["--base-id", str(admin), "--log-level", "warning"]
    command += ["--log-path", str(directory / "envoy.log")]
    return subprocess.Popen(command), port


def wait_serving(port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"nothing serves on port {port}: {exc}") from exc
            time.sleep(0.05)


async def start_shipyard(directory: Path, backend: int) -> tuple[envoy.EnvoyHandle, int]:
    admin, port = free_port(), free_port()
    handle = await envoy.start(directory, admin, admin, directory / "envoy.log", concurrency=1)
    plane = DataPlane(
        routes=(Route("bench", port, (("bench.r1", 100),)),),
        clusters=(Cluster("bench.r1", (Endpoint("127.0.0.1", backend),)),),
        ingress_port=0,
    )
    await publish(plane, handle)
    return handle, port


def report(results: dict[str, list[Result]]) -> None:
    medians = {
        name: Result(
            *(
                statistics.median(getattr(r, f) for r in runs)
                for f in ("rps", "p50_ms", "p99_ms", "cpu_us")
            )
        )
        for name, runs in results.items()
    }
    print(
        f"\n{'target':32} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'CPU us/req':>10}"
        "   (medians; CPU of the proxy, or of the backend for 1; runs: req/s)"
    )
    for name, m in medians.items():
        runs = " ".join(f"{r.rps:.0f}" for r in results[name])
        print(f"{name:32} {m.rps:8.0f} {m.p50_ms:7.3f} {m.p99_ms:7.3f} {m.cpu_us:10.1f}   {runs}")
    direct, nginx, minimal, shipyard = medians.values()
    ratio = shipyard.rps / minimal.rps
    verdict = "met" if ratio >= 0.85 else "MISSED"
    print(
        f"\n(4)/(3) throughput: {ratio:.2f}  (target >= 0.85: {verdict}); "
        f"CPU per request (4)/(3): {shipyard.cpu_us / minimal.cpu_us:.2f}"
    )
    print(f"(3)/(2) throughput: {minimal.rps / nginx.rps:.2f}")
    for name, m in (
        ("nginx proxy", nginx),
        ("minimal Envoy", minimal),
        ("Shipyard endpoint", shipyard),
    ):
        print(
            f"added p50 latency, {name}: {m.p50_ms - direct.p50_ms:+.3f} ms; "
            f"p99: {m.p99_ms - direct.p99_ms:+.3f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            raise SystemExit(
                f"error: {tool} is not installed (apt-get install {tool}); this bench needs it"
            )
    print(
        f"load generator: wrk, 1 thread, {args.connections} connections, {args.seconds:g} s runs, "
        f"{args.rounds} interleaved rounds"
    )
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        run(Path(tmp), args)


def run(tmp: Path, args: argparse.Namespace) -> None:
    backend_port, proxy_port = free_port(), free_port()
    processes: list[subprocess.Popen[bytes]] = []
    handle = None
    try:
        processes.append(start_nginx(tmp / "backend", BACKEND_SERVER.format(port=backend_port)))
        processes.append(
            start_nginx(tmp / "proxy", PROXY_SERVER.format(port=proxy_port, backend=backend_port))
        )
        minimal, minimal_port = start_minimal_envoy(tmp / "minimal", backend_port)
        processes.append(minimal)
        handle, shipyard_port = asyncio.run(start_shipyard(tmp / "shipyard", backend_port))
        targets = {
            "(1) nginx backend, direct": (backend_port, processes[0].pid),
            "(2) nginx reverse proxy": (proxy_port, processes[1].pid),
            "(3) minimal Envoy": (minimal_port, minimal.pid),
            "(4) Shipyard endpoint (Envoy)": (shipyard_port, handle.pid),
        }
        for port, _ in targets.values():
            wait_serving(port)
            wrk(port, 1, args.connections)  # warm up connections and caches
        results: dict[str, list[Result]] = {name: [] for name in targets}
        for round_number in range(args.rounds):
            for name, (port, pid) in targets.items():
                results[name].append(measure(port, pid, args.seconds, args.connections))
                print(
                    f"round {round_number + 1} {name}: {results[name][-1].rps:.0f} req/s",
                    file=sys.stderr,
                )
        report(results)
    finally:
        if handle is not None:
            envoy.kill(handle)
        for process in processes:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    main()
