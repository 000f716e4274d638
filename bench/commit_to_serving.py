"""Commit to serving: from a commit (plus its push webhook) until every instance of the service serves it.

Run: .venv/bin/python bench/commit_to_serving.py [--commits 10] [--replicas 3] [--interval 5]

A real control plane follows a git repository in a temporary directory (`shipyard up --git … --detach`).
The project has one service of the probe app (`tests/fixtures/apps/probe`) with 3 replicas and the default
rolling strategy. Each round commits a version bump and starts the clock at the commit:

- webhook: the control plane fetches every 10 minutes, so only the signed `POST {api}/hooks/git` sent right
  after the commit brings it in;
- polling: the control plane is restarted with `--interval N` and no webhook is sent.

The clock stops when GET /status shows exactly REPLICAS ready instances, all on the new version, and a
request to each of them (directly, on its port) answers with the new version (X-Service-Version).
Status is polled every 20 ms. Between rounds the bench waits until the old instances are gone.

Beside it, the app's own start-up: `python3 app.py` started directly with PORT set, time to the first
200 on /healthz (polled every 5 ms), median of 10. Instances get a whole core each (`--cpu`), so they
start as fast as that.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.controlplane import free_port, run_cli, sweep  # noqa: E402
from tests.projects import probe_service, write_project  # noqa: E402

from _support import api_get, app_startup  # noqa: E402 - the script's directory is on sys.path

SECRET = b"bench-secret"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def get_status(api: str) -> dict:
    return api_get(api, "/status", timeout=5)  # type: ignore[no-any-return]


def version_at(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return response.headers.get("X-Service-Version")
    except OSError:
        return None


def post_webhook(api: str, sha: str, ref: str = "refs/heads/main") -> None:
    body = json.dumps({"ref": ref, "after": sha}).encode()
    signature = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(api + "/hooks/git", data=body, method="POST",
                                     headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 202, response.status


class Bench:
    def __init__(self, tmp: Path, replicas: int, cpu: str) -> None:
        self.repo, self.state = tmp / "origin", tmp / "state"
        self.replicas, self.cpu = replicas, cpu
        self.ingress = free_port()
        self.seen_pids: set[int] = set()
        self.version = 0
        self.repo.mkdir()
        git(self.repo, "init", "--quiet", "--initial-branch=main")
        self.commit()
        (tmp / "secret").write_bytes(SECRET)
        self.secret_file = tmp / "secret"

    def commit(self) -> tuple[str, float]:
        """A version bump, committed; returns the sha and when the commit was made."""
        self.version += 1
        service = probe_service("alpha", replicas=self.replicas, version=f"1.0.{self.version}",
                                resources={"cpu": self.cpu, "memory": "64Mi"})
        write_project(self.repo, [service])
        git(self.repo, "add", "--all")
        git(self.repo, "commit", "--quiet", "-m", f"alpha 1.0.{self.version}")
        return git(self.repo, "rev-parse", "HEAD"), time.perf_counter()

    def up(self, *options: str) -> str:
        run_cli("up", "--git", str(self.repo), "--env", "dev", "--state-dir", str(self.state), "--detach",
                "--ingress-port", str(self.ingress), "--capacity", "cpu=16,memory=16Gi", "--timeout", "120",
                "--api-listen", f"127.0.0.1:{free_port()}", *options, timeout=180)  # webhooks arrive over TCP
        os.environ["SHIPYARD_TOKEN"] = (self.state / "token").read_text().strip()  # for status reads over TCP
        return str(json.loads((self.state / "control.json").read_text())["api"])

    def down(self) -> None:
        run_cli("down", "--state-dir", str(self.state), check=False, timeout=120)

    def serving(self, api: str, version: str) -> bool:
        instances = next(s for s in get_status(api)["services"] if s["name"] == "alpha")["instances"]
        self.seen_pids.update(i["pid"] for i in instances if i["pid"])
        ready = [i for i in instances if i["state"] == "ready"]
        if len(ready) != self.replicas or any(i["version"] != version for i in ready):
            return False
        return all(version_at(i["port"]) == version for i in ready)

    def settled(self, api: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            instances = next(s for s in get_status(api)["services"] if s["name"] == "alpha")["instances"]
            if len(instances) == self.replicas and all(i["state"] == "ready" for i in instances):
                return
            time.sleep(0.05)
        raise RuntimeError("the service did not settle within 60 s")

    def rounds(self, api: str, commits: int, webhook: bool) -> list[float]:
        results = []
        for _ in range(commits):
            self.settled(api)
            time.sleep(0.5)
            sha, committed = self.commit()
            if webhook:
                post_webhook(api, sha)
            version = f"1.0.{self.version}"
            while not self.serving(api, version):
                if time.perf_counter() - committed > 120:
                    raise RuntimeError(f"{version} not served after 120 s")
                time.sleep(0.02)
            results.append(time.perf_counter() - committed)
            print(f"  {version}: {results[-1] * 1000:.0f} ms", flush=True)
        return results


def report(label: str, values: list[float]) -> None:
    print(f"{label}, {len(values)} commits:\n  median {statistics.median(values) * 1000:.0f} ms   "
          f"max {max(values) * 1000:.0f} ms   min {min(values) * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=10)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between fetches, polling only")
    parser.add_argument("--cpu", default="1", help="CPU of each instance (a whole core: an unthrottled start-up)")
    args = parser.parse_args()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-commit-") as tmp:
        os.environ["GIT_CONFIG_GLOBAL"] = str(Path(tmp) / "gitconfig")  # the developer's git config stays out
        os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
        for key, value in (("NAME", "Bench"), ("EMAIL", "bench@localhost")):
            os.environ[f"GIT_AUTHOR_{key}"] = os.environ[f"GIT_COMMITTER_{key}"] = value
        bench = Bench(Path(tmp), args.replicas, args.cpu)
        try:
            api = bench.up("--interval", "10m", "--webhook-secret-file", str(bench.secret_file))
            print(f"webhook (fetch interval 10 min), {args.replicas} replicas:", flush=True)
            webhook = bench.rounds(api, args.commits, webhook=True)
            bench.down()
            api = bench.up("--interval", f"{args.interval:g}s")
            print(f"polling only (interval {args.interval:g} s), {args.replicas} replicas:", flush=True)
            polling = bench.rounds(api, args.commits, webhook=False)
        finally:
            control = json.loads((bench.state / "control.json").read_text())["pid"] if \
                (bench.state / "control.json").exists() else 0
            sweep(bench.state, bench.seen_pids | {control})
        startup = app_startup(10)
    print()
    report(f"commit + webhook -> all {args.replicas} replicas serving the new version", webhook)
    report(f"commit, polling every {args.interval:g} s -> all {args.replicas} replicas serving", polling)
    print(f"probe app start-up (spawn -> first 200 /healthz), 10 runs:\n  median "
          f"{statistics.median(startup) * 1000:.0f} ms   max {max(startup) * 1000:.0f} ms")
    print(f"targets: webhook <= 3 s + start-up; polling <= {args.interval:g} s + start-up  "
          f"(run time {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
