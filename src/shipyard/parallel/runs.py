"""The parallel runs of an environment: one comparator per comparing canary, started and stopped with it.

Each comparator is an HTTP listener on 127.0.0.1 (a free port) served by uvicorn inside the control plane.
Every reconcile pass calls `tick`: a comparator starts when its canary reaches a comparing phase, follows the
instances it compares, is restarted if its server died (supervision), and stops when the rollout leaves
those phases. Its report is stored under `parallel_run/<service>` after every pass and when it stops, so
`shipyard rollout diff` shows it during the canary, after a rollback and across a control-plane restart.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.parallel import mirror
from shipyard.parallel.compare import Settings
from shipyard.parallel.comparator import Comparator
from shipyard.proxy.model import DataPlane

if TYPE_CHECKING:
    from shipyard.engine.reconciler import Reconciler

log = logging.getLogger("shipyard.parallel")
STORE_PREFIX = "parallel_run/"


@dataclass
class Run:
    """One canary's comparator and the server that listens for its copies."""

    attempt: tuple[str, float]          # (target release, rollout started_at)
    comparator: Comparator
    port: int
    task: asyncio.Task[None]
    server: Any


class ParallelRuns:
    def __init__(self, reconciler: "Reconciler") -> None:
        self.reconciler = reconciler
        self.runs: dict[str, Run] = {}

    def comparators(self) -> dict[str, tuple[int, Settings]]:
        """service → (comparator port, settings) of the comparators serving now: what the data plane mirrors to."""
        return {service: (run.port, run.comparator.settings) for service, run in sorted(self.runs.items())
                if not run.task.done() and run.comparator.targets[0]}

    def data_plane(self, plane: DataPlane) -> DataPlane:
        return mirror.with_comparators(plane, self.comparators())

    def fingerprint(self) -> tuple[Any, ...]:
        return tuple(sorted((s, p, r.methods, r.percent) for s, (p, r) in self.comparators().items()))

    async def tick(self) -> None:
        """Start, follow, restart and stop comparators so they match the canaries now comparing."""
        desired = self.reconciler.desired
        wanted: dict[str, tuple[Any, Any]] = {}
        if desired is not None:
            for service, rollout in self.reconciler.rollouts.items():
                spec = desired.specs.get(service)
                run_spec = spec.strategy.canary.parallel_run if spec is not None else None
                if run_spec is not None and mirror.comparing(rollout, run_spec) \
                        and desired.services.get(service) is not None \
                        and desired.services[service].release.id == rollout.target:
                    wanted[service] = (rollout, run_spec)
        for service in [s for s in self.runs if s not in wanted]:
            await self.stop(service)
        for service, (rollout, run_spec) in wanted.items():
            attempt = (rollout.target, rollout.started_at)
            run = self.runs.get(service)
            if run is not None and run.attempt != attempt:
                await self.stop(service)
                run = None
            if run is not None and run.task.done():
                self.reconciler.event("Warning", service, "ComparatorRestarted",
                                      f"the parallel run's comparator on port {run.port} stopped; restarting it")
                comparator = run.comparator
                self.runs[service] = run = await self._serve(attempt, comparator)
            if run is None:
                comparator = Comparator("", "", "", mirror.settings(run_spec))
                self.runs[service] = run = await self._serve(attempt, comparator)
                self.reconciler.event("Normal", service, "ParallelRunStarted",
                                      f"comparing {rollout.target} with {rollout.previous}: {run_spec.percent:g}% of "
                                      f"{', '.join(run_spec.methods)} requests copied to 127.0.0.1:{run.port}")
            found = mirror.targets(rollout, self.reconciler.instances.values())
            run.comparator.targets = (found.primary, found.secondary, found.candidate) if found else ("", "", "")
            self._save(service, run)

    def summary(self, service: str) -> dict[str, Any] | None:
        """The report of SERVICE's parallel run under way, else the last one stored."""
        run = self.runs.get(service)
        if run is not None:
            return self._report(service, run, active=True)
        stored = self.reconciler.store.get(STORE_PREFIX + service)
        return {**stored, "active": False} if stored else None

    async def stop(self, service: str) -> None:
        run = self.runs.pop(service, None)
        if run is None:
            return
        run.server.should_exit = True
        await asyncio.gather(run.task, return_exceptions=True)
        await run.comparator.close()
        self._save(service, run, active=False)
        summary = run.comparator.summary()
        self.reconciler.event("Normal", service, "ParallelRunStopped",
                              f"compared {summary['compared']} request(s): {summary['differing']} with unexplained "
                              f"differences (see `shipyard rollout diff {service}`)")

    async def close(self) -> None:
        for service in list(self.runs):
            await self.stop(service)

    async def _serve(self, attempt: tuple[str, float], comparator: Comparator) -> Run:
        import uvicorn

        sock = _listen()
        server = uvicorn.Server(uvicorn.Config(comparator.app(), log_level="warning", lifespan="off",
                                               access_log=False))
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        task = asyncio.create_task(server.serve(sockets=[sock]))
        return Run(attempt, comparator, sock.getsockname()[1], task, server)

    def _report(self, service: str, run: Run, active: bool) -> dict[str, Any]:
        summary = run.comparator.summary()
        cancelled = [{"route": route, "field": name, "reason": "noise: differs between two live answers"}
                     for route, fields in summary["noise"].items() for name in fields]
        return {"service": service, "release": run.attempt[0], "started_at": run.attempt[1], "active": active,
                "port": run.port, "settings": _settings(run.comparator.settings), **summary, "cancelled": cancelled}

    def _save(self, service: str, run: Run, active: bool = True) -> None:
        self.reconciler.store.put(STORE_PREFIX + service, self._report(service, run, active))


def _settings(run: Settings) -> dict[str, Any]:
    return {"percent": run.percent, "methods": list(run.methods), "ignore": {
        "headers": list(run.ignore_headers), "json": list(run.ignore_json)}, "maxDifferences": run.max_differences}


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    return sock

