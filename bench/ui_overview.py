"""Render time of the dashboard's overview with 200 services (rendering only).

The status document is a fake one of 200 services shaped like engine/status.py's (each with 2 ready
instances, traffic figures, a few canaries in progress and one failed rollout): this measures what the
dashboard adds — sorting, paging and the Jinja2 template — not the engine's own status assembly (see
engine_idle.py for a control plane with 200 services). Prints the median and p95 of N renders for the
default page (50 rows), all 200 rows on one page, and a filter.

    .venv/bin/python bench/ui_overview.py [--services 200] [--runs 50]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from shipyard.ui import views
from shipyard.ui.pages import TEMPLATES


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--runs", type=int, default=50)
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


if __name__ == "__main__":
    main()
