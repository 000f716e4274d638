"""User-visible latency of a service with a parallel run on vs off, side by side in one run.

Run: .venv/bin/python bench/parallel_run.py [--rate 100] [--seconds 15] [--percent 100]

One control plane (`shipyard up --detach`, temporary directories, free ports) with two services of the probe
test app, `alpha` and `beta`, 2 replicas each, both a canary strategy; `alpha` has
`parallelRun: {percent: --percent, methods: [GET]}` (no maxDifferences, minRequests out of reach, so its
canary holds in the mirror phase and the copies flow for as long as the bench wants). A paced load of
--rate GET /price per second on each service's endpoint (half keep-alive clients, half a new connection
per request), both at once:

  1. "off": --seconds of load on both, no rollout under way;
  2. `alpha` 2.0.0 (PRICE=12: one JSON field changes) applied; once the comparator has compared copies,
     "on": --seconds of load on both, `alpha`'s parallel run copying --percent % of its requests to the
     comparator (which asks one candidate and two live instances each time).

Printed per window and service: requests, failures, p50/p99/max of the answers' latency as the client
saw it, and the versions that answered (`alpha` must only ever answer 1.0.0); then the comparator's count
of compared copies and differences (`shipyard rollout diff alpha -o json`). `beta` in the same window is
the control for machine noise: the copies' CPU (Envoy's mirror, the comparator, three more requests per
copy to the instances) is shared by both services on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from urllib.parse import quote
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _support import BenchControlPlane  # noqa: E402
from tests.controlplane import wait_for  # noqa: E402
from tests.projects import probe_service, write_project  # noqa: E402
from zero_downtime import Outcome, PacedLoad  # noqa: E402


def services(alpha_version: str, price: int, args: argparse.Namespace) -> list[dict]:
    canary = {"steps": [50, 100], "interval": "5s", "minRequests": 1_000_000_000}
    parallel = {"percent": args.percent, "methods": ["GET"]}
    return [probe_service("alpha", version=alpha_version, replicas=2, env={"PRICE": str(price)},
                          resources={"cpu": "1", "memory": "64Mi"},
                          strategy={"type": "canary", "canary": {**canary, "parallelRun": parallel}}),
            probe_service("beta", version="1.0.0", replicas=2, resources={"cpu": "1", "memory": "64Mi"},
                          strategy={"type": "canary", "canary": canary})]


def figures(outcomes: list[Outcome]) -> str:
    ok = sorted(o.latency * 1000 for o in outcomes if not o.failure)
    failed = sum(1 for o in outcomes if o.failure)
    if not ok:
        return f"{len(outcomes)} requests, {failed} failed"
    p99 = ok[min(len(ok) - 1, int(len(ok) * 0.99))]
    versions = dict(Counter(o.version for o in outcomes))
    return (f"{len(outcomes):5d} requests, {failed} failed, p50 {statistics.median(ok):5.2f} ms, "
            f"p99 {p99:6.2f} ms, max {ok[-1]:6.1f} ms; answered by {versions}")


def window(ports: dict[str, int], args: argparse.Namespace) -> dict[str, list[Outcome]]:
    loads = {name: PacedLoad(port, args.rate, args.clients, path="/price") for name, port in ports.items()}
    for load in loads.values():
        load.__enter__()
    time.sleep(args.seconds)
    for load in loads.values():
        load.__exit__(None, None, None)
    return {name: load.outcomes for name, load in loads.items()}


def envoy_copies(admin: str) -> int:
    """Requests Envoy completed to the comparator's cluster (copies; their answers were discarded)."""
    wanted = quote(r"^cluster\.alpha_parallel-run\.upstream_rq_completed$", safe="")
    with urllib.request.urlopen(f"{admin}/stats?filter={wanted}", timeout=5) as response:
        text = response.read().decode()
    return sum(int(line.rsplit(":", 1)[1]) for line in text.splitlines() if ":" in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second on each service")
    parser.add_argument("--clients", type=int, default=4, help="client threads per service, half keep-alive")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each window")
    parser.add_argument("--percent", type=float, default=100.0, help="parallelRun.percent of alpha")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-parallel-") as tmp:
        project = Path(tmp) / "project"
        write_project(project, services("1.0.0", 10, args))
        cp = BenchControlPlane(project, Path(tmp) / "state")
        try:
            cp.up("--capacity", "cpu=64,memory=64Gi")
            cp.wait_ready("alpha", 2, timeout=60)
            cp.wait_ready("beta", 2, timeout=60)
            ports = {name: int(cp.service(name)["endpoint"].rsplit(":", 1)[1]) for name in ("alpha", "beta")}
            print(f"{args.rate:g} GET /price per second on each of alpha and beta, {args.clients} clients each, "
                  f"{args.seconds:g} s per window; alpha's parallelRun.percent {args.percent:g}", flush=True)
            off = window(ports, args)
            write_project(project, services("2.0.0", 12, args))
            cp.cli("apply")
            wait_for(lambda: cp.service("alpha")["rollout"]["phase"] == "mirror", timeout=60, what="the mirror phase")
            admin = cp.status()["data_plane"]["admin"]
            warm = argparse.Namespace(**{**vars(args), "seconds": 3.0})
            window(ports, warm)  # the comparator process starts up meanwhile; not measured
            before = json.loads(cp.cli("rollout", "diff", "alpha", "-o", "json").stdout)
            copies_before = envoy_copies(admin)
            on = window(ports, args)
            copies = envoy_copies(admin) - copies_before
            report = json.loads(cp.cli("rollout", "diff", "alpha", "-o", "json").stdout)
            phase = cp.service("alpha")["rollout"]["phase"]
        finally:
            cp.teardown()
            cp.report_api_errors()
    print(f"parallel run off (no rollout):")
    for name in ("alpha", "beta"):
        print(f"  {name}: {figures(off[name])}")
    print(f"parallel run on alpha (canary {phase}):")
    print(f"  alpha: {figures(on['alpha'])}")
    print(f"  beta : {figures(on['beta'])}  (no parallel run: the control)")
    print(f"copies Envoy sent the comparator during the window: {copies}")
    print(f"comparator (whole run; during the window: {report['compared'] - before['compared']} compared, "
          f"{report.get('dropped', 0) - before.get('dropped', 0)} dropped): {report['compared']} copies compared, "
          f"{report['differing']} with unexplained differences "
          f"({', '.join(d['field'] for d in report['differences']) or 'none'}), {report['failed']} not compared "
          f"(a target did not answer), {report.get('dropped', 0)} dropped (64 comparisons under way); "
          f"noise cancelled: {sorted({f for fs in report['noise'].values() for f in fs})}")
    stray = sum(1 for o in on["alpha"] if o.version not in ("1.0.0", ""))
    print(f"user answers from the candidate during the parallel run: {stray} (target 0)")


if __name__ == "__main__":
    main()
