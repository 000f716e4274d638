"""A small bounded HTTP load generator for tests: keep-alive and new-connection clients side by side."""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    versions: Counter[str] = field(default_factory=Counter)   # by the X-Service-Version of each answer


class Load:
    """GETs `path` on 127.0.0.1:`port` from `clients` threads (half keep-alive) until stopped."""

    def __init__(self, port: int, path: str = "/", clients: int = 4, pause: float = 0.01,
                 headers: dict[str, str] | None = None, limit_s: float = 120) -> None:
        self.port, self.path, self.pause, self.headers = port, path, pause, headers or {}
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._deadline = time.monotonic() + limit_s
        self._threads = [threading.Thread(target=self._run, args=(n % 2 == 0,), daemon=True) for n in range(clients)]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _run(self, keep_alive: bool) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                if conn is None or not keep_alive:
                    if conn is not None:
                        conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", self.path, headers=self.headers)
                response = conn.getresponse()
                response.read()
                outcome = None if response.status < 500 else f"HTTP {response.status}"
                version = response.getheader("X-Service-Version") or "-"
            except (OSError, http.client.HTTPException) as exc:
                outcome, version = repr(exc), "-"
                if conn is not None:
                    conn.close()
                conn = None
            with self._lock:
                self.result.versions[version] += 1
                if outcome is None:
                    self.result.ok += 1
                else:
                    self.result.failures.append(outcome)
            time.sleep(self.pause)
        if conn is not None:
            conn.close()
