"""How fast the engine replaces a crashed instance: SIGKILL -> a new process that the control plane sees `ready`.

Run: .venv/bin/python bench/engine_restart.py [--kills 20]

A real control plane (`shipyard up --detach`, temp state dir) runs N services of the probe app, 1 replica each.
Each service's instance is SIGKILLed exactly once, one service at a time, so every kill measures the
first-crash path (restart immediately, no back-off): repeated kills of one instance would back off 1 s, 2 s, ...
The clock starts at the kill and stops when the control plane's status (GET /status, the document
`shipyard status -o json` prints) shows a different pid for that service in state `ready`; status is polled
every 10 ms. Between kills the bench waits 1.5 s with everything ready.

The services keep the test fixture's probes (readiness every 200 ms, liveness every 500 ms), so the readiness
interval bounds the figure from below by up to 200 ms; pass --default-health to use the format's defaults
(readiness every 1 s) instead.

Beside it, the app's own start-up: `python3 app.py` of the probe app started directly with PORT set, time to
the first 200 on /healthz (polled every 5 ms), median of N.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.controlplane import free_port, run_cli, sweep  # noqa: E402
from tests.projects import probe_service, write_project  # noqa: E402

from _support import api_get, app_startup  # noqa: E402 - the script's directory is on sys.path


def get_status(api: str) -> dict:
    return api_get(api, "/status", timeout=5)  # type: ignore[no-any-return]


def instances_of(status: dict, name: str) -> list[dict]:
    return next(s for s in status["services"] if s["name"] == name)["instances"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--default-health", action="store_true", help="use the format's default probes")
    parser.add_argument("--cpu", default="1", help="CPU of each instance (default a whole core: an unthrottled start-up)")
    args = parser.parse_args()
    began = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="shipyard-bench-restart-") as tmp:
        tmp_path = Path(tmp)
        names = [f"svc{n:02d}" for n in range(args.kills)]
        services = []
        for name in names:
            # A whole core each: the app's start-up beside the figure is measured unthrottled, so the
            # instance must not run under a smaller CPU quota (at 100m, python's start-up alone takes ~1.3 s).
            service = probe_service(name, resources={"cpu": args.cpu, "memory": "64Mi"})
            if args.default_health:
                del service["health"]
            services.append(service)
        project = write_project(tmp_path / "project", services)
        state = tmp_path / "state"
        seen_pids: set[int] = set()
        control_pid = 0
        try:
            run_cli("up", str(project), "--env", "dev", "--state-dir", str(state), "--detach",
                    "--ingress-port", str(free_port()), "--timeout", "120", "--capacity", "cpu=64,memory=64Gi",
                    timeout=180)
            control = json.loads((state / "control.json").read_text())
            control_pid, api = int(control["pid"]), control["api"]

            def all_ready() -> dict:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    status = get_status(api)
                    instances = [i for s in status["services"] for i in s["instances"]]
                    seen_pids.update(i["pid"] for i in instances if i["pid"])
                    if len(instances) == len(names) and all(i["state"] == "ready" for i in instances):
                        return status
                    time.sleep(0.05)
                raise RuntimeError("services did not all become ready within 60 s")

            all_ready()
            print(f"{len(names)} services x 1 replica ready; control plane pid {control_pid}", flush=True)
            results: list[float] = []
            spawns: list[float] = []   # kill -> a new pid shows in status (any state)
            for name in names:
                time.sleep(1.5)
                (old,) = instances_of(all_ready(), name)
                assert old["restarts"] == 0, f"{name} had restarted already: back-off would apply"
                killed_at = time.perf_counter()
                os.kill(old["pid"], signal.SIGKILL)
                spawned = None
                while True:
                    current = instances_of(get_status(api), name)
                    seen_pids.update(i["pid"] for i in current if i["pid"])
                    if spawned is None and any(i["pid"] and i["pid"] != old["pid"] for i in current):
                        spawned = time.perf_counter() - killed_at
                    ready = [i for i in current if i["state"] == "ready" and i["pid"] and i["pid"] != old["pid"]]
                    if ready:
                        break
                    if time.perf_counter() - killed_at > 30:
                        raise RuntimeError(f"{name}: no ready replacement 30 s after the kill")
                    time.sleep(0.01)
                elapsed = time.perf_counter() - killed_at
                results.append(elapsed)
                spawns.append(spawned if spawned is not None else elapsed)
                print(f"  {name}: pid {old['pid']} -> {ready[0]['pid']} seen after {spawns[-1] * 1000:.0f} ms, "
                      f"ready after {elapsed * 1000:.0f} ms "
                      f"(restarts {ready[0]['restarts']})", flush=True)
        finally:
            sweep(state, seen_pids | {control_pid}, down_timeout=60)

    startup = app_startup(args.kills)
    probes = "format defaults (readiness 1s)" if args.default_health else "fixture probes (readiness 200ms)"
    print()
    print(f"kill -> ready replacement, {len(results)} first crashes, {probes}:")
    print(f"  median {statistics.median(results) * 1000:.0f} ms   max {max(results) * 1000:.0f} ms   "
          f"min {min(results) * 1000:.0f} ms")
    print(f"  (kill -> new pid visible in status: median {statistics.median(spawns) * 1000:.0f} ms, "
          f"max {max(spawns) * 1000:.0f} ms)")
    print(f"probe app start-up (spawn -> first 200 /healthz), {len(startup)} runs:")
    print(f"  median {statistics.median(startup) * 1000:.0f} ms   max {max(startup) * 1000:.0f} ms")
    print(f"run time {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
