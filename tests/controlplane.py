"""A real control plane for tests: started with the real CLI, stopped (and swept) when the test ends."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

import httpx

from shipyard.api.unix_transport import unix_transport

SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(*args: str, check: bool = True, timeout: float = 120, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*SHIPYARD, *args], capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})}, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"shipyard {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def http_get(url: str, timeout: float = 5, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def api_request(state_dir: Path, method: str, path: str, timeout: float = 10, **kwargs: Any) -> httpx.Response:
    """One request to a control plane's API over its Unix socket (`STATE/api.sock`)."""
    socket_path = json.loads((state_dir / "control.json").read_text())["socket"]
    with httpx.Client(transport=unix_transport(socket_path), timeout=timeout) as client:
        return client.request(method, "http://shipyard" + path, **kwargs)


def wait_for(predicate: Callable[[], Any], timeout: float = 20, interval: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f": {last_error}" if last_error else ""))


class ControlPlane:
    """One environment under test, driven only through the CLI and the API."""

    def __init__(self, project: Path, state_dir: Path, environment: str = "dev") -> None:
        self.project, self.state_dir, self.environment = project, state_dir, environment
        self.ingress_port = free_port()
        self.seen_pids: set[int] = set()

    def up(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli("up", str(self.project), "--env", self.environment, "--state-dir", str(self.state_dir),
                       "--detach", "--ingress-port", str(self.ingress_port), "--timeout", "60", *extra, check=check)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, "--state-dir", str(self.state_dir), check=check)

    def status(self) -> dict[str, Any]:
        document = json.loads(self.cli("status", "-o", "json").stdout)
        for service in document["services"]:
            self.seen_pids.update(i["pid"] for i in service["instances"] if i["pid"])
        return document

    def service(self, name: str) -> dict[str, Any]:
        return next(s for s in self.status()["services"] if s["name"] == name)

    def instances(self, name: str, state: str | None = None) -> list[dict[str, Any]]:
        return [i for i in self.service(name)["instances"] if state is None or i["state"] == state]

    def wait_versions(self, name: str, versions: set[str], timeout: float = 30) -> list[dict[str, Any]]:
        """Wait until every instance of NAME runs one of VERSIONS. A finished rollout has retired the old
        release's instances, but they may still be draining and stopping for their grace period."""
        return wait_for(lambda: (lambda found: found if {i["version"] for i in found} == versions else None)(
            self.instances(name)), timeout=timeout, interval=0.2, what=f"{name} on {', '.join(sorted(versions))} only")

    def control_pid(self) -> int:
        return int(json.loads((self.state_dir / "control.json").read_text())["pid"])

    def api(self) -> str:
        return str(json.loads((self.state_dir / "control.json").read_text())["api"])

    def token(self) -> str:
        return (self.state_dir / "token").read_text().strip()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the API as the CLI does: over the state dir's Unix socket."""
        return api_request(self.state_dir, method, path, **kwargs)

    def wait_ready(self, name: str, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        return wait_for(lambda: (lambda ready: ready if len(ready) == count else None)(self.instances(name, "ready")),
                        timeout, 0.1, f"{count} ready instances of {name}")

    def teardown(self) -> None:
        control = self._maybe_control_pid()
        if control and pid_alive(control):
            try:
                self.status()  # learn the instance pids, in case `down` leaves any behind
            except (subprocess.SubprocessError, ValueError, KeyError):
                pass  # the sweep below must run whatever state the control plane is in
        sweep(self.state_dir, self.seen_pids | {control})

    def _maybe_control_pid(self) -> int:
        try:
            return self.control_pid()
        except (OSError, ValueError, KeyError):
            return 0


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def sweep(state_dir: Path, pids: set[int], down_timeout: float = 60) -> None:
    """`shipyard down`, then SIGKILL whatever is left: the given pids and the state dir's Envoy."""
    if (state_dir / "control.json").exists():
        run_cli("down", "--state-dir", str(state_dir), check=False, timeout=down_timeout)
    for pid in pids | {envoy_pid(state_dir)}:
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def envoy_pid(state_dir: Path) -> int:
    """The state dir's Envoy, if one still runs on this state dir's configuration (not a reused pid)."""
    try:
        pid = int((state_dir / "proxy" / "envoy.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return 0
    return pid if str(state_dir).encode() in cmdline else 0
