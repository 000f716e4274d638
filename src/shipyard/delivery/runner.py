"""The slow, effectful parts of progressive rollouts — gates and analyses — run beside the reconcile loop.

Each runs as a task keyed by the rollout's position (service, attempt, phase, step); its outcome
is turned into the next rollout record by the pure transitions in phases.py, and applied
only if the rollout is still where it was when the task started (an operator's command or a new
release may have moved it meanwhile). An analysis task watches its step: at every new scrape of
the data plane the `compare` entries are judged over the whole canary (sequential.py), and the
step is judged when due (see `_analyse`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol

from shipyard.proxy.window import WindowStats
from shipyard.delivery import phases
from shipyard.engine.model import DesiredService, Rollout
from shipyard.proxy.model import cluster_name
from shipyard.delivery.checks import CompareCheck
from shipyard.delivery.evaluate import PROMETHEUS_URL_ENV, Evaluation, evaluate, to_check
from shipyard.delivery.gates import GateSandbox, run_gates
from shipyard.delivery.judge import Decision
from shipyard.delivery.sequential import judge_sequential
from shipyard.runtime.capabilities import capabilities
from shipyard.spec.models import ApprovalGate, CompareAnalysis
from shipyard.parallel import mirror as parallel

if TYPE_CHECKING:
    from shipyard.proxy.traffic import TrafficHistory

log = logging.getLogger("shipyard.rollouts")
APPROVAL_POLL_S = 0.25
WATCH_POLL_S = 0.1  # how soon after a scrape (about one a second) the analysis looks at it
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

    @property
    def state_dir(self) -> Path:
        """Hidden from command gates (the API socket and token live there)."""

    @property
    def parallel(self) -> Any:
        """The comparators of parallel runs (`parallel/runs.py`): `summary(service)`."""


class RolloutRunner:
    def __init__(self, host: RolloutHost) -> None:
        self.host = host
        self._tasks: dict[Key, asyncio.Task[None]] = {}
        self.workdir: Path | None = None  # the applied revision's directory: command gates run there

    def sandbox(self) -> GateSandbox:
        """Command gates run in the instances' sandbox, the state dir (API socket, token) masked."""
        return GateSandbox(capabilities().bwrap, (self.host.state_dir,))

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
            elif rollout.phase in phases.ANALYSIS_PHASES:
                self._tasks[key] = asyncio.create_task(self._guarded(key, self._watch(key)))

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
        sandbox = await asyncio.to_thread(self.sandbox)  # the first call probes bubblewrap
        results = await run_gates(gates, target, service=rollout.service, release=rollout.target,
                                  cwd=self.workdir, sandbox=sandbox)
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

    async def _watch(self, key: Key) -> None:
        """Judge the step at every new scrape until the rollout moves on (or away)."""
        seen: float | None = None
        ruled_out = False  # the compare entries already ruled out a regression at a judgement of this step
        while self._current(key) is not None:
            history = self.host.router.traffic
            # Without scrapes (no data plane) the step is still looked at once a second.
            latest = history.latest.at if history is not None and history.latest is not None \
                else float(math.floor(time.time()))
            if latest != seen:
                seen = latest
                moved, ruled_out = await self._analyse(key, ruled_out)
                if moved:
                    return
            await asyncio.sleep(WATCH_POLL_S)

    async def _analyse(self, key: Key, ruled_out: bool) -> tuple[bool, bool]:
        """One scrape's look: roll back on a regression; judge the step when it is due, or as soon
        as the compare entries rule out a regression once the step ran its `interval`.

        Returns whether the rollout was moved, and whether the compare entries rule out a
        regression at a judgement made now or earlier in this step (so a step holding for its
        thresholds is judged again only every `interval`).
        """
        rollout, service = self._current(key), self.host.desired_service(key[0])
        if rollout is None or service is None or service.progressive is None:
            return True, ruled_out
        canary_spec = service.progressive
        compared = self._compare(canary_spec.analysis, rollout)
        now = time.time()
        if any(decision.verdict == "fail" for decision in compared) and service.progressive is not None:
            evidence = {"summary": "; ".join(d.reason for d in compared if d.verdict == "fail"),
                        "checks": [asdict(d) for d in compared]}
            await self.host.update_rollout(phases.after_regression(rollout, evidence, now))
            return True, ruled_out
        passing = bool(compared) and all(decision.verdict == "pass" for decision in compared)
        since = rollout.check_started_at or rollout.started_at
        due = rollout.next_check_at is not None and now >= rollout.next_check_at
        early = passing and not ruled_out and now >= since + canary_spec.interval
        if not (due or early):
            return False, ruled_out and passing
        others = [entry for entry in canary_spec.analysis if not isinstance(entry, CompareAnalysis)]
        canary = self._window(rollout.target, since)
        primary = self._window(rollout.previous, since) if rollout.previous else None
        evaluation = await evaluate(others, canary, primary, min_requests=canary_spec.min_requests,
                                    service=rollout.service, release=rollout.target,
                                    prometheus_url=os.environ.get(PROMETHEUS_URL_ENV), judged=compared)
        evaluation = self._with_parallel_run(rollout, canary_spec, evaluation)
        current = self._current(key)
        if current is None or service.progressive is None:
            return True, ruled_out
        if current.waiting:
            # While the next step's instances are not all ready (starting, or not fitting) the step is not
            # judged: a pass would move traffic onto instances that cannot take it (regressions still roll back).
            return False, ruled_out
        if not due and evaluation.verdict != "pass":
            return False, passing  # ruled out, but the thresholds or minRequests hold: wait for the due time
        evidence = {"summary": evaluation.summary, "checks": evaluation.to_dict()["decisions"],
                    "window": {"seconds": round(canary.seconds, 3), "canary": _figures(canary),
                               "primary": _figures(primary) if primary else None}}
        decided = phases.after_analysis(current, service.progressive, evaluation.verdict, evidence, time.time(),
                                         deadline=service.rolling.progress_deadline)
        await self.host.update_rollout(decided)
        return (decided.phase, decided.step) != (current.phase, current.step) or decided.status != "progressing", passing

    def _compare(self, entries: Sequence[Any], rollout: Rollout) -> list[Decision]:
        """The anytime-valid decisions of the `compare` entries over the whole canary so far."""
        checks = [to_check(e, service=rollout.service, release=rollout.target)
                  for e in entries if isinstance(e, CompareAnalysis)]
        history = self.host.router.traffic
        if not checks:
            return []
        if history is None or rollout.previous is None:
            return [Decision(c.label, "inconclusive", f"{c.compare}: no primary traffic to compare the canary with")
                    for c in checks if isinstance(c, CompareCheck)]
        canary = history.increments(cluster_name(rollout.target), rollout.started_at)
        primary = history.increments(cluster_name(rollout.previous), rollout.started_at)
        return [judge_sequential(c, canary, primary) for c in checks if isinstance(c, CompareCheck)]

    def _with_parallel_run(self, rollout: Rollout, canary_spec: Any, evaluation: Evaluation) -> Evaluation:
        """The parallel run's check joins the analysis; on copies alone (the mirror phase without a
        mirror to the canary) it is the whole analysis, as the canary serves no traffic to judge."""
        summary = self.host.parallel.summary(rollout.service)
        if canary_spec.parallel_settings is None or summary is None or not summary.get("active"):
            return evaluation
        check = parallel.decision(summary, parallel.settings(canary_spec.parallel_settings), canary_spec.min_requests)
        alone = rollout.phase == phases.MIRROR and canary_spec.mirror == 0
        return parallel.joined((check,) if alone else (*evaluation.decisions, check))

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
