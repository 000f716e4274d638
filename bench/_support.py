"""What the benchmarks share: a control plane whose status reads survive a transient API error, and
the probe app's own start-up time (the figure engine figures are quoted beside).

Imported by the scripts in this directory (the script's directory is on sys.path).
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from typing import Any

import httpx

from tests.controlplane import ControlPlane, free_port, sweep
from tests.projects import PROBE_APP


class BenchControlPlane(ControlPlane):
    """tests.controlplane.ControlPlane, except that:

    - a failed `shipyard status -o json` (e.g. HTTP 500 from the API) is retried for up to 10 s and
      recorded in `api_errors`, which the benchmarks print: the measured thing is the data plane, and
      a status read is only how the bench learns pids and readiness;
    - teardown always ends with the sweep (`shipyard down`, then SIGKILL by pid), even if the last
      status read fails.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api_errors: list[str] = []

    def status(self) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while True:
            try:
                return super().status()
            except AssertionError as exc:
                self.api_errors.append(_last_line(str(exc)))
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def teardown(self) -> None:
        try:
            super().teardown()
        except Exception as exc:  # noqa: BLE001 - whatever failed, every process must still go
            self.api_errors.append(f"during teardown: {_last_line(str(exc))}")
            sweep(self.state_dir, self.seen_pids | {self._maybe_control_pid()})

    def report_api_errors(self) -> None:
        if self.api_errors:
            print(f"note: {len(self.api_errors)} failed control-plane API reads (status / rollout status), "
                  f"retried; last: {self.api_errors[-1]}")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return f"{lines[0][:100]} ... {lines[-1][:200]}" if lines else text


def healthz(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def app_startup(runs: int) -> list[float]:
    """Seconds from spawning `python3 app.py` to its first 200 on /healthz."""
    times = []
    for _ in range(runs):
        port = free_port()
        started = time.perf_counter()
        process = subprocess.Popen(["python3", "app.py"], cwd=PROBE_APP, env={**os.environ, "PORT": str(port)},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not healthz(port):
                if process.poll() is not None:
                    raise RuntimeError("probe app exited during start-up")
                if time.perf_counter() - started > 10:
                    raise RuntimeError("probe app did not answer in 10 s")
                time.sleep(0.005)
            times.append(time.perf_counter() - started)
        finally:
            process.kill()
            process.wait()
    return times


def api_get(api: str, path: str, timeout: float = 5) -> Any:
    """GET a control plane's JSON at API (control.json's "api": `unix:///STATE/api.sock`, or the TCP URL of
    `up --api-listen`, then with the bearer token from SHIPYARD_TOKEN, as the CLI does)."""
    if api.startswith("unix://"):
        transport, base, headers = httpx.HTTPTransport(uds=api.removeprefix("unix://")), "http://shipyard", {}
    else:
        transport, base = None, api
        headers = {"Authorization": f"Bearer {os.environ['SHIPYARD_TOKEN']}"} if os.environ.get("SHIPYARD_TOKEN") else {}
    with httpx.Client(transport=transport, timeout=timeout) as client:
        response = client.get(base + path, headers=headers)
        response.raise_for_status()
        return response.json()
