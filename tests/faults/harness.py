"""A real control plane (store, reconciler, Envoy, sandboxed instances) run inside the test process, on a
thread of its own, so a test can wrap its runtime driver or its router to inject a fault. It is observed
like any other, through its HTTP API."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any, Callable

import httpx

from shipyard.daemon import ControlPlane, machine_capacity, serve
from shipyard.proxy.envoy_router import EnvoyRouter
from shipyard.state.control import read_control
from tests.controlplane import api_request, free_port, sweep, wait_for
from tests.projects import write_project


class InProcessPlane:
    def __init__(self, tmp_path: Path, services: list[dict[str, Any]]) -> None:
        self.project = write_project(tmp_path / "project", services)
        self.state_dir = tmp_path / "state"
        self.ingress_port = free_port()
        self.router = EnvoyRouter(self.state_dir / "proxy", self.ingress_port)
        self.plane = ControlPlane(self.state_dir, self.project, "dev", machine_capacity(), self.router,
                                  self.ingress_port)
        self.reconciler = self.plane.reconciler
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pids: set[int] = set()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.plane.apply()
        await serve(self.plane)

    def start(self) -> "InProcessPlane":
        self._thread.start()
        wait_for(lambda: (read_control(self.state_dir) or {}).get("api"), timeout=20, what="the API")
        self.api = str(read_control(self.state_dir)["api"])  # type: ignore[index]
        return self

    def on_loop(self, action: Callable[[], Any]) -> Any:
        """Run ACTION on the control plane's event loop (where its state may be changed) and return its result."""
        assert self.loop is not None

        async def call() -> Any:
            return action()
        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(10)

    def get(self, path: str) -> Any:
        return api_request(self.state_dir, "GET", path, timeout=30).json()

    def post(self, path: str, body: dict[str, Any] | None = None, timeout: float = 60) -> Any:
        response = api_request(self.state_dir, "POST", path, timeout=timeout, json=body or {})
        response.raise_for_status()
        return response.json()

    def healthz(self) -> tuple[int, str]:
        """GET /healthz over the API socket: (status code, body)."""
        response = api_request(self.state_dir, "GET", "/healthz", timeout=10)
        return response.status_code, response.text

    def status(self) -> dict[str, Any]:
        document = self.get("/status")
        self.pids.update(i["pid"] for s in document["services"] for i in s["instances"] if i["pid"])
        return document

    def condition(self, reason: str) -> dict[str, Any] | None:
        return next((c for c in self.status()["conditions"] if c["reason"] == reason), None)

    def ready(self, service: str, count: int) -> bool:
        document = self.status()
        found = next((s for s in document["services"] if s["name"] == service), None)
        return found is not None and sum(i["state"] == "ready" for i in found["instances"]) == count \
            and len(found["instances"]) == count

    def endpoint(self, service: str) -> str:
        return str(next(s for s in self.status()["services"] if s["name"] == service)["endpoint"])

    def close(self) -> None:
        try:
            self.status()
            self.post("/down")
        except (OSError, httpx.HTTPError):
            pass  # the sweep below runs whatever state the control plane is in
        self._thread.join(30)
        sweep(self.state_dir, self.pids)
