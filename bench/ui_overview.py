"""Render time of the dashboard's overview with 200 services (rendering only).

The status document is a fake one of 200 services shaped like engine/status.py's (each with 2 ready
instances, traffic figures, a few canaries in progress and one failed rollout): this measures what the
dashboard adds — sorting, paging and the Jinja2 template — not the engine's own status assembly (see
engine_idle.py for a control plane with 200 services). Prints the median and p95 of N renders for the
default page (50 rows), all 200 rows on one page, and a filter.

    .venv/bin/python bench/ui_overview.py [--services 200] [--runs 50]

With --real it also starts a real control plane with that many probe services (one replica each, like
engine_idle.py's setup), waits for all to be ready, then times `GET /ui` end to end over the Unix socket
(status assembly + rendering + HTTP), and how long after `shipyard scale` the page's live stream
(`/ui/live`) announces the change.

    .venv/bin/python bench/ui_overview.py --real [--services 200]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from shipyard.ui import views
from shipyard.ui.pages import TEMPLATES

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def fake_status(count: int) -> dict[str, Any]:
    services = []
    for n in range(count):
        name = f"svc-{n:03d}"
        rollout = {"strategy": "rolling", "status": "complete", "phase": "", "step": -1, "weight": 0}
        if n % 40 == 1:
            rollout = {"strategy": "canary", "status": "progressing", "phase": "step", "step": 1, "weight": 20}
        if n == 7:
            rollout = {"strategy": "canary", "status": "failed", "phase": "rolled-back", "step": 2, "weight": 0}
        release = {"release": f"{name}-abc", "version": "1.0.0", "requests": 600, "request_rate": 10.0,
                   "errors_5xx": n % 3, "success_rate": 1 - (n % 3) / 600, "latency_p50_ms": 1.2,
                   "latency_p95_ms": 3.4, "latency_p99_ms": 8.9}
        services.append({"name": name, "version": "1.0.0", "ready_replicas": 2 if n != 9 else 1, "desired_replicas": 2,
                         "endpoint": f"http://127.0.0.1:{20000 + n}", "rollout": rollout,
                         "traffic": {"window_s": 60, "releases": [release]}, "instances": []})
    return {"environment": "bench", "project": "bench", "revision": "local-0123456789ab", "suspended": False,
            "services": services,
            "conditions": [{"type": "Ready", "status": "False", "reason": "RolloutFailed", "message": "svc-007 failed",
                            "object": None},
                           {"type": "RolloutFailed", "status": "True", "reason": "AnalysisFailed",
                            "message": "rolled back", "object": "svc-007"}]}


def render(status: dict[str, Any], query: str, size: int) -> str:
    page = views.overview(status, query, 1, size)
    return TEMPLATES.get_template("overview.html").render(
        status=status, page=page, query=query, conditions=views.conditions(status), took_ms=0.0, who=None,
        csrf="", path="/ui", can_deploy=True)


def measure(status: dict[str, Any], query: str, size: int, runs: int) -> tuple[float, float, int]:
    times, html = [], ""
    for _ in range(runs):
        started = time.perf_counter()
        html = render(status, query, size)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], len(html)


def real(count: int, runs: int) -> None:
    """A real control plane with COUNT probe services: GET /ui end to end, and the live stream's delay."""
    import httpx

    from tests.controlplane import api_request, free_port, run_cli, sweep
    from tests.projects import probe_service, write_project

    with tempfile.TemporaryDirectory(prefix="shipyard-bench-ui-") as tmp:
        services = []
        for n in range(count):
            service = probe_service(f"svc{n:03d}", resources={"cpu": "10m", "memory": "32Mi"})
            del service["health"]
            services.append(service)
        project, state = write_project(Path(tmp) / "project", services), Path(tmp) / "state"
        seen: set[int] = set()
        control_pid = 0
        try:
            run_cli("up", str(project), "--env", "dev", "--state-dir", str(state), "--detach", "--ingress-port",
                    str(free_port()), "--capacity", "cpu=64,memory=64Gi", "--timeout", "5", check=False, timeout=120)
            control_pid = int(json.loads((state / "control.json").read_text())["pid"])
            deadline = time.monotonic() + 900
            while True:
                status = api_request(state, "GET", "/status", timeout=60).json()
                instances = [i for s in status["services"] for i in s["instances"]]
                seen.update(i["pid"] for i in instances if i["pid"])
                if sum(i["state"] == "ready" for i in instances) == count:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("not all instances ready after 900 s")
                time.sleep(2)
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                response = api_request(state, "GET", "/ui", timeout=30)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200 and 'data-service="svc' in response.text
            times.sort()
            print(f"real control plane, {count} services ready: GET /ui end to end median "
                  f"{statistics.median(times):.1f} ms, p95 {times[int(0.95 * (len(times) - 1))]:.1f} ms")
            socket_path = json.loads((state / "control.json").read_text())["socket"]
            arrived: list[float] = []
            asked = float("inf")

            def listen() -> None:  # other changes (health events…) also arrive: the first after `scale` counts
                transport = httpx.HTTPTransport(uds=socket_path)
                with httpx.Client(transport=transport, timeout=30) as client:
                    with client.stream("GET", "http://shipyard/ui/live") as stream:
                        for line in stream.iter_lines():
                            if line.startswith("event: change"):
                                arrived.append(time.perf_counter())
                                if arrived[-1] > asked:
                                    return

            listener = threading.Thread(target=listen, daemon=True)
            listener.start()
            time.sleep(2)
            asked = time.perf_counter()
            api_request(state, "POST", "/scale", json={"service": "svc000", "replicas": 2})
            listener.join(30)
            after = [t for t in arrived if t > asked]
            before = len(arrived) - len(after)
            delay = f"{(after[0] - asked) * 1000:.0f} ms" if after else "none within 30 s"
            print(f"live: the change event arrived {delay} after `scale` ({before} other changes in the 2 s before)")
        finally:
            try:
                status = api_request(state, "GET", "/status", timeout=60).json()
                seen.update(i["pid"] for s in status["services"] for i in s["instances"] if i["pid"])
            except Exception:  # noqa: BLE001 - the sweep below runs whatever state the control plane is in
                pass
            try:
                sweep(state, seen | {control_pid}, down_timeout=300)
            except subprocess.TimeoutExpired:  # `down` too slow on a loaded machine: kill what it started by pid
                for pid in seen | {control_pid}:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--real", action="store_true", help="also time GET /ui on a real control plane")
    args = parser.parse_args()
    status = fake_status(args.services)
    render(status, "", views.PAGE_SIZE)  # compile the template once
    print(f"overview of {args.services} services (fake status document), {args.runs} renders each")
    print(f"{'case':<34} {'median ms':>10} {'p95 ms':>8} {'KiB':>6}")
    for label, query, size in ((f"default page ({views.PAGE_SIZE} rows)", "", views.PAGE_SIZE),
                               (f"all {args.services} rows on one page", "", args.services),
                               ("filter 'svc-1' (page of matches)", "svc-1", views.PAGE_SIZE)):
        median, p95, size_bytes = measure(status, query, size, args.runs)
        print(f"{label:<34} {median:>10.2f} {p95:>8.2f} {size_bytes / 1024:>6.1f}")
    if args.real:
        real(args.services, min(args.runs, 20))


if __name__ == "__main__":
    main()
