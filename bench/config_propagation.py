"""Config propagation: how long from a routing change being decided until Envoy serves it.

Run: .venv/bin/python bench/config_propagation.py [--reps 20] [--poll-ms 1] [--cpu 1] [--only engine|proxy]

A client in a separate process (so it shares no GIL with what it measures) sends GET / on one keep-alive
connection every --poll-ms ms and notes, by time.time(), the first and last answer from each instance or
backend (the X-Instance header, or the first word of the body).

(1) engine: a real control plane (`shipyard up --detach`, temp state dir, free ports) runs one service of
    `bench/apps/tiny` with 1 replica (the probe fixture's health settings: a new instance is probed every
    100 ms until first ready). Each repetition scales it to 2 replicas (`replicas:` in the YAML,
    `shipyard apply`) and measures from the new instance's `Ready` event (its time in
    `shipyard events -o json`, recorded just before the engine publishes the change) to the first answer
    from that instance through the service endpoint. Then it scales back to 1 and measures from the
    removed instance's `Stopping` event to the last answer it gave through the endpoint (its weight is
    removed first). Envoy balances with LEAST_REQUEST; with one request in flight the new instance gets
    about half of them, so the client's resolution is ~2 x --poll-ms.
(2) proxy: an Envoy started by shipyard.proxy.envoy.start (no control plane) on a temp config dir, two
    backends (tests/proxy/backend.py, answering with their id). Each repetition publishes, through
    shipyard.proxy.publish.publish(plane, handle), a DataPlane whose route sends everything to a new
    cluster (a new name each time) holding the other backend; the old cluster goes in the same publish.
    It measures publish() call -> first answer from the new backend, and call -> publish() returns
    (publish confirms each file through Envoy's admin API). Then the same for a new listener (a new
    service on a free port): call -> first 200 on the new port.
Medians and max over --reps repetitions.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shipyard.proxy import envoy  # noqa: E402
from shipyard.proxy.model import Cluster, DataPlane, Endpoint, Route  # noqa: E402
from shipyard.proxy.publish import publish  # noqa: E402
from _support import BenchControlPlane  # noqa: E402
from tests.controlplane import free_port, wait_for  # noqa: E402
from tests.projects import probe_service, write_project  # noqa: E402

SERVICE = "alpha"
TINY_APP = ROOT / "bench" / "apps" / "tiny"
BACKEND = ROOT / "tests" / "proxy" / "backend.py"


# ---- the client process ------------------------------------------------------------------------------
def poll(port: int, interval: float, pipe: Connection) -> None:
    """Runs in its own process. Commands on `pipe`: ("await", id, token) -> ("seen", token, t) at the next
    answer from `id`; ("serve", port, token) -> ("serving", token, t) at the first 200 on a new connection
    to `port`; ("snapshot",) -> ("snapshot", {id: [first, last, count]}, error count, last errors);
    ("stop",). It sends ("new", id, t) at the first answer from each id, and ("ok", token) for commands."""
    conn: http.client.HTTPConnection | None = None
    seen: dict[str, list[float]] = {}
    awaiting: dict[str, str] = {}
    serving: dict[int, str] = {}
    errors: list[tuple[float, str]] = []
    next_at = time.monotonic()
    while True:
        while pipe.poll():
            command = pipe.recv()
            if command[0] == "stop":
                return
            if command[0] == "await":
                awaiting[command[1]] = command[2]
                pipe.send(("ok", command[2]))
            elif command[0] == "serve":
                serving[command[1]] = command[2]
                pipe.send(("ok", command[2]))
            elif command[0] == "snapshot":
                pipe.send(("snapshot", {k: list(v) for k, v in seen.items()}, len(errors), errors[-5:]))
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        next_at = max(next_at + interval, time.monotonic())
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/")
            response = conn.getresponse()
            body = response.read()
            now = time.time()
            if response.status != 200:
                errors.append((now, f"HTTP {response.status} {body[:80]!r}"))
            else:
                ident = response.getheader("X-Instance") or body.split()[0].decode()
                entry = seen.get(ident)
                if entry is None:
                    seen[ident] = [now, now, 1]
                    pipe.send(("new", ident, now))
                else:
                    entry[1] = now
                    entry[2] += 1
                token = awaiting.pop(ident, None)
                if token is not None:
                    pipe.send(("seen", token, now))
        except (OSError, http.client.HTTPException) as exc:
            errors.append((time.time(), f"{type(exc).__name__}: {exc}"))
            if conn is not None:
                conn.close()
            conn = None
        for new_port, token in list(serving.items()):
            probe = http.client.HTTPConnection("127.0.0.1", new_port, timeout=1)
            try:
                probe.request("GET", "/")
                response = probe.getresponse()
                response.read()
                if response.status == 200:
                    pipe.send(("serving", token, time.time()))
                    del serving[new_port]
            except (OSError, http.client.HTTPException):
                pass
            finally:
                probe.close()


class Poller:
    """The main process's side of `poll`."""

    def __init__(self, port: int, interval: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=poll, args=(port, interval, child), daemon=True)
        self.process.start()
        self._buffer: list[tuple[Any, ...]] = []
        self._tokens = 0

    def expect(self, kind: str, match: Callable[[tuple[Any, ...]], bool] = lambda m: True,
               timeout: float = 30) -> tuple[Any, ...]:
        for message in self._buffer:
            if message[0] == kind and match(message):
                self._buffer.remove(message)
                return message
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.pipe.poll(remaining):
                raise RuntimeError(f"the client saw no {kind!r} message within {timeout:g} s")
            message = self.pipe.recv()
            if message[0] == kind and match(message):
                return message
            self._buffer.append(message)

    def command(self, kind: str, argument: Any) -> str:
        """Send a command, wait until the client has it; returns its token."""
        self._tokens += 1
        token = f"t{self._tokens}"
        self.pipe.send((kind, argument, token))
        self.expect("ok", lambda m: m[1] == token, timeout=5)
        return token

    def snapshot(self) -> tuple[dict[str, list[float]], int, list[tuple[float, str]]]:
        self.pipe.send(("snapshot",))
        _, seen, error_count, errors = self.expect("snapshot", timeout=5)
        return seen, error_count, errors

    def stop(self) -> None:
        try:
            self.pipe.send(("stop",))
        except OSError:
            pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


# ---- figures -----------------------------------------------------------------------------------------
def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"median {statistics.median(ms):.1f} ms   max {max(ms):.1f} ms   min {min(ms):.1f} ms"
            f"   ({len(ms)} reps)")


def print_errors(error_count: int, errors: list[tuple[float, str]], origin: float) -> None:
    print(f"  client: {error_count} failed requests" + (" (last ones below)" if error_count else ""))
    for at, text in errors:
        print(f"    at +{at - origin:.3f} s: {text}")


# ---- (1) through a control plane ---------------------------------------------------------------------
def service_yaml(replicas: int, cpu: str) -> dict[str, Any]:
    return probe_service(SERVICE, replicas=replicas, resources={"cpu": cpu, "memory": "64Mi"},
                         artifact={"path": "apps/tiny", "command": ["python3", "app.py"]})


def event_time(cp: BenchControlPlane, instance_id: str, reason: str) -> float:
    def find() -> float | None:
        events = json.loads(cp.cli("events", "-o", "json", "--limit", "200").stdout)
        times = [e["time"] for e in events if e["object"] == instance_id and e["reason"] == reason]
        return times[-1] if times else None
    return float(wait_for(find, timeout=10, interval=0.1, what=f"a {reason} event of {instance_id}"))


def engine_bench(tmp: Path, args: argparse.Namespace) -> None:
    project = write_project(tmp / "project", [service_yaml(1, args.cpu)])
    shutil.copytree(TINY_APP, project / "apps" / "tiny")
    cp = BenchControlPlane(project, tmp / "state")
    poller: Poller | None = None
    up_delays: list[float] = []      # Ready event -> first answer through the endpoint
    apply_to_ready: list[float] = []
    down_delays: list[float] = []    # Stopping event -> last answer through the endpoint
    try:
        cp.up("--capacity", "cpu=64,memory=64Gi")
        (first,) = cp.wait_ready(SERVICE, 1, timeout=60)
        port = int(cp.service(SERVICE)["endpoint"].rsplit(":", 1)[1])
        poller = Poller(port, args.poll_ms / 1000)
        poller.expect("new", lambda m: m[1] == first["id"], timeout=10)
        origin = time.time()
        known = {first["id"]}
        print(f"(1) engine: {SERVICE} endpoint {cp.service(SERVICE)['endpoint']}, client every "
              f"{args.poll_ms:g} ms", flush=True)
        for rep in range(1, args.reps + 1):
            write_project(project, [service_yaml(2, args.cpu)])
            applied = time.time()
            cp.cli("apply")
            _, new_id, first_answer = poller.expect("new", lambda m: m[1] not in known, timeout=30)
            known.add(new_id)
            ready_at = event_time(cp, new_id, "Ready")
            up_delays.append(first_answer - ready_at)
            apply_to_ready.append(ready_at - applied)
            cp.wait_ready(SERVICE, 2, timeout=30)

            write_project(project, [service_yaml(1, args.cpu)])
            before = {i["id"] for i in cp.instances(SERVICE)}
            cp.cli("apply")
            remaining = wait_for(lambda: (lambda i: i if len(i) == 1 and i[0]["state"] == "ready" else None)(
                cp.instances(SERVICE)), timeout=30, interval=0.1, what="one instance left")
            (removed,) = before - {remaining[0]["id"]}
            stopping_at = event_time(cp, removed, "Stopping")
            seen, _, _ = poller.snapshot()
            down_delays.append(seen[removed][1] - stopping_at)
            print(f"  rep {rep:2d}: {new_id} Ready -> first answer {up_delays[-1] * 1000:6.1f} ms "
                  f"(apply -> Ready {apply_to_ready[-1] * 1000:.0f} ms); {removed} Stopping -> last answer "
                  f"{down_delays[-1] * 1000:6.1f} ms", flush=True)
            time.sleep(0.3)
        _, error_count, errors = poller.snapshot()
    finally:
        if poller is not None:
            poller.stop()
        cp.teardown()
    print()
    print("(1) engine, scale 1 -> 2: the new instance's Ready event -> its first answer through the endpoint:")
    print(f"  {summary(up_delays)}")
    print(f"  (apply -> Ready event: {summary(apply_to_ready)})")
    print("(1) engine, scale 2 -> 1: the removed instance's Stopping event -> its last answer through the endpoint:")
    print(f"  {summary(down_delays)}")
    print_errors(error_count, errors, origin)
    cp.report_api_errors()


# ---- (2) straight at the proxy layer -----------------------------------------------------------------
def start_backend(backend_id: str) -> tuple[subprocess.Popen[bytes], Endpoint]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(BACKEND), str(port), backend_id], stdout=subprocess.PIPE)
    assert process.stdout is not None
    if process.stdout.readline() != b"ready\n":
        process.kill()
        raise RuntimeError(f"backend {backend_id} did not start")
    return process, Endpoint("127.0.0.1", port)


async def proxy_bench(tmp: Path, args: argparse.Namespace, backends: dict[str, Endpoint]) -> None:
    admin = free_port()
    handle = await envoy.start(tmp / "proxy", admin, admin, tmp / "proxy" / "envoy.log")
    poller: Poller | None = None
    try:
        port = free_port()

        def plane(cluster: str, backend: str, extra: tuple[Route, ...] = ()) -> DataPlane:
            return DataPlane(routes=(Route("bench", port, ((cluster, 100),)), *extra),
                             clusters=(Cluster(cluster, (backends[backend],)),), ingress_port=0)

        await publish(plane("bench.r0", "a"), handle)
        poller = Poller(port, args.poll_ms / 1000)
        poller.expect("new", lambda m: m[1] == "a", timeout=10)
        origin = time.time()
        print(f"(2) proxy: Envoy pid {handle.pid} (concurrency: Envoy's default, as the engine starts it), "
              f"route on port {port}, client every {args.poll_ms:g} ms", flush=True)
        switch_served: list[float] = []
        switch_returned: list[float] = []
        switch_gap: list[float] = []
        current, backend = "bench.r0", "a"
        for rep in range(1, args.reps + 1):
            backend = "b" if backend == "a" else "a"
            current = f"bench.r{rep}"
            token = poller.command("await", backend)
            called = time.time()
            await publish(plane(current, backend), handle)
            returned = time.time()
            _, _, served = poller.expect("seen", lambda m, t=token: m[1] == t, timeout=10)
            switch_served.append(served - called)
            switch_returned.append(returned - called)
            switch_gap.append(served - returned)
            await asyncio.sleep(0.2)

        listener_served: list[float] = []
        listener_returned: list[float] = []
        removed_returned: list[float] = []
        for rep in range(1, args.reps + 1):
            new_port = free_port()
            extra = (Route(f"new{rep}", new_port, ((current, 100),)),)
            token = poller.command("serve", new_port)
            called = time.time()
            await publish(plane(current, backend, extra), handle)
            returned = time.time()
            _, _, served = poller.expect("serving", lambda m, t=token: m[1] == t, timeout=10)
            listener_served.append(served - called)
            listener_returned.append(returned - called)
            called = time.time()
            await publish(plane(current, backend), handle)
            removed_returned.append(time.time() - called)
            await asyncio.sleep(0.2)
        _, error_count, errors = poller.snapshot()
    finally:
        if poller is not None:
            poller.stop()
        envoy.kill(handle)
    print()
    print("(2) proxy, publish() of a route switched to a new cluster (other backend; old cluster removed):")
    print(f"  call -> first answer from the new backend: {summary(switch_served)}")
    print(f"  call -> publish() returns (confirmed):     {summary(switch_returned)}")
    print(f"  first answer - return (< 0: served before publish returned): "
          f"median {statistics.median(switch_gap) * 1000:.1f} ms, max {max(switch_gap) * 1000:.1f} ms")
    print("(2) proxy, publish() adding a listener (a new service on a new port):")
    print(f"  call -> first 200 on the new port:         {summary(listener_served)}")
    print(f"  call -> publish() returns (confirmed):     {summary(listener_returned)}")
    print(f"  (publish() removing it again: {summary(removed_returned)})")
    print_errors(error_count, errors, origin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--poll-ms", type=float, default=1.0, help="the client's interval between requests")
    parser.add_argument("--cpu", default="1", help="CPU of each instance in (1)")
    parser.add_argument("--only", choices=("engine", "proxy"), help="run one of the two parts")
    args = parser.parse_args()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-propagation-") as tmp:
        tmp_path = Path(tmp)
        if args.only in (None, "engine"):
            engine_bench(tmp_path / "engine", args)
            print(flush=True)
        if args.only in (None, "proxy"):
            processes: list[subprocess.Popen[bytes]] = []
            try:
                endpoints = {}
                for backend_id in ("a", "b"):
                    process, endpoints[backend_id] = start_backend(backend_id)
                    processes.append(process)
                asyncio.run(proxy_bench(tmp_path / "proxy", args, endpoints))
            finally:
                for process in processes:
                    process.kill()
                    process.wait(5)
                    if process.stdout is not None:
                        process.stdout.close()
    print(f"run time {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
