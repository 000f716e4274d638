"""The README's two-environment tour on one machine: dev and prod of examples/shop side by side, then
a catalog canary and a frontend blue-green switch in prod, under load (issue 10, observed failure 2).

A copy of examples/shop in a temporary directory (endpoint ports moved to free ones, so a running
`make demo` is not disturbed), two real control planes (`shipyard up --detach`, distinct state
directories and ingress ports, machine capacity, one capacity ledger in the temporary directory),
a paced load on prod's catalog endpoint, then one apply that gives prod a new catalog and frontend
version. Prints how long each rollout took, its outcome, every Schedulable condition seen on the
way, and what each environment holds in the ledger.

    .venv/bin/python bench/shop_two_environments.py [--rate 60] [--timeout 600] [--prod-cpu 250m]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _support import BenchControlPlane  # noqa: E402
from tests.controlplane import free_port  # noqa: E402
from tests.load import Load  # noqa: E402
from tests.shop import publish_shop  # noqa: E402


def copy_shop(target: Path, prod_cpu: str | None) -> Path:
    shutil.copytree(ROOT / "examples" / "shop", target)
    for environment in ("dev", "prod"):
        overlay = target / "environments" / f"{environment}.yaml"
        text = re.sub(r"port: \d+", lambda _: f"port: {free_port()}", overlay.read_text())
        if environment == "prod" and prod_cpu:
            text = re.sub(r"resources: \{cpu: \w+,", f"resources: {{cpu: {prod_cpu},", text)
        overlay.write_text(text)
    return target


def new_versions(project: Path) -> None:
    """prod: catalog 1.0.0 → 1.1.0 (canary), frontend → 1.1.0 (blue-green)."""
    overlay = project / "environments" / "prod.yaml"
    text = overlay.read_text().replace('version: "1.0.0"', 'version: "1.1.0"', 1)
    text = text.replace("  frontend:\n", '  frontend:\n    version: "1.1.0"\n', 1)
    overlay.write_text(text)


class Watch(threading.Thread):
    """Every Schedulable condition any environment shows, with when it was first seen (time.monotonic())."""

    def __init__(self, planes: dict[str, BenchControlPlane]) -> None:
        super().__init__(daemon=True)
        self.planes, self.seen, self.stop = planes, {}, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for name, plane in self.planes.items():
                try:
                    conditions = plane.status()["conditions"]
                except Exception:  # noqa: BLE001 - a failed read is retried on the next round
                    continue
                for c in conditions:
                    if c["type"] == "Schedulable":
                        self.seen.setdefault((name, c["reason"], c["message"]), time.monotonic())
            self.stop.wait(0.5)


def held(plane: BenchControlPlane) -> str:
    capacity: dict[str, Any] = plane.status()["capacity"]
    others = ", ".join(f"{o['environment']} {o['cpu']:g} CPU" for o in capacity["others"]) or "none"
    return (f"holds {capacity['held']['cpu']:g} CPU / {capacity['held']['memory'] / 2**20:.0f}Mi of "
            f"{capacity['cpu']:g} CPU; free {capacity['free']['cpu']:g} CPU; others: {others}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=60.0, help="requests per second on prod's catalog")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for each rollout")
    parser.add_argument("--prod-cpu", help="cpu of prod's catalog and orders instead of the example's "
                                           "(250m: the sizes that stalled the canary)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-"))
    os.environ["SHIPYARD_LEDGER"] = str(work / "ledger.json")
    os.environ["SHIPYARD_HOME"] = str(work / "home")  # its default store: the shop's two versions
    publish_shop(("1.0.0", "1.1.0"))
    project = copy_shop(work / "shop", args.prod_cpu)
    dev = BenchControlPlane(project, work / "dev", "dev")
    prod = BenchControlPlane(project, work / "prod", "prod")
    print(f"machine: {os.cpu_count()} cores; dev and prod of examples/shop with machine capacity")
    try:
        begun = time.monotonic()
        dev.up()
        prod.up()
        for name, count in (("catalog", 3), ("orders", 3), ("frontend", 2)):
            prod.wait_ready(name, count, timeout=120)
        print(f"dev and prod ready in {time.monotonic() - begun:.1f} s")
        print(f"  dev:  {held(dev)}\n  prod: {held(prod)}")
        catalog = int(prod.service("catalog")["endpoint"].rsplit(":", 1)[1])
        watch = Watch({"dev": dev, "prod": prod})
        watch.start()
        clients = 2
        with Load(catalog, "/products", clients=clients, pause=clients / args.rate, limit_s=args.timeout * 2) as load:
            new_versions(project)
            prod.cli("apply")
            applied = time.monotonic()
            outcomes = {}
            for service in ("frontend", "catalog"):
                result = prod.cli("rollout", "status", service, "--timeout", str(args.timeout), check=False)
                last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr.strip()
                outcomes[service] = (result.returncode, time.monotonic() - applied, last)
            during = held(prod)
        watch.stop.set()
        for service, (code, seconds, last) in outcomes.items():
            print(f"{service}: exit {code} after {seconds:.1f} s — {last}")
        print(f"load on prod catalog: {load.result.ok} ok, {len(load.result.failures)} failed; "
              f"versions {dict(load.result.versions)}")
        print(f"  prod at the end: {during}")
        print(f"Schedulable conditions seen: {len(watch.seen)} (time after `apply` returned; status is polled "
              f"through the CLI, one environment after the other)")
        for (name, reason, message), at in sorted(watch.seen.items(), key=lambda item: item[1]):
            print(f"  {at - applied:6.1f} s  {name}: {reason}: {message}")
        dev.report_api_errors()
        prod.report_api_errors()
    finally:
        prod.teardown()
        dev.teardown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
