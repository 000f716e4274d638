"""What an idle control plane costs with many instances: CPU (% of one core) and RSS.

Run: .venv/bin/python bench/engine_idle.py [--services 100] [--replicas 2] [--seconds 30]

A real control plane (`shipyard up --detach --capacity cpu=64,memory=64Gi`, temp state dir) runs
100 services of the probe app x 2 replicas (cpu 10m, memory 32Mi each). The service documents carry
no `health` block, so the format's default probes apply (readiness every 1 s, liveness every 5 s).
Once all 200 instances are ready (progress printed), the bench sleeps 5 s to settle and then reads
/proc/PID/stat (utime + stime) of the control plane process at the start and the end of a 30 s idle
window: CPU = delta ticks / CLK_TCK / seconds, as % of one core. RSS is VmRSS from /proc/PID/status
at the end of the window. The control plane's own children (the instances) are not counted.
Target (issue): idle < 5 % of one core with 200 instances.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.controlplane import free_port, run_cli, sweep  # noqa: E402
from tests.projects import probe_service, write_project  # noqa: E402

from _support import api_get  # noqa: E402 - the script's directory is on sys.path

TICKS = os.sysconf("SC_CLK_TCK")


def get_status(api: str) -> dict:
    return api_get(api, "/status", timeout=30)  # type: ignore[no-any-return]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS   # utime, stime (fields 14, 15)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--hold", action="store_true", help="after measuring, wait for Enter before stopping "
                                                              "(to attach a profiler)")
    args = parser.parse_args()
    began = time.perf_counter()
    expected = args.services * args.replicas

    with tempfile.TemporaryDirectory(prefix="shipyard-bench-idle-") as tmp:
        tmp_path = Path(tmp)
        services = []
        for n in range(args.services):
            service = probe_service(f"svc{n:03d}", replicas=args.replicas,
                                    resources={"cpu": "10m", "memory": "32Mi"})
            del service["health"]   # measure the format's default probe intervals
            services.append(service)
        project = write_project(tmp_path / "project", services)
        state = tmp_path / "state"
        seen_pids: set[int] = set()
        control_pid = 0
        try:
            run_cli("up", str(project), "--env", "dev", "--state-dir", str(state), "--detach",
                    "--ingress-port", str(free_port()), "--capacity", "cpu=64,memory=64Gi", "--timeout", "5",
                    check=False, timeout=120)   # returns (with a warning) after 5 s; the bench polls from here
            control = json.loads((state / "control.json").read_text())
            control_pid, api = int(control["pid"]), control["api"]
            print(f"control plane pid {control_pid}; waiting for {expected} ready instances", flush=True)
            deadline, last = time.monotonic() + 900, -1
            while True:
                status = get_status(api)
                instances = [i for s in status["services"] for i in s["instances"]]
                seen_pids.update(i["pid"] for i in instances if i["pid"])
                ready = sum(i["state"] == "ready" for i in instances)
                if ready != last:
                    print(f"  {ready}/{expected} ready ({time.perf_counter() - began:.0f} s)", flush=True)
                    last = ready
                if ready == expected and len(instances) == expected:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {ready}/{expected} instances ready after 900 s")
                time.sleep(1)
            ready_after = time.perf_counter() - began
            time.sleep(5)
            cpu0, t0 = cpu_seconds(control_pid), time.monotonic()
            time.sleep(args.seconds)
            cpu1, t1 = cpu_seconds(control_pid), time.monotonic()
            rss = rss_mib(control_pid)
            status = get_status(api)
            instances = [i for s in status["services"] for i in s["instances"]]
            seen_pids.update(i["pid"] for i in instances if i["pid"])
            still_ready = sum(i["state"] == "ready" for i in instances)
            restarts = sum(i["restarts"] for i in instances)
            cpu_pct = 100 * (cpu1 - cpu0) / (t1 - t0)
            print()
            print(f"instances: {len(instances)} ({still_ready} ready, {restarts} restarts) in "
                  f"{len(status['services'])} services; all ready {ready_after:.0f} s after start")
            print(f"control plane idle CPU over {t1 - t0:.1f} s: {cpu_pct:.1f} % of one core "
                  f"({cpu1 - cpu0:.2f} CPU-s)   target < 5 %: {'met' if cpu_pct < 5 else 'MISSED'}")
            print(f"control plane RSS: {rss:.1f} MiB")
            if args.hold:
                input(f"holding; control plane pid {control_pid}. Enter to stop ")
        finally:
            sweep(state, seen_pids | {control_pid}, down_timeout=300)
    print(f"run time {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
