"""Feature flags: OFREP evaluations per second and latency with 100 flags, and commit → new value served.

Run: .venv/bin/python bench/flags.py [--seconds 5] [--clients 4] [--commits 10]

A real control plane follows a git repository in a temporary directory (`shipyard up --git … --detach`,
fetching every 10 minutes, so only the signed push webhook sent right after each commit brings a commit in).
The project has one probe service and 100 flags in flagd's format: 40 static, 30 with a JsonLogic rule
(`ends_with` on the email, then a `sem_ver` check), 30 with a 10/90 `fractional` split on the targeting key.

1. Single evaluations: CLIENTS threads, each with its own keep-alive connection (httpx), POST
   `/ofrep/v1/evaluate/flags/{key}` with a random flag and a random context, for SECONDS seconds.
2. Bulk evaluations: the same with `POST /ofrep/v1/evaluate/flags` (all 100 flags per request).
   Evaluations per second = requests per second x 100.
3. Commit → served: COMMITS rounds; each commits a new defaultVariant of one flag, sends the webhook, and
   polls the OFREP listener every 5 ms until it answers the new value (the clock runs from the commit, as
   a user sees it: fetch, export, validation and apply are inside). Instance pids are checked unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _support import api_get  # noqa: E402 - the script's directory is on sys.path
from tests.controlplane import free_port, run_cli, sweep  # noqa: E402
from tests.projects import probe_service, write_project  # noqa: E402

SECRET = b"bench-secret"
FLAG_COUNT = 100


def flag_document(round_: int) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    for index in range(FLAG_COUNT):
        key = f"flag-{index:03d}"
        flag: dict[str, Any] = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}
        if index % 10 < 3:
            flag["targeting"] = {"fractional": [["on", 10], ["off", 90]]}
        elif index % 10 < 6:
            flag["targeting"] = {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on",
                                        {"sem_ver": [{"var": "appVersion"}, ">=", "2.0.0"]}, "on", None]}
        flags[key] = flag
    flags["flag-009"]["defaultVariant"] = "on" if round_ % 2 else "off"  # what each commit changes
    return {"flags": flags}


def context(rng: random.Random) -> dict[str, Any]:
    user = f"user-{rng.randrange(1_000_000)}"
    return {"targetingKey": user, "email": f"{user}@{rng.choice(['example.com', 'example.org'])}",
            "appVersion": rng.choice(["1.9.0", "2.0.0", "2.3.1"])}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def commit(repo: Path, round_: int) -> str:
    write_project(repo, [probe_service("alpha")])
    (repo / "flags").mkdir(exist_ok=True)
    (repo / "flags" / "bench.json").write_text(json.dumps(flag_document(round_), indent=1))
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", f"flags round {round_}")
    return git(repo, "rev-parse", "HEAD")


def post_webhook(api: str, sha: str) -> None:
    body = json.dumps({"ref": "refs/heads/main", "after": sha}).encode()
    signature = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    response = httpx.post(api + "/hooks/git", content=body, timeout=5,
                          headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"})
    assert response.status_code == 202, response.status_code


def load(url: str, bulk: bool, seconds: float, clients: int) -> tuple[int, list[float]]:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        rng = random.Random(index)
        with httpx.Client(timeout=5) as session:
            while time.perf_counter() < deadline:
                target = url if bulk else f"{url}/flag-{rng.randrange(FLAG_COUNT):03d}"
                started = time.perf_counter()
                response = session.post(target, json={"context": context(rng)})
                latencies[index].append(time.perf_counter() - started)
                assert response.status_code == 200, response.text

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    merged = sorted(x for part in latencies for x in part)
    return int(len(merged) / elapsed), merged


def quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--commits", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-flags-") as tmp:
        repo, state = Path(tmp) / "origin", Path(tmp) / "state"
        repo.mkdir()
        git(repo, "init", "--quiet", "--initial-branch=main")
        commit(repo, 0)
        (Path(tmp) / "secret").write_bytes(SECRET)
        pids: set[int] = set()
        try:
            run_cli("up", "--git", str(repo), "--env", "dev", "--state-dir", str(state), "--detach",
                    "--ingress-port", str(free_port()), "--interval", "600", "--webhook-secret-file",
                    str(Path(tmp) / "secret"), "--timeout", "120", "--api-listen", f"127.0.0.1:{free_port()}",
                    timeout=180)  # the webhook arrives over TCP
            api = json.loads((state / "control.json").read_text())["api"]
            os.environ["SHIPYARD_TOKEN"] = (state / "token").read_text().strip()
            status = api_get(api, "/status")
            ofrep = status["ofrep"] + "/ofrep/v1/evaluate/flags"
            pids = {i["pid"] for s in status["services"] for i in s["instances"]}
            print(f"{len(status['flags'])} flags at {status['ofrep']}; {args.clients} clients, {args.seconds:g} s each")
            for bulk in (False, True):
                rate, latencies = load(ofrep, bulk, args.seconds, args.clients)
                evaluations = rate * (FLAG_COUNT if bulk else 1)
                print(f"  {'bulk  ' if bulk else 'single'}: {rate:,} req/s = {evaluations:,} evaluations/s   "
                      f"p50 {quantile(latencies, 0.5):.2f} ms   p99 {quantile(latencies, 0.99):.2f} ms", flush=True)
            times = []
            for round_ in range(1, args.commits + 1):
                expected = round_ % 2 == 1
                sha = commit(repo, round_)
                committed = time.perf_counter()
                post_webhook(api, sha)
                while httpx.post(f"{ofrep}/flag-009", json={"context": {}}).json().get("value") is not expected:
                    if time.perf_counter() - committed > 30:
                        raise RuntimeError(f"round {round_}: new value not served after 30 s")
                    time.sleep(0.005)
                times.append((time.perf_counter() - committed) * 1000)
            after = api_get(api, "/status")
            same = {i["pid"] for s in after["services"] for i in s["instances"]} == pids
            print(f"  commit -> served ({args.commits} commits, webhook): median {statistics.median(times):.0f} ms   "
                  f"max {max(times):.0f} ms   min {min(times):.0f} ms; instances restarted: {'none' if same else 'SOME'}")
        finally:
            sweep(state, pids)


if __name__ == "__main__":
    main()
