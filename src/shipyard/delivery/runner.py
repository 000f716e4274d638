"""The slow, effectful parts of progressive rollouts — gates and analyses — run beside the reconcile loop.

Each runs as a task keyed by the rollout's position (service, attempt, phase, step); its outcome
is turned into the next rollout record by the pure transitions in progressive.py, and applied
only if the rollout is still where it was when the task started (an operator's command or a new
release may have moved it meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Mapping, Protocol

from shipyard.proxy.window import WindowStats
from shipyard.delivery import phases
from shipyard.engine.model import DesiredService, Rollout
from shipyard.proxy.model import cluster_name
from shipyard.delivery.evaluate import PROMETHEUS_URL_ENV, evaluate
from shipyard.delivery.gates import run_gates
from shipyard.spec.models import ApprovalGate

if TYPE_CHECKING:
    from shipyard.proxy.traffic import TrafficHistory

log = logging.getLogger("shipyard.rollouts")
APPROVAL_POLL_S = 0.25
Key = tuple[str, float, str, int]


class Traffic(Protocol):
    """What the runner reads of the data plane: per-release traffic, and the service's preview URL."""

    traffic: "TrafficHistory | None"

    def endpoint(self, service: str) -> str | None: ...


class RolloutHost(Protocol):
    """The narrow interface the runner gets from whoever owns the rollouts (the reconciler)."""

    @property
    def rollouts(self) -> Mapping[str, Rollout]: ...

    @property
    def router(self) -> Traffic: ...

    def desired_service(self, name: str) -> DesiredService | None:
        """The service as it should run now, or None if it is not in the desired state."""

    def ready_ports(self, release: str) -> list[int]:
        """Ports of the ready instances of `release`."""

    async def update_rollout(self, rollout: Rollout) -> None:
        """Record a decision about a rollout and act on it at once."""

    def event(self, kind: str, obj: str, reason: str, message: str, data: dict[str, Any] | None = None) -> None: ...


class RolloutRunner:
    def __init__(self, host: RolloutHost) -> None:
        self.host = host
        self._tasks: dict[Key, asyncio.Task[None]] = {}

    def tick(self, now: float) -> None:
        """Start the gate runs and analyses that are due; at most one task per rollout position."""
        self._tasks = {key: task for key, task in self._tasks.items() if not task.done()}
        for service, rollout in list(self.host.rollouts.items()):
            if not rollout.progressive or rollout.status != "progressing":
                continue
            key = (service, rollout.started_at, rollout.phase, rollout.step)
            if key in self._tasks:
                continue
            if rollout.phase in phases.GATE_PHASES:
                self._tasks[key] = asyncio.create_task(self._guarded(key, self._gates(key)))
            elif rollout.phase in phases.ANALYSIS_PHASES and rollout.next_check_at is not None \
                    and now >= rollout.next_check_at:
                self._tasks[key] = asyncio.create_task(self._guarded(key, self._analyse(key)))

    def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()

    async def _guarded(self, key: Key, work: Any) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken check must be visible, and the loop must go on
            log.exception("rollout task %s failed", key)
            self.host.event("Warning", key[0], "RolloutTaskFailed", f"{key[2]}: {exc}")

    def _current(self, key: Key) -> Rollout | None:
        rollout = self.host.rollouts.get(key[0])
        if rollout is None or (rollout.service, rollout.started_at, rollout.phase, rollout.step) != key \
                or rollout.status != "progressing":
            return None
        return rollout

    async def _gates(self, key: Key) -> None:
        rollout, service = self._current(key), self.host.desired_service(key[0])
        if rollout is None or service is None or service.progressive is None:
            return
        config = service.progressive
        gates = config.pre_rollout_gates if rollout.phase == phases.PRE_ROLLOUT else config.pre_promotion_gates
        target = self._target_url(rollout)
        results = await run_gates(gates, target, service=rollout.service, release=rollout.target)
        passed = all(r.passed for r in results) and len(results) == sum(not isinstance(g, ApprovalGate) for g in gates)
        detail = "; ".join(r.detail for r in results) or "no checks to run"
        if passed and any(isinstance(g, ApprovalGate) for g in gates):
            if not await self._approval(key, detail):
                return
            detail += "; approved by `rollout approve`"
        current = self._current(key)
        if current is None or service.progressive is None:
            return
        decided = phases.after_gates(current, service.progressive, service.strategy, passed, detail,
                                     [r.to_dict() for r in results], time.time())
        await self.host.update_rollout(decided)

    async def _approval(self, key: Key, detail: str) -> bool:
        """Wait for `rollout approve`; False if the rollout moved on meanwhile."""
        current = self._current(key)
        if current is None:
            return False
        if not current.approved:
            waiting = phases.record_decision(current.evolve(message=f"{current.phase}: waiting for "
                                                                    f"`shipyard rollout approve {current.service}`"),
                                             {"kind": "gates", "at": time.time(), "phase": current.phase,
                                              "verdict": "waiting", "action": "hold",
                                              "reason": f"{detail}; waiting for approval"})
            await self.host.update_rollout(waiting)
        while True:
            current = self._current(key)
            if current is None:
                return False
            if current.approved:
                return True
            await asyncio.sleep(APPROVAL_POLL_S)

    async def _analyse(self, key: Key) -> None:
        rollout, service = self._current(key), self.host.desired_service(key[0])
        if rollout is None or service is None or service.progressive is None:
            return
        canary_spec = service.progressive
        since = rollout.check_started_at or rollout.started_at
        canary = self._window(rollout.target, since)
        primary = self._window(rollout.previous, since) if rollout.previous else None
        evaluation = await evaluate(canary_spec.analysis, canary, primary, min_requests=canary_spec.min_requests,
                                    service=rollout.service, release=rollout.target,
                                    prometheus_url=os.environ.get(PROMETHEUS_URL_ENV))
        current = self._current(key)
        if current is None or service.progressive is None:
            return
        evidence = {"summary": evaluation.summary, "checks": evaluation.to_dict()["decisions"],
                    "window": {"seconds": round(canary.seconds, 3), "canary": _figures(canary),
                               "primary": _figures(primary) if primary else None}}
        decided = phases.after_analysis(current, service.progressive, evaluation.verdict, evidence, time.time())
        await self.host.update_rollout(decided)

    def _window(self, release: str, since: float) -> WindowStats:
        history = self.host.router.traffic
        window = history.window(cluster_name(release), since) if history is not None else None
        return window or WindowStats(0, 0, 0.0)

    def _target_url(self, rollout: Rollout) -> str:
        """The preview endpoint of the new release; without a data plane, one of its instances."""
        preview = self.host.router.endpoint(f"{rollout.service}.preview")
        if preview:
            return preview
        ready = self.host.ready_ports(rollout.target)
        return f"http://127.0.0.1:{ready[0]}" if ready else ""


def _figures(window: WindowStats) -> dict[str, Any]:
    return {"requests": window.requests, "errors_5xx": window.errors_5xx,
            "success_rate": window.success_rate, "p99_ms": window.quantile(0.99)}
