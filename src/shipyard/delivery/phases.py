"""Canary and blue-green rollouts as pure transitions of the rollout record.

A progressive rollout moves through phases; each move is decided here from the record, the
strategy and a fact — instances became ready (the plan), an analysis verdict or a gate result
(the runner), an operator's command (the API). Nothing here does I/O.

Canary:     starting → [pre-rollout] → [mirror] → step 0 … step n → [pre-promotion] → promoting → promoted
Blue-green: starting → [pre-promotion] → [awaiting-promotion] → switched
Either may end in rolled-back (status failed): all traffic back on the previous release.
"""

from __future__ import annotations

import math
from typing import Any

from shipyard.delivery.step import decide_step
from shipyard.engine.model import Progressive, Rollout
from shipyard.errors import StateError

STARTING = "starting"
PRE_ROLLOUT = "pre-rollout"
MIRROR = "mirror"
STEP = "step"
PRE_PROMOTION = "pre-promotion"
PROMOTING = "promoting"
PROMOTED = "promoted"
AWAITING = "awaiting-promotion"
SWITCHED = "switched"
ROLLED_BACK = "rolled-back"

GATE_PHASES = (PRE_ROLLOUT, PRE_PROMOTION)
ANALYSIS_PHASES = (MIRROR, STEP)
MAX_DECISIONS = 100  # per rollout, oldest dropped first


def canary_instances(replicas: int, rollout: Rollout, steps: tuple[int, ...]) -> int:
    """Canary capacity follows its traffic: the share of `replicas` for the *next* weight (so the
    instances are ready before the traffic moves), all of them to promote."""
    if rollout.phase in (PROMOTING, PROMOTED):
        return replicas
    weight = rollout.weight
    if rollout.phase == STEP:
        weight = steps[rollout.step + 1] if rollout.step + 1 < len(steps) else 100
    elif rollout.phase in (STARTING, PRE_ROLLOUT, MIRROR):
        weight = steps[0]
    return max(1, math.ceil(replicas * weight / 100))


def after_canary_ready(rollout: Rollout, config: Progressive, now: float) -> Rollout:
    """The first canary instance is ready: gates first if there are any, else traffic."""
    if config.pre_rollout:
        return rollout.evolve(phase=PRE_ROLLOUT, updated_at=now)
    return start_analysis(rollout, config, now)


def after_green_ready(rollout: Rollout, config: Progressive, now: float) -> Rollout:
    """Every green instance is ready: checks against the preview endpoint, then the switch (or a wait)."""
    if config.pre_promotion:
        return rollout.evolve(phase=PRE_PROMOTION, updated_at=now)
    return _promote_blue_green(rollout, config, now, requested=False)


def start_analysis(rollout: Rollout, config: Progressive, now: float) -> Rollout:
    """Mirrored traffic (or a parallel run) first when asked for, else the first step's weight."""
    if config.mirror > 0 or config.parallel_run > 0:
        return _window(rollout.evolve(phase=MIRROR, step=-1, weight=0), config, now)
    return _window(rollout.evolve(phase=STEP, step=0, weight=config.steps[0]), config, now)


def after_analysis(rollout: Rollout, config: Progressive, verdict: str, evidence: dict[str, Any],
                   now: float, deadline: float | None = None) -> Rollout:
    """A judgement moves the canary: advance, hold, count a failure or roll back.

    The runner judges once the step ran its `interval` (and every `interval` while it holds), or
    earlier scrapes once the compare entries rule out a regression; see `after_regression` for
    a regression shown at any scrape. Too little traffic to judge holds, and says so once: the
    first inconclusive interval at a position is recorded (an event), the next ones only refresh
    the message. A window that stays inconclusive for `deadline` seconds (the progress deadline)
    rolls back with `InsufficientTraffic`.
    """
    at = f"{rollout.weight}% of traffic" if rollout.phase == STEP else f"{config.mirror or config.parallel_run:g}% mirrored traffic"
    if verdict == "inconclusive":
        starved = _starved(rollout, config, evidence, at, now, deadline)
        if starved is not None:
            return starved
    if rollout.phase == MIRROR:
        if verdict == "pass":
            nxt = _window(rollout.evolve(phase=STEP, step=0, weight=config.steps[0]), config, now)
            action, reason = "advance", f"analysis passed on mirrored traffic: {config.steps[0]}% of traffic next"
        elif verdict == "inconclusive":
            nxt, action, reason = _hold(rollout, config, now), "hold", "analysis inconclusive on mirrored traffic: holding"
            nxt = nxt.evolve(message=_starving(at, str(evidence.get("summary") or reason),
                                               rollout.check_started_at or rollout.started_at, now, deadline))
        else:
            failures = rollout.failures + 1
            nxt, action, reason = _failed_interval(rollout, config, failures, at, now)
    else:
        step = decide_step(config.steps, config.failure_threshold, rollout.step, rollout.failures, verdict)  # type: ignore[arg-type]
        action, reason = step.action, step.reason
        if step.action == "rollback":
            nxt = rollback(rollout, "AnalysisFailed", f"canary analysis failed {step.failures} times "
                                                      f"(threshold {config.failure_threshold}); last at {at}", now)
            nxt = nxt.evolve(failures=step.failures)
        elif step.action == "hold":
            nxt = _hold(rollout, config, now).evolve(message=_starving(
                at, str(evidence.get("summary") or step.reason), rollout.check_started_at or rollout.started_at,
                now, deadline))
        elif step.promote:
            nxt = rollout.evolve(phase=PRE_PROMOTION if config.pre_promotion else PROMOTING, step=step.step_index,
                                 failures=step.failures, next_check_at=None, updated_at=now)
        else:
            nxt = _window(rollout.evolve(step=step.step_index, weight=step.weight, failures=step.failures),
                          config, now)
    record = {"kind": "analysis", "at": now, "phase": rollout.phase, "weight": rollout.weight, "verdict": verdict,
              "action": action, "reason": reason, "failures": nxt.failures, **evidence}
    return record_decision(nxt, record)


def _starved(rollout: Rollout, config: Progressive, evidence: dict[str, Any], at: str, now: float,
             deadline: float | None) -> Rollout | None:
    """An inconclusive interval after the first one at this position: hold quietly, or give up at the deadline."""
    since = rollout.check_started_at or rollout.started_at
    summary = str(evidence.get("summary") or "too little traffic to judge")
    if deadline is not None and now - since >= deadline:
        message = (f"too little traffic to judge the canary at {at} within the progress deadline "
                   f"({deadline:g}s): {summary}")
        nxt = rollback(rollout, "InsufficientTraffic", message, now)
        return record_decision(nxt, {"kind": "analysis", "at": now, "phase": rollout.phase, "weight": rollout.weight,
                                     "verdict": "inconclusive", "action": "rollback", "reason": message,
                                     "failures": nxt.failures, **evidence})
    last = rollout.decisions[-1] if rollout.decisions else {}
    repeated = last.get("kind") == "analysis" and last.get("verdict") == "inconclusive" \
        and last.get("phase") == rollout.phase and last.get("weight") == rollout.weight
    if not repeated:
        return None  # the first one is recorded like any other verdict
    return _hold(rollout, config, now).evolve(message=_starving(at, summary, since, now, deadline))


def _starving(at: str, summary: str, since: float, now: float, deadline: float | None) -> str:
    text = f"waiting for traffic at {at}: {summary}"
    if deadline is not None:
        text += f"; fails with InsufficientTraffic in {max(0.0, since + deadline - now):.0f}s"
    return text


def after_regression(rollout: Rollout, evidence: dict[str, Any], now: float) -> Rollout:
    """A `compare` entry's anytime-valid test shows a regression: roll back at once, whatever the
    step's time, `minRequests` or `failureThreshold` (the test's error is bounded however often it looks)."""
    at = f"{rollout.weight}% of traffic" if rollout.phase == STEP else "mirrored traffic"
    reason = f"regression detected at {at}: rolling back"
    nxt = rollback(rollout, "AnalysisFailed", f"regression detected at {at}: {evidence.get('summary', '')}", now)
    record = {"kind": "analysis", "at": now, "phase": rollout.phase, "weight": rollout.weight, "verdict": "fail",
              "action": "rollback", "reason": reason, "failures": nxt.failures, **evidence}
    return record_decision(nxt, record)


def _failed_interval(rollout: Rollout, config: Progressive, failures: int, at: str,
                     now: float) -> tuple[Rollout, str, str]:
    if failures >= config.failure_threshold:
        message = f"canary analysis failed {failures} times (threshold {config.failure_threshold}); last at {at}"
        return rollback(rollout, "AnalysisFailed", message, now).evolve(failures=failures), "rollback", message
    reason = f"analysis failed at {at} ({failures}/{config.failure_threshold} failures): staying"
    return _window(rollout.evolve(failures=failures), config, now), "fail", reason


def after_gates(rollout: Rollout, config: Progressive, strategy: str, passed: bool, detail: str,
                results: list[dict[str, Any]], now: float) -> Rollout:
    """Gates passed: on to traffic (pre-rollout) or promotion (pre-promotion); failed: roll back."""
    record = {"kind": "gates", "at": now, "phase": rollout.phase, "verdict": "pass" if passed else "fail",
              "action": "advance" if passed else "rollback", "reason": detail, "gates": results}
    if not passed:
        return record_decision(rollback(rollout, "GateFailed", f"{rollout.phase} check failed: {detail}", now), record)
    if rollout.phase == PRE_ROLLOUT:
        nxt = start_analysis(rollout, config, now)
    elif strategy == "blue-green":
        nxt = _promote_blue_green(rollout, config, now, requested=False)
    else:
        nxt = rollout.evolve(phase=PROMOTING, updated_at=now)
    return record_decision(nxt, record)


def promote(rollout: Rollout, config: Progressive, strategy: str, full: bool, now: float) -> Rollout:
    """`rollout promote`: skip the current wait (one step, gates or the approval); `--full` skips all of them."""
    _require_progressing(rollout, "promote")
    if rollout.phase in (PROMOTING, PROMOTED, SWITCHED):
        raise StateError(f"{rollout.service} is already being promoted ({rollout.phase})")
    if strategy == "blue-green":
        if rollout.phase == STARTING:
            raise StateError(f"{rollout.service}: green is not ready yet; promote once it is (see `rollout status`)")
        nxt = _promote_blue_green(rollout, config, now, requested=True)
    elif rollout.phase == STARTING:
        raise StateError(f"{rollout.service}: no canary instance is ready yet; promote once one is")
    elif full or rollout.phase == PRE_PROMOTION or (rollout.phase == STEP and rollout.step >= len(config.steps) - 2):
        nxt = rollout.evolve(phase=PROMOTING, updated_at=now, next_check_at=None)
    elif rollout.phase in (PRE_ROLLOUT, MIRROR):
        nxt = _window(rollout.evolve(phase=STEP, step=0, weight=config.steps[0]), config, now)
    else:
        step = rollout.step + 1
        nxt = _window(rollout.evolve(step=step, weight=config.steps[step]), config, now)
    return record_decision(nxt, {"kind": "command", "at": now, "phase": rollout.phase, "action": "promote",
                                 "reason": f"`rollout promote{' --full' if full else ''}`: {rollout.phase} → {nxt.phase}"})


def approve(rollout: Rollout, now: float) -> Rollout:
    _require_progressing(rollout, "approve")
    if rollout.approved:
        raise StateError(f"{rollout.service}: the rollout is already approved")
    return record_decision(rollout.evolve(approved=True, updated_at=now),
                           {"kind": "command", "at": now, "phase": rollout.phase, "action": "approve",
                            "reason": "`rollout approve`: manual gate released"})


def abort(rollout: Rollout, now: float) -> Rollout:
    _require_progressing(rollout, "abort")
    return record_decision(rollback(rollout, "Aborted", "aborted by `rollout abort`", now),
                           {"kind": "command", "at": now, "phase": rollout.phase, "action": "rollback",
                            "reason": "`rollout abort`"})


def retry(rollout: Rollout, target: str, now: float) -> Rollout:
    """`rollout retry`: a fresh attempt at the same release, from the start."""
    if not rollout.progressive or rollout.status != "failed":
        raise StateError(f"{rollout.service}: only a failed canary or blue-green rollout can be retried "
                         f"(this one is {rollout.status})")
    if rollout.target != target:
        raise StateError(f"{rollout.service}: the spec now asks for {target}, not {rollout.target}")
    return Rollout(service=rollout.service, target=target, started_at=now, strategy=rollout.strategy,
                   previous=rollout.previous, updated_at=now, revision=rollout.revision, phase=STARTING,
                   reason="Retry", message=f"retrying release {target} (`rollout retry`)")


def rollback(rollout: Rollout, reason: str, message: str, now: float) -> Rollout:
    return rollout.evolve(status="failed", phase=ROLLED_BACK, weight=0, reason=reason, next_check_at=None,
                          message=f"rolled back to {rollout.previous}: {message}", updated_at=now)


def record_decision(rollout: Rollout, record: dict[str, Any]) -> Rollout:
    return rollout.evolve(decisions=(*rollout.decisions, record)[-MAX_DECISIONS:])


def decision_reason(record: dict[str, Any]) -> str:
    """The event reason of a recorded decision: AnalysisPassed, GatesFailed, Promote, …"""
    if record.get("kind") == "command":
        return str(record.get("action", "command")).capitalize()
    if record.get("verdict") == "inconclusive" and record.get("action") == "rollback":
        return "InsufficientTraffic"  # the holds before it were one AnalysisInconclusive, not one per interval
    verdict = {"pass": "Passed", "fail": "Failed", "inconclusive": "Inconclusive", "waiting": "Waiting"}
    kind = "Analysis" if record.get("kind") == "analysis" else "Gates"
    return kind + verdict.get(str(record.get("verdict")), "Decided")


def _promote_blue_green(rollout: Rollout, config: Progressive, now: float, requested: bool) -> Rollout:
    if config.auto_promote or requested:
        return rollout.evolve(phase=SWITCHED, weight=100, switched_at=now, updated_at=now,
                              message=f"switched all traffic to {rollout.target}; {rollout.previous} kept "
                                      f"{config.scale_down_delay:g}s for `rollout undo`")
    return rollout.evolve(phase=AWAITING, updated_at=now,
                          message=f"green {rollout.target} ready on the preview endpoint; waiting for "
                                  f"`shipyard rollout promote {rollout.service}`")


def _hold(rollout: Rollout, config: Progressive, now: float) -> Rollout:
    """Too little evidence: judge again one interval later over a window that keeps growing, so a
    step with little traffic gathers `minRequests` instead of holding forever."""
    return rollout.evolve(next_check_at=now + config.interval, updated_at=now)


def _window(rollout: Rollout, config: Progressive, now: float) -> Rollout:
    """A new analysis window starts now and is judged one interval later."""
    return rollout.evolve(check_started_at=now, next_check_at=now + config.interval, updated_at=now)


def _require_progressing(rollout: Rollout, verb: str) -> None:
    if not rollout.progressive:
        raise StateError(f"{rollout.service}: `rollout {verb}` applies to canary and blue-green rollouts "
                         f"(this one is {rollout.strategy}); `rollout undo` goes back to the previous release")
    if rollout.status != "progressing":
        raise StateError(f"{rollout.service}: the rollout of {rollout.target} is {rollout.status}, not progressing")
