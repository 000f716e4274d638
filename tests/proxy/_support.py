"""Helpers for data plane tests: backend processes, a steady load, one-off requests."""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.proxy import envoy
from shipyard.proxy.envoy import EnvoyHandle
from shipyard.proxy.model import Endpoint
from shipyard.proxy.ports import free_port

BACKEND = Path(__file__).with_name("backend.py")


@dataclass
class Backend:
    """One backend process answering with its id."""

    id: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.port)

    def terminate(self) -> None:
        """SIGTERM: stop accepting, finish in-flight requests, exit."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(5)
        self._close()

    def kill(self) -> None:
        """SIGKILL: connections are reset, in-flight requests lost."""
        self.process.kill()
        self.process.wait(5)
        self._close()

    def _close(self) -> None:
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_envoy(config_dir: Path) -> EnvoyHandle:
    """Start an Envoy on `config_dir`, with a base id of its own (derived from its admin port)."""
    admin_port = free_port()
    return asyncio.run(envoy.start(config_dir, admin_port, admin_port, config_dir / "envoy.log"))


@dataclass
class Load:
    """Steady concurrent HTTP/1.1 keep-alive load on 127.0.0.1:`port`, counted per backend id."""

    port: int
    concurrency: int = 8
    method: str = "GET"
    path: str = "/"
    answers: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Load:
        for _ in range(self.concurrency):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self._stop.is_set():
            try:
                conn.request(self.method, self.path, body=b"x" if self.method == "POST" else None)
                response = conn.getresponse()
                body = response.read().decode()
                outcome = (
                    body.split()[0]
                    if response.status == 200
                    else f"HTTP {response.status} {body!r}"
                )
            except (OSError, http.client.HTTPException) as exc:
                outcome = f"error {exc!r}"
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            with self._lock:
                if outcome.startswith(("HTTP", "error")):
                    self.failures.append(outcome)
                else:
                    self.answers[outcome] += 1
        conn.close()

    def total(self) -> int:
        with self._lock:
            return sum(self.answers.values()) + len(self.failures)

    def wait_for(self, requests: int, timeout_s: float = 5.0) -> None:
        """Block until `requests` more requests have completed."""
        target = self.total() + requests
        deadline = time.monotonic() + timeout_s
        while self.total() < target:
            assert time.monotonic() < deadline, f"load stalled at {self.total()} requests"
            time.sleep(0.01)


def get(
    port: int,
    path: str = "/",
    host: str | None = None,
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> tuple[int, str]:
    """One request on a fresh connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, headers={**({"host": host} if host else {}), **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
