"""What the progressive-delivery benchmarks share (canary_rollback.py, canary_healthy.py, blue_green.py).

One service, `alpha`, of the probe test app (tests/fixtures/apps/probe: FAIL_RATE, X-Service-Version,
TCP_NODELAY) with `replicas: 3` on a real control plane (`shipyard up --detach`, temporary project and
state directories, free ports), a paced load on its stable endpoint (PacedLoad from zero_downtime.py:
half the clients keep one keep-alive connection, half open a new connection per request, each on its
own fixed schedule; every answer's send time, latency, status and X-Service-Version is kept), and a
thread that records the control plane's status document (`GET /status`, what `shipyard status -o json`
prints) every --poll-ms, so phase changes and instance stops get a time on the same clock as the
requests (time.monotonic()). Envoy's 5xx log (SHIPYARD_ENVOY_ERROR_LOG, with response flags) is
written to a file in the temporary directory and summarised.

Imported by the scripts in this directory (the script's directory is on sys.path).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _support import BenchControlPlane, api_get  # noqa: E402
from tests.projects import probe_service, write_project  # noqa: E402
from zero_downtime import Outcome, PacedLoad, describe  # noqa: E402,F401 - re-exported for the scripts

SERVICE = "alpha"
OLD, NEW = "1.0.0", "2.0.0"
WALL_OFFSET = time.time() - time.monotonic()   # wall = monotonic + WALL_OFFSET (engine times are wall clock)


def mono(wall: float) -> float:
    """An engine timestamp (time.time()) on the benchmark's monotonic clock."""
    return wall - WALL_OFFSET


def common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second, all clients together")
    parser.add_argument("--clients", type=int, default=8, help="client threads, half of them keep-alive")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--cpu", default="1", help="CPU of each instance (default a whole core: no quota throttling)")
    parser.add_argument("--poll-ms", type=float, default=50.0, help="how often the status document is recorded")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before the release")
    parser.add_argument("--tail", type=float, default=2.0, help="seconds of load after the last milestone")


def duration(seconds: float) -> str:
    return f"{seconds:g}s" if float(seconds).is_integer() else f"{round(seconds * 1000)}ms"


def service_doc(version: str, strategy: dict[str, Any], args: argparse.Namespace,
                env: dict[str, str] | None = None) -> dict[str, Any]:
    return probe_service(SERVICE, version=version, replicas=args.replicas, env=env or {}, strategy=strategy,
                         resources={"cpu": args.cpu, "memory": "64Mi"})


@dataclass(frozen=True)
class Sample:
    """One status document, reduced to what the benchmarks read."""

    at: float                       # time.monotonic() when the document arrived
    release: str                    # the release the service runs (desired)
    rollout: dict[str, Any] | None  # the rollout record, without its decisions
    instances: tuple[tuple[str, str, str], ...]   # (release, version, state) of every instance

    def versions(self, *states: str) -> Counter[str]:
        return Counter(v for _, v, s in self.instances if not states or s in states)

    @property
    def phase(self) -> str:
        return str((self.rollout or {}).get("phase") or "")


@dataclass
class StatusWatcher:
    """Records `GET {api}/status` every `interval` seconds in a thread, until stopped."""

    api: str
    interval: float
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    pids: set[int] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> StatusWatcher:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.wait(lambda s: True, timeout=10, what="a first status document")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                document = api_get(self.api, "/status")
                entry = next(s for s in document["services"] if s["name"] == SERVICE)
                rollout = dict(entry["rollout"]) if entry.get("rollout") else None
                if rollout is not None:
                    rollout.pop("decisions", None)
                instances = tuple((i["release"], i["version"] or "", i["state"]) for i in entry["instances"])
                sample = Sample(time.monotonic(), entry["release"], rollout, instances)
                with self._lock:
                    self.samples.append(sample)
                    self.pids.update(i["pid"] for i in entry["instances"] if i["pid"])
            except Exception as exc:  # noqa: BLE001 - a failed read is counted, the next one is tried
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def first(self, predicate: Callable[[Sample], bool], after: float = -math.inf) -> Sample | None:
        with self._lock:
            return next((s for s in self.samples if s.at >= after and predicate(s)), None)

    def latest(self) -> Sample | None:
        with self._lock:
            return self.samples[-1] if self.samples else None

    def wait(self, predicate: Callable[[Sample], bool], timeout: float, what: str,
             after: float = -math.inf) -> Sample:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.first(predicate, after)
            if found is not None:
                return found
            time.sleep(0.01)
        last = self.latest()
        raise SystemExit(f"timed out after {timeout:g} s waiting for {what}; last status: "
                         f"{last.rollout if last else None} {last.instances if last else None}")


@dataclass
class EnvoyStatsWatcher:
    """Scrapes Envoy's per-cluster stats (the same filter the control plane's traffic history uses) every
    `interval` seconds in a thread, and notes each time a cluster's latency histogram total went *down*
    while its request counter went on (what the traffic window takes for an Envoy restart)."""

    admin: str
    interval: float
    # (time.monotonic(), Envoy cluster, histogram total before, after, requests before, after)
    drops: list[tuple[float, str, int, int, int, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> EnvoyStatsWatcher:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        from urllib.parse import quote

        from shipyard.proxy.admin import parse_prometheus

        wanted = quote(r"^cluster\..+\.(upstream_rq_completed|upstream_rq_5xx|upstream_rq_time)$", safe="")
        last: dict[str, tuple[int, int]] = {}
        while not self._stop.wait(self.interval):
            try:
                with urllib.request.urlopen(f"{self.admin}/stats/prometheus?usedonly&filter={wanted}",
                                            timeout=5) as response:
                    stats = parse_prometheus(response.read().decode())
            except Exception:  # noqa: BLE001 - the next scrape is tried
                continue
            for cluster, figures in stats.items():
                histogram = figures.latency_buckets[-1][1] if figures.latency_buckets else 0
                before = last.get(cluster)
                if before is not None and histogram < before[0] and figures.requests >= before[1]:
                    self.drops.append((time.monotonic(), cluster, before[0], histogram, before[1], figures.requests))
                last[cluster] = (histogram, figures.requests)


class ProgressiveBench:
    """A temporary project with `alpha` at OLD under `strategy`, its control plane up and 3 replicas ready."""

    def __init__(self, args: argparse.Namespace, strategy: dict[str, Any], prefix: str) -> None:
        self.args, self.strategy = args, strategy
        self._tmp = tempfile.TemporaryDirectory(prefix=prefix)
        self.tmp = Path(self._tmp.name)
        self.project = self.tmp / "project"
        self.error_log = self.tmp / "envoy-5xx.log"
        self.cp = BenchControlPlane(self.project, self.tmp / "state")
        self.watcher: StatusWatcher | None = None
        self.port = 0
        self.api = ""

    def __enter__(self) -> ProgressiveBench:
        write_project(self.project, [service_doc(OLD, self.strategy, self.args)])
        os.environ["SHIPYARD_ENVOY_ERROR_LOG"] = str(self.error_log)   # inherited by `shipyard up`'s daemon
        try:
            self.cp.up("--capacity", "cpu=64,memory=64Gi")
            self.cp.wait_ready(SERVICE, self.args.replicas, timeout=60)
            service = self.cp.service(SERVICE)
            self.port = int(service["endpoint"].rsplit(":", 1)[1])
            self.api = self.cp.api()
            self.old_release = service["release"]
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            if self.watcher is not None:
                self.watcher.__exit__()
                self.cp.seen_pids |= set(self.watcher.pids)
        finally:
            try:
                self.cp.teardown()
            finally:
                self._tmp.cleanup()

    def watch(self) -> StatusWatcher:
        self.watcher = StatusWatcher(self.api, self.args.poll_ms / 1000)
        return self.watcher.__enter__()

    def release(self, version: str, strategy: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> None:
        """Write the new release into the project and `shipyard apply` it."""
        write_project(self.project, [service_doc(version, strategy or self.strategy, self.args, env)])
        self.cp.cli("apply")

    def follow(self) -> tuple[int, str]:
        """`shipyard rollout status alpha` (blocks until the rollout ends): exit code and output."""
        for _ in range(5):
            result = self.cp.cli("rollout", "status", SERVICE, check=False)
            if result.returncode == 0 or "Internal Server Error" not in result.stderr:
                break
            self.cp.api_errors.append(f"rollout status: {result.stderr.strip()}")  # follow it again
        return result.returncode, (result.stdout + result.stderr).strip()

    def final(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The service's status entry and the events (oldest first) at the end of the run."""
        service = self.cp.service(SERVICE)
        events = json.loads(self.cp.cli("events", "-o", "json", "--limit", "500").stdout)
        return service, events

    def error_log_lines(self) -> list[str]:
        try:
            return [line for line in self.error_log.read_text().splitlines() if line.strip()]
        except OSError:
            return []

    def report_notes(self) -> None:
        """Status reads that failed (the watcher's, the CLI's), printed only when there were any."""
        if self.watcher is not None and self.watcher.errors:
            print(f"note: {len(self.watcher.errors)} failed status reads by the watcher; last: "
                  f"{self.watcher.errors[-1][:200]}")
        self.cp.report_api_errors()


def stamp(t: float, origin: float) -> str:
    return f"+{t - origin:6.3f} s"


def failures_by_version(outcomes: list[Outcome]) -> str:
    counts = Counter(o.version or "(no answer)" for o in outcomes if o.failure)
    return ", ".join(f"{version}: {n}" for version, n in sorted(counts.items())) or "none"


def load_side(outcomes: list[Outcome], at: float, seconds: float, version: str) -> tuple[int, int]:
    """The fewest and most answers of `version` the load received in a `seconds` window ending 0 to 1.2 s
    before `at` (an analysis window ends at the last stats scrape before its decision; scrapes are ~1 s apart)."""
    counts = []
    for step in range(13):
        end = at - step / 10
        counts.append(sum(1 for o in outcomes if o.version == version and end - seconds <= o.started + o.latency < end))
    return min(counts), max(counts)


def print_decisions(decisions: list[dict[str, Any]], origin_wall: float, outcomes: list[Outcome] | None = None
                    ) -> int:
    """Every recorded decision: when, at what weight, verdict → action, the summary and the window.

    With the load's `outcomes`, each analysis window's request counts are checked against what the load
    generator itself received from each version in windows of the same length ending 0-1.2 s before the
    decision; a count outside that range (± 10 % + 3) is flagged. Returns the number flagged.
    """
    if not decisions:
        print("  (none)")
    flagged = 0
    for d in decisions:
        at = f"+{d['at'] - origin_wall:6.2f} s"
        where = f"{d.get('phase', '')} {d['weight']}%" if "weight" in d else d.get("phase", "")
        print(f"  {at}  {d.get('kind', '?'):8} {where:10} {d.get('verdict', '-'):12} -> {d.get('action', '-')}: "
              f"{d.get('reason', '')}")
        if d.get("summary"):
            print(f"             summary: {d['summary']}")
        window = d.get("window")
        if window:
            canary, primary = window.get("canary") or {}, window.get("primary") or {}
            print(f"             window {window.get('seconds', 0):.2f} s: canary {canary.get('requests')} requests, "
                  f"{canary.get('errors_5xx')} 5xx; primary {primary.get('requests')} requests, "
                  f"{primary.get('errors_5xx')} 5xx")
            if outcomes:
                at, seconds = mono(d["at"]), float(window.get("seconds") or 0)
                sides = []
                for name, version, side in (("canary", NEW, canary), ("primary", OLD, primary)):
                    low, high = load_side(outcomes, at, seconds, version)
                    engine = side.get("requests")
                    off = engine is not None and not (low * 0.9 - 3 <= engine <= high * 1.1 + 3)
                    flagged += off
                    sides.append(f"{name} {low}-{high}" + (f" (engine counted {engine}: MISMATCH)" if off else ""))
                print(f"             load generator's own answers in such a window: {', '.join(sides)}")
    return flagged


def print_window_note(mismatches: int) -> None:
    if mismatches:
        print(f"  note: {mismatches} analysis window(s) counted requests the load generator did not see in any such "
              f"window. Known cause (bench/README.md, canary_healthy.py): when a release's cluster gains an "
              f"instance, Envoy starts that cluster's latency histogram afresh but keeps its counters; the "
              f"traffic window takes the shrunken histogram for an Envoy restart and counts the release's "
              f"requests (and 5xx) from zero, i.e. everything since the rollout began.")


RELEVANT_EVENTS = {"RolloutStarted", "RolloutPhase", "AnalysisPassed", "AnalysisFailed", "AnalysisInconclusive",
                   "RolloutComplete", "Undo", "Superseded", "Promote", "Stopping", "Stopped", "Ready"}


def print_load_line(bench: "ProgressiveBench", args: argparse.Namespace, what: str) -> None:
    """The first line of every run: the service, its endpoint and the load on it."""
    print(f"{SERVICE}: {args.replicas} replicas of {what} ready, endpoint 127.0.0.1:{bench.port}; load "
          f"{args.rate:g} req/s from {args.clients} clients ({(args.clients + 1) // 2} keep-alive, "
          f"{args.clients // 2} new connection per request)", flush=True)


def print_ending(events: list[dict[str, Any]], error_log: list[str], applied_wall: float, began: float) -> None:
    """The last part of every run: the rollout's events, Envoy's 5xx log and the run time."""
    print("\nevents (times from `shipyard apply`):")
    print_events(events, applied_wall, applied_wall)
    print("\nEnvoy's 5xx log (SHIPYARD_ENVOY_ERROR_LOG):")
    print_error_log(error_log, applied_wall)
    print(f"run time {time.perf_counter() - began:.1f} s")


def print_events(events: list[dict[str, Any]], origin_wall: float, since_wall: float) -> None:
    """The service's rollout events and its instances' Ready / Stopping / Stopped since `since_wall`."""
    for event in events:
        if event["time"] < since_wall or not (event["object"] == SERVICE or event["object"].startswith(SERVICE + "-")):
            continue
        if event["reason"] not in RELEVANT_EVENTS and not event["reason"].startswith("RolledBack"):
            continue
        print(f"  +{event['time'] - origin_wall:6.2f} s  {event['object']:20} {event['reason']:24} "
              f"{event['message'][:150]}")


def print_error_log(lines: list[str], origin_wall: float, examples: int = 5) -> None:
    """Envoy's 5xx log, counted by code, response flags, cluster and details (the app's own 500s are
    `- ... via_upstream`; anything with a flag, e.g. UF/UH/URX, is Envoy failing to reach an instance)."""
    if not lines:
        print("  (empty: Envoy answered no 5xx)")
        return
    kinds: Counter[str] = Counter()
    for line in lines:
        parts = line.split()
        # START_TIME METHOD PATH CODE FLAGS CLUSTER HOST DETAILS REASON
        kinds[" ".join(parts[3:6] + parts[7:8]) if len(parts) >= 8 else line] += 1
    for kind, n in kinds.most_common():
        print(f"  {n:5d} x {kind}   (code flags cluster details)")
    unusual = [line for line in lines if len(line.split()) < 5 or line.split()[4] != "-"]
    for line in unusual[:examples]:
        print(f"  e.g. {line}")


def versions_in(outcomes: list[Outcome]) -> str:
    counts = Counter(o.version or "(no answer)" for o in outcomes)
    return ", ".join(f"{v}: {n}" for v, n in sorted(counts.items()))


def between(outcomes: list[Outcome], start: float, end: float) -> list[Outcome]:
    return [o for o in outcomes if start <= o.started < end]
