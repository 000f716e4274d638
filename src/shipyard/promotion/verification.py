"""Is a release verified in an environment? A pure verdict from its rollout, its restarts and its checks.

A release is *verified* when its rollout completed, it then ran for the outgoing edge's `soak` without
a rollback, an undo, a restart storm or a failing check, and the edge's `verify` checks passed. A
rollback, an undo, a failed rollout or a restart storm makes it *rejected* there, for good.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from shipyard.engine.model import Rollout
from shipyard.spec.units import format_duration

RESTART_STORM = 3   # restarts of its instances during the soak that reject a release

DEPLOYING, SOAKING, VERIFYING, VERIFIED, REJECTED = "deploying", "soaking", "verifying", "verified", "rejected"


@dataclass(frozen=True)
class Checks:
    """The outcome of the edge's verify checks, once they ran (None: not run yet)."""

    passed: bool
    at: float
    details: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Verification:
    service: str
    release: str
    version: str
    state: str                 # deploying | soaking | verifying | verified | rejected
    since: float               # when the release entered this state
    reason: str                # what it waits for, or why it was rejected
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "release": self.release, "version": self.version, "state": self.state,
                "since": self.since, "reason": self.reason, "evidence": self.evidence}


def assess(service: str, release: str, version: str, rollout: Optional[Rollout], undone: bool, restarts: int,
           soak: float, has_checks: bool, checks: Optional[Checks], now: float) -> Verification:
    """The verdict for `release` of `service` now.

    `rollout` is the latest rollout that targeted the release; `undone` says whether `rollout undo`
    moved away from it; `restarts` counts its instances' restarts since its rollout completed.
    """
    def verdict(state: str, since: float, reason: str, **evidence: Any) -> Verification:
        return Verification(service, release, version, state, since, reason, evidence)

    if rollout is None or rollout.target != release:
        return verdict(DEPLOYING, now, "its rollout has not started")
    if undone:
        return verdict(REJECTED, rollout.updated_at, "undone by `shipyard rollout undo`")
    if rollout.status == "failed":
        return verdict(REJECTED, rollout.updated_at, f"rolled back: {rollout.reason} ({rollout.message})",
                       rollout=rollout.reason)
    if rollout.status != "complete":
        return verdict(DEPLOYING, rollout.started_at, f"its rollout is {rollout.status}"
                       + (f" ({rollout.phase}, {rollout.weight}%)" if rollout.progressive else ""))
    completed = rollout.updated_at
    evidence: dict[str, Any] = {"rollout": {"strategy": rollout.strategy, "completed_at": completed},
                                "soak": soak, "restarts": restarts}
    if restarts >= RESTART_STORM:
        return verdict(REJECTED, now, f"restart storm: {restarts} restarts after its rollout", **evidence)
    soaked = completed + soak
    if now < soaked:
        return verdict(SOAKING, completed, f"soaking for {format_duration(max(1.0, round(soaked - now)))} more",
                       **evidence)
    if has_checks and checks is None:
        return verdict(VERIFYING, soaked, "running its verify checks", **evidence)
    if checks is not None and not checks.passed:
        return verdict(REJECTED, checks.at, "verification failed: " + "; ".join(
            str(d.get("reason", d)) for d in checks.details if not d.get("passed", False)), checks=list(checks.details),
            **evidence)
    if checks is not None:
        evidence["checks"] = list(checks.details)
    return verdict(VERIFIED, checks.at if checks is not None else soaked, "verified", **evidence)
