"""Zero downtime: a steady load on a service endpoint through consecutive rolling updates and a SIGKILL.

Run: .venv/bin/python bench/zero_downtime.py [--rollouts 20] [--rate 200] [--clients 16] [--cpu 1] [--app tiny]

A real control plane (`shipyard up --detach`, temp state dir, free ports) runs one service of
`bench/apps/tiny` (a python http.server app answering its instance and version; --app probe uses the
probe test fixture instead) with `replicas: 3`, `strategy: rolling` (the format's defaults: maxSurge
25 % = 1, maxUnavailable 0), the probe fixture's health settings (readiness every 200 ms) and a whole
core per instance (--cpu). A paced load of --rate GET / requests per second goes to the service's
stable endpoint (the Envoy listener from `shipyard status -o json`), spread over --clients client
threads: half keep one keep-alive connection each (reconnecting only after an error), half open a new
connection per request. Each client sends on its own fixed schedule (rate / clients per second)
and does not burst to catch up by more than one second.

Phase 1: --rollouts consecutive rolling updates, each a new release (`version:` changed in the service
YAML), `shipyard apply`, then `shipyard rollout status SERVICE` (blocks until the rollout ends; the bench
stops if it fails). Each rollout's duration is the wall time of those two commands; the engine's own
figure (the rollout record's started_at -> updated_at) is printed beside it.
Phase 2: one ready instance (pid from `status -o json`) is SIGKILLed under the same load; the phase runs
from 0.5 s before the kill until 1 s after three instances are ready again.

A request fails if it gets a non-2xx answer or any connection error (reset, refused, timeout of 10 s).
Targets (issue): 0 failed requests in both phases.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _support import BenchControlPlane  # noqa: E402
from tests.controlplane import wait_for  # noqa: E402
from tests.projects import probe_service, write_project  # noqa: E402

SERVICE = "alpha"
TINY_APP = ROOT / "bench" / "apps" / "tiny"


@dataclass
class Outcome:
    started: float       # time.monotonic() when the request was sent
    latency: float       # seconds until the answer was read (or the error raised)
    keep_alive: bool
    failure: str | None  # None = 2xx
    version: str = ""


@dataclass
class PacedLoad:
    """GET `path` on 127.0.0.1:`port` at `rate` requests/s from `clients` threads (half keep-alive)."""

    port: int
    rate: float
    clients: int
    path: str = "/"
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> PacedLoad:
        interval = self.clients / self.rate
        begin = time.monotonic()
        for n in range(self.clients):
            # Staggered starts: the clients' requests are spread evenly over each interval.
            thread = threading.Thread(target=self._run, args=(n % 2 == 0, begin + interval * n / self.clients,
                                                              interval), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def _run(self, keep_alive: bool, first: float, interval: float) -> None:
        conn: http.client.HTTPConnection | None = None
        next_at = first
        while not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at = max(next_at + interval, time.monotonic() - 1.0)
            started = time.monotonic()
            version = ""
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", self.path)
                response = conn.getresponse()
                response.read()
                version = response.getheader("X-Service-Version", "")
                failure = None if 200 <= response.status < 300 else f"HTTP {response.status}"
                if response.will_close and conn is not None:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                failure = f"{type(exc).__name__}: {exc}"
                if conn is not None:
                    conn.close()
                conn = None
            outcome = Outcome(started, time.monotonic() - started, keep_alive, failure, version)
            if not keep_alive and conn is not None:
                conn.close()
                conn = None
            with self._lock:
                self.outcomes.append(outcome)
        if conn is not None:
            conn.close()

    def between(self, start: float, end: float) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if start <= o.started < end]


def describe(outcomes: list[Outcome], origin: float, examples: int = 5) -> list[str]:
    """Count lines for a set of requests, and a few example failures (time relative to `origin`)."""
    failed = [o for o in outcomes if o.failure]
    by_kind = []
    for kind, flag in (("keep-alive", True), ("new connection", False)):
        mine = [o for o in outcomes if o.keep_alive is flag]
        by_kind.append(f"{kind} {sum(1 for o in mine if o.failure)}/{len(mine)}")
    latencies = sorted(o.latency for o in outcomes if not o.failure)
    lines = [f"requests {len(outcomes)}, failed {len(failed)} ({', '.join(by_kind)})"]
    if latencies:
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        lines.append(f"latency of the 2xx answers: p50 {statistics.median(latencies) * 1000:.1f} ms, "
                     f"p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
    if failed:
        reasons = Counter(o.failure for o in failed)
        lines.append("failures by reason: " + "; ".join(f"{n} x {r}" for r, n in reasons.most_common()))
        for o in failed[:examples]:
            kind = "keep-alive" if o.keep_alive else "new connection"
            lines.append(f"  e.g. at +{o.started - origin:.3f} s ({kind}, after {o.latency * 1000:.0f} ms): "
                         f"{o.failure}")
    return lines


def service_yaml(version: str, cpu: str, app: str) -> dict:
    return probe_service(SERVICE, version=version, replicas=3, strategy={"type": "rolling"},
                         resources={"cpu": cpu, "memory": "64Mi"},
                         artifact={"path": f"apps/{app}", "command": ["python3", "app.py"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rollouts", type=int, default=20)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (all clients together)")
    parser.add_argument("--clients", type=int, default=16, help="client threads, half of them keep-alive")
    parser.add_argument("--cpu", default="1", help="CPU of each instance (default a whole core: no quota throttling)")
    parser.add_argument("--app", choices=("tiny", "probe"), default="tiny",
                        help="bench/apps/tiny (default) or the probe test fixture (~40 ms an answer through Envoy: "
                             "no TCP_NODELAY)")
    args = parser.parse_args()
    began = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="shipyard-bench-zero-") as tmp:
        tmp_path = Path(tmp)
        project = write_project(tmp_path / "project", [service_yaml("1.0.0", args.cpu, args.app)])
        shutil.copytree(TINY_APP, project / "apps" / "tiny")
        cp = BenchControlPlane(project, tmp_path / "state")
        try:
            cp.up("--capacity", "cpu=64,memory=64Gi")
            cp.wait_ready(SERVICE, 3, timeout=60)
            service = cp.service(SERVICE)
            port = int(service["endpoint"].rsplit(":", 1)[1])
            print(f"{SERVICE}: 3 replicas ready, strategy {service['strategy']}, endpoint {service['endpoint']}; "
                  f"load {args.rate:g} req/s from {args.clients} clients "
                  f"({(args.clients + 1) // 2} keep-alive, {args.clients // 2} new connection per request)",
                  flush=True)
            with PacedLoad(port, args.rate, args.clients) as load:
                time.sleep(2.0)   # the load runs steadily before the first rollout
                origin = time.monotonic()
                walls: list[float] = []
                engines: list[float] = []
                for n in range(1, args.rollouts + 1):
                    version = f"1.0.{n}"
                    write_project(project, [service_yaml(version, args.cpu, args.app)])
                    t0 = time.monotonic()
                    cp.cli("apply")
                    for _ in range(5):
                        result = cp.cli("rollout", "status", SERVICE, check=False)
                        if result.returncode == 0 or "Internal Server Error" not in result.stderr:
                            break
                        cp.api_errors.append(f"rollout status: {result.stderr.strip()}")  # follow it again
                    wall = time.monotonic() - t0
                    if result.returncode != 0:
                        raise SystemExit(f"rollout {n} did not complete:\n{result.stdout}\n{result.stderr}")
                    entry = cp.service(SERVICE)
                    record = entry["rollout"]
                    engine = record["updated_at"] - record["started_at"]
                    walls.append(wall)
                    engines.append(engine)
                    during = load.between(t0, time.monotonic())
                    failed = sum(1 for o in during if o.failure)
                    print(f"  rollout {n:2d} -> {version}: {wall:.2f} s (engine {engine:.2f} s), "
                          f"{len(during)} requests, {failed} failed", flush=True)
                rollouts_end = time.monotonic()
                time.sleep(1.0)
                ready = cp.wait_ready(SERVICE, 3, timeout=30)
                assert {i["version"] for i in ready} == {f"1.0.{args.rollouts}"}, ready
                time.sleep(1.0)

                victim = ready[0]
                old_pids = {i["pid"] for i in ready}
                kill_at = time.monotonic()
                os.kill(victim["pid"], signal.SIGKILL)
                replaced = wait_for(
                    lambda: (lambda r: r if len(r) == 3 and victim["pid"] not in {i["pid"] for i in r} else None)(
                        cp.instances(SERVICE, "ready")),
                    timeout=60, interval=0.05, what="a ready replacement of the killed instance")
                ready_again = time.monotonic()
                replacement = next(i for i in replaced if i["pid"] not in old_pids)
                time.sleep(1.0)
                kill_end = time.monotonic()
            rollout_outcomes = load.between(origin, rollouts_end)
            kill_outcomes = load.between(kill_at - 0.5, kill_end)
            everything = load.between(0, float("inf"))
            duration = everything[-1].started - everything[0].started if everything else 0.0
            versions = Counter(o.version for o in everything if not o.failure)
        finally:
            cp.teardown()

    print()
    print(f"{args.rollouts} rolling updates of {SERVICE} (app {args.app}, 3 replicas, maxSurge 25%, maxUnavailable 0), "
          f"apply -> rollout status returns:")
    print("  " + " ".join(f"{w:.2f}" for w in walls) + " s")
    print(f"  median {statistics.median(walls):.2f} s   max {max(walls):.2f} s   "
          f"(engine started -> complete: median {statistics.median(engines):.2f} s, max {max(engines):.2f} s)")
    print(f"during the rollouts ({rollouts_end - origin:.1f} s):")
    for line in describe(rollout_outcomes, origin):
        print("  " + line)
    print(f"SIGKILL of {victim['id']} (pid {victim['pid']}) under load; 3 ready again after "
          f"{(ready_again - kill_at) * 1000:.0f} ms (replacement pid {replacement['pid']}):")
    for line in describe(kill_outcomes, kill_at):
        print("  " + line)
    total_failed = sum(1 for o in everything if o.failure)
    print(f"whole run: total requests {len(everything)}, failed {total_failed} "
          f"(target 0: {'met' if total_failed == 0 else 'MISSED'}); "
          f"achieved {len(everything) / duration if duration else 0:.0f} req/s over {duration:.1f} s; "
          f"answers from {len(versions)} versions")
    if total_failed:
        for line in describe(everything, origin, examples=10)[2:]:
            print("  " + line)
    cp.report_api_errors()
    print(f"run time {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
