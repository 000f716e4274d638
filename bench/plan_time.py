"""How long one pure reconcile plan takes for a large environment: `shipyard.engine.plan.plan(World(...))`.

Run: .venv/bin/python bench/plan_time.py [--services 1000] [--runs 50]

No processes: the World is built in memory, as in tests/engine/test_plan.py.
  steady   every service at 2 ready instances of its desired release, rollout complete
           (the common pass: plans nothing)
  rolling  every service mid rolling update (4 replicas, maxSurge 25 %, maxUnavailable 0): 3 ready old
           instances and 2 ready new ones, rollout progressing (plans one old stop per service)
Prints the median (and min/max) wall time of N calls per variant, in ms, after 3 warm-up calls.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from shipyard.engine.model import (  # noqa: E402
    Capacity, DesiredService, Instance, Probe, Release, Rolling, Rollout, State)
from shipyard.engine.plan import World, plan  # noqa: E402

GiB = 1024**3
MiB = 1024**2
NOW = 1000.0


def release(service: str, rid: str) -> Release:
    probe = Probe("/healthz", 1.0, 1.0, 3)
    return Release(rid, service, "1", "snap", ("python3", "app.py"), (), 0.01, 32 * MiB, probe, probe, 30.0)


def instance(iid: str, service: str, rid: str, port: int, state: State = State.READY) -> Instance:
    return Instance(id=iid, service=service, release=rid, port=port, state=state, created_at=float(port % 500),
                    pid=port, started_at=1.0, ready_since=1.0 if state is State.READY else None)


def steady(services: int) -> World:
    desired, instances, rollouts = {}, [], {}
    for n in range(services):
        name, rid = f"svc{n:04d}", f"svc{n:04d}-new"
        desired[name] = DesiredService(name, release(name, rid), 2, "rolling", Rolling("25%", 0, 0.0, 600.0), 5.0,
                                       None)
        instances += [instance(f"{name}-{k}", name, rid, 20000 + 2 * n + k) for k in range(2)]
        rollouts[name] = Rollout(name, rid, 0.0, "rolling", status="complete")
    return World(desired, tuple(instances), rollouts, Capacity(cpu=64, memory=64 * GiB), NOW)


def rolling(services: int) -> World:
    desired, instances, rollouts = {}, [], {}
    for n in range(services):
        name, new, old = f"svc{n:04d}", f"svc{n:04d}-new", f"svc{n:04d}-old"
        desired[name] = DesiredService(name, release(name, new), 4, "rolling", Rolling("25%", 0, 0.0, 600.0), 5.0,
                                       None)
        base = 20000 + 5 * n
        instances += [instance(f"{name}-o{k}", name, old, base + k) for k in range(3)]
        instances += [instance(f"{name}-n{k}", name, new, base + 3 + k) for k in range(2)]
        rollouts[name] = Rollout(name, new, NOW - 10, "rolling", status="progressing", previous=old)
    return World(desired, tuple(instances), rollouts, Capacity(cpu=64, memory=64 * GiB), NOW)


def measure(world: World, runs: int) -> tuple[list[float], object]:
    for _ in range(3):
        result = plan(world)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = plan(world)
        times.append(time.perf_counter() - started)
    return times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    began = time.perf_counter()
    for label, build in (("steady", steady), ("rolling", rolling)):
        world = build(args.services)
        times, result = measure(world, args.runs)
        print(f"{label:8} {args.services} services, {len(world.instances)} instances: "
              f"median {statistics.median(times) * 1000:.2f} ms  min {min(times) * 1000:.2f}  "
              f"max {max(times) * 1000:.2f}  ({args.runs} runs; plan: {len(result.start)} starts, "
              f"{len(result.stop)} stops, {len(result.rollouts)} rollout updates)")
    print(f"run time {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
