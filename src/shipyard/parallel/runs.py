"""The parallel runs of an environment: one comparator process per comparing canary, started and stopped
with it, supervised by the reconcile loop.

Each comparator is a child process (`python -m shipyard.parallel.process`) listening on 127.0.0.1 at a free
port: comparing copies takes its CPU time, never the control plane's event loop. Every reconcile pass calls
`tick`: a comparator starts when its canary reaches a comparing phase, is told the instances to compare
(a targets file it follows), is started again if it exited (supervision; it goes on from its last report),
and stops when the rollout leaves those phases. Its report (a file it rewrites several times a second) is
stored under `parallel_run/<service>` on every pass and when it stops, so `shipyard rollout diff` shows it
during the canary, after a rollback and across a control-plane restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.parallel import mirror
from shipyard.parallel.compare import Settings
from shipyard.parallel.process import read_json, write_json
from shipyard.proxy.model import DataPlane
from shipyard.proxy.ports import free_port

if TYPE_CHECKING:
    from shipyard.engine.reconciler import Reconciler

log = logging.getLogger("shipyard.parallel")
STORE_PREFIX = "parallel_run/"
STOP_TIMEOUT_S = 5.0


@dataclass
class Run:
    """One canary's comparator process."""

    attempt: tuple[str, float]          # (target release, rollout started_at)
    settings: Settings
    port: int
    process: subprocess.Popen[bytes]
    targets: tuple[str, str, str] = ("", "", "")


class ParallelRuns:
    def __init__(self, reconciler: "Reconciler") -> None:
        self.reconciler = reconciler
        self.runs: dict[str, Run] = {}
        self.directory = Path(reconciler.state_dir) / "parallel"

    def comparators(self) -> dict[str, tuple[int, Settings]]:
        """service → (comparator port, settings) of the comparators running now: what the data plane copies to."""
        return {service: (run.port, run.settings) for service, run in sorted(self.runs.items())
                if run.process.poll() is None and all(run.targets)}

    def data_plane(self, plane: DataPlane) -> DataPlane:
        return mirror.with_comparators(plane, self.comparators())

    def fingerprint(self) -> tuple[Any, ...]:
        return tuple(sorted((s, p, r.methods, r.percent) for s, (p, r) in self.comparators().items()))

    async def tick(self) -> None:
        """Start, follow, restart and stop comparators so they match the canaries now comparing."""
        wanted = self._wanted()
        for service in [s for s in self.runs if s not in wanted]:
            await self.stop(service)
        for service, (rollout, run_spec) in wanted.items():
            attempt = (rollout.target, rollout.started_at)
            run = self.runs.get(service)
            if run is not None and run.attempt != attempt:
                await self.stop(service)
                run = None
            if run is None:
                stored = self.reconciler.store.get(STORE_PREFIX + service) or {}
                if (stored.get("release"), stored.get("started_at")) != attempt:
                    self._paths(service)[1].unlink(missing_ok=True)  # a new attempt starts with an empty report
                run = self.runs[service] = self._start(service, attempt, mirror.settings(run_spec))
                self.reconciler.event("Normal", service, "ParallelRunStarted",
                                      f"comparing {rollout.target} with {rollout.previous}: {run_spec.percent:g}% of "
                                      f"{', '.join(run_spec.methods)} requests copied to 127.0.0.1:{run.port}")
            elif run.process.poll() is not None:
                code = run.process.returncode
                run = self.runs[service] = self._start(service, attempt, run.settings, run.targets)
                self.reconciler.event("Warning", service, "ComparatorRestarted",
                                      f"the parallel run's comparator exited ({code}); started again on "
                                      f"127.0.0.1:{run.port}, going on from its last report")
            found = mirror.targets(rollout, self.reconciler.instances.values())
            targets = (found.primary, found.secondary, found.candidate) if found else ("", "", "")
            if targets != run.targets:
                write_json(self._paths(service)[0], list(targets))
                run.targets = targets
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
        if run.process.poll() is None:
            run.process.terminate()
        try:
            await asyncio.to_thread(run.process.wait, STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            run.process.kill()
            await asyncio.to_thread(run.process.wait)
        report = self._save(service, run, active=False)
        self.reconciler.event("Normal", service, "ParallelRunStopped",
                              f"compared {report['compared']} request(s): {report['differing']} with unexplained "
                              f"differences (see `shipyard rollout diff {service}`)")

    async def close(self) -> None:
        for service in list(self.runs):
            await self.stop(service)

    def _wanted(self) -> dict[str, tuple[Any, Any]]:
        desired, wanted = self.reconciler.desired, {}
        if desired is None:
            return {}
        for service, rollout in self.reconciler.rollouts.items():
            spec, current = desired.specs.get(service), desired.services.get(service)
            run_spec = spec.strategy.canary.parallel_run if spec is not None else None
            if run_spec is not None and current is not None and current.release.id == rollout.target \
                    and mirror.comparing(rollout, run_spec):
                wanted[service] = (rollout, run_spec)
        return wanted

    def _paths(self, service: str) -> tuple[Path, Path]:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory / f"{service}.targets.json", self.directory / f"{service}.report.json"

    def _start(self, service: str, attempt: tuple[str, float], settings: Settings,
               targets: tuple[str, str, str] = ("", "", "")) -> Run:
        targets_file, report_file = self._paths(service)
        write_json(targets_file, list(targets))
        port = free_port()
        with open(self.directory / f"{service}.log", "ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "shipyard.parallel.process", "--port", str(port),
                 "--settings", json.dumps(asdict(settings)), "--targets", str(targets_file),
                 "--report", str(report_file)],
                stdin=subprocess.DEVNULL, stdout=output, stderr=output)
        return Run(attempt, settings, port, process, targets)

    def _report(self, service: str, run: Run, active: bool) -> dict[str, Any]:
        summary = read_json(self._paths(service)[1]) or {"compared": 0, "differing": 0, "differences": [],
                                                         "noise": {}, "failed": 0, "dropped": 0}
        cancelled = [{"route": route, "field": name, "reason": "noise: differs between two live answers"}
                     for route, fields in summary["noise"].items() for name in fields]
        return {"service": service, "release": run.attempt[0], "started_at": run.attempt[1], "active": active,
                "port": run.port, "settings": _settings(run.settings), **summary, "cancelled": cancelled}

    def _save(self, service: str, run: Run, active: bool = True) -> dict[str, Any]:
        report = self._report(service, run, active)
        self.reconciler.store.put(STORE_PREFIX + service, report)
        return report


def _settings(run: Settings) -> dict[str, Any]:
    return {"percent": run.percent, "methods": list(run.methods), "ignore": {
        "headers": list(run.ignore_headers), "json": list(run.ignore_json)}, "maxDifferences": run.max_differences}
