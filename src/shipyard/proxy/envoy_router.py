"""The engine's Router backed by one detached Envoy per environment (adopted across control-plane restarts)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from shipyard.errors import DataPlaneError
from shipyard.proxy import envoy
from shipyard.proxy.admin import Admin
from shipyard.proxy.model import Cluster, DataPlane, Endpoint
from shipyard.proxy.ports import free_port
from shipyard.proxy.publish import publish
from shipyard.proxy.traffic import TrafficHistory

log = logging.getLogger("shipyard.proxy")
SCRAPE_S = 1.0  # how often Envoy's stats are sampled for per-release metrics and canary analysis


class EnvoyRouter:
    """Publishes the engine's routing to Envoy and confirms it; restarts Envoy if it dies."""

    def __init__(self, config_dir: Path, ingress_port: int) -> None:
        self.config_dir, self.ingress_port = config_dir, ingress_port
        self.handle: envoy.EnvoyHandle | None = None
        self.endpoints: dict[str, int] = {}
        self.problem: str | None = None
        self.restarts = 0
        self._lock = asyncio.Lock()
        self._shut_down = False  # after `down`, the watchdog must not bring Envoy back
        self.traffic = TrafficHistory()
        self._published: dict[str, Cluster] = {}  # the clusters of the last plane published, by name
        self._scraped_at = 0.0
        self._stats_admin: Admin | None = None  # kept open: a scrape a second must not build a client each time

    async def _ensure(self) -> envoy.EnvoyHandle:
        if self.handle is not None and envoy.is_alive(self.handle):
            return self.handle
        saved = self.handle or envoy.EnvoyHandle.load(self.config_dir)
        if saved is not None and self.handle is None and await envoy.adopt(saved):
            log.info("adopted Envoy pid %s", saved.pid)
            self.handle = saved
            return saved
        admin_port = saved.admin_port if saved is not None else free_port()
        base_id = saved.base_id if saved is not None else admin_port
        if saved is not None:
            # A killed Envoy leaves its hot-restart state behind; a new one on that base id aborts.
            envoy.remove_hot_restart_state(saved.base_id)
            self.restarts += 1
            log.warning("Envoy pid %s is gone: restarting it with the current configuration", saved.pid)
        self.handle = await envoy.start(self.config_dir, admin_port, base_id, self.config_dir / "envoy.log")
        return self.handle

    async def sync(self, plane: DataPlane) -> None:
        self.endpoints = {route.service: route.port for route in plane.routes}
        async with self._lock:
            if self._shut_down:
                return  # after `down`: a late reconcile pass must not bring Envoy back
            handle = await self._ensure()
            # Envoy makes a new cluster of a changed one, and its 5xx counter and histogram may start again
            # from zero unseen: the traffic history must not count across that (see proxy/traffic.py).
            changed = [c.name for c in plane.clusters if c.name in self._published and self._published[c.name] != c]
            started = time.time()
            try:
                await publish(plane, handle)
                self.problem = None
            except DataPlaneError as exc:
                self.problem = str(exc)
                raise
            finally:
                for name in changed:
                    self.traffic.updated(name, started, time.time())
            self._published = {c.name: c for c in plane.clusters}

    async def drain(self, cluster: str, endpoint: Endpoint, timeout: float) -> None:
        if self.handle is None or not envoy.is_alive(self.handle):
            return
        async with self.handle.admin() as admin:
            try:
                await admin.wait_drained(cluster, endpoint, timeout)
            except DataPlaneError as exc:
                log.warning("%s %s:%s: %s; stopping it anyway (grace period over)", cluster, endpoint.host,
                            endpoint.port, exc)

    def endpoint(self, service: str) -> str | None:
        port = self.endpoints.get(service)
        return f"http://127.0.0.1:{port}" if port else None

    def ingress(self) -> str | None:
        return f"http://127.0.0.1:{self.ingress_port}" if self.ingress_port else None

    async def check(self) -> None:
        async with self._lock:
            if self._shut_down:
                return
            handle = await self._ensure()
        if time.monotonic() - self._scraped_at >= SCRAPE_S:
            self._scraped_at = time.monotonic()
            await self._scrape(handle)

    async def _scrape(self, handle: envoy.EnvoyHandle) -> None:
        if self._stats_admin is None or self._stats_admin.port != handle.admin_port:
            if self._stats_admin is not None:
                await self._stats_admin.aclose()
            self._stats_admin = handle.admin()
        try:
            stats = await self._stats_admin.scrape()
        except DataPlaneError as exc:
            log.debug("no stats from Envoy this time: %s", exc)
            return
        self.traffic.add(time.time(), stats)

    def describe(self) -> dict[str, object]:
        handle = self.handle
        return {"proxy": "envoy", "pid": handle.pid if handle else None,
                "admin": f"http://127.0.0.1:{handle.admin_port}" if handle else None,
                "restarts": self.restarts, "problem": self.problem}

    async def shutdown(self) -> None:
        async with self._lock:
            self._shut_down = True
            if self._stats_admin is not None:
                await self._stats_admin.aclose()
                self._stats_admin = None
            handle = self.handle or envoy.EnvoyHandle.load(self.config_dir)
            if handle is not None and await envoy.adopt(handle):
                await envoy.stop(handle)
