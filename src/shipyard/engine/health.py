"""Pure health decisions from probe results: when an instance is ready, unready, or must be replaced."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.engine.model import Release


@dataclass
class ProbeTally:
    """Consecutive results of one instance's probes."""

    readiness_failures: int = 0
    liveness_failures: int = 0
    ever_ready: bool = False


@dataclass(frozen=True)
class Verdict:
    ready: bool | None = None     # a change of readiness to report, or None for no change
    replace: str | None = None    # a reason to replace the instance


def after_readiness(tally: ProbeTally, passed: bool, release: Release, currently_ready: bool) -> Verdict:
    """Ready on the first success; unready after `failureThreshold` consecutive failures."""
    if passed:
        tally.readiness_failures = 0
        tally.ever_ready = True
        return Verdict(ready=True) if not currently_ready else Verdict()
    tally.readiness_failures += 1
    if currently_ready and tally.readiness_failures >= release.readiness.failure_threshold:
        return Verdict(ready=False)
    return Verdict()


def after_liveness(tally: ProbeTally, passed: bool, release: Release) -> Verdict:
    """Replace after `failureThreshold` consecutive liveness failures (only once the instance has been ready)."""
    if passed:
        tally.liveness_failures = 0
        return Verdict()
    tally.liveness_failures += 1
    if tally.ever_ready and tally.liveness_failures >= release.liveness.failure_threshold:
        return Verdict(replace=f"liveness probe failed {tally.liveness_failures} times")
    return Verdict()


def startup_overdue(started_at: float, now: float, release: Release, ever_ready: bool) -> str | None:
    if not ever_ready and now - started_at > release.startup_timeout:
        return f"not ready within startupTimeout {release.startup_timeout:g}s"
    return None


def readiness_period(release: Release, ever_ready: bool) -> float:
    """Probe fast until the first success (a new instance joins routing promptly), then at `interval`."""
    return min(release.readiness.interval, 0.1) if not ever_ready else release.readiness.interval
