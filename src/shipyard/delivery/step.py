"""The canary's next move after one analysis interval: advance, hold, count a failure, roll back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from shipyard.delivery.judge import Verdict

Action = Literal["advance", "hold", "fail", "rollback"]


@dataclass(frozen=True)
class StepDecision:
    """What to do after an interval, and the canary's position once it is done.

    `step_index` indexes the strategy's steps (it is `len(steps)` once promoted past the last
    one), `weight` is the canary's traffic percentage to route (100 when promoting, 0 on
    rollback), `failures` counts failed intervals over the whole rollout — a pass does not reset
    it, as with Flagger's threshold.
    """

    action: Action
    step_index: int
    weight: int
    failures: int
    promote: bool
    reason: str


def decide_step(steps: Sequence[int], failure_threshold: int, step_index: int, failures: int,
                verdict: Verdict) -> StepDecision:
    """Map an interval's combined verdict at `steps[step_index]` to the canary's next action.

    pass → advance to the next weight (promote when that is 100 or the steps are used up);
    inconclusive → hold where it is; fail → count it, and roll back once `failures` reaches
    `failure_threshold`.
    """
    _validate(steps, failure_threshold, step_index, failures)
    weight = steps[step_index]
    if verdict == "pass":
        next_index = min(step_index + 1, len(steps))
        next_weight = steps[next_index] if next_index < len(steps) else 100
        promote = next_weight == 100
        reason = (f"analysis passed at {weight}%: promoting" if promote
                  else f"analysis passed at {weight}%: advancing to {next_weight}%")
        return StepDecision("advance", next_index, next_weight, failures, promote, reason)
    if verdict == "inconclusive":
        return StepDecision("hold", step_index, weight, failures, False,
                            f"analysis inconclusive at {weight}%: holding")
    if verdict != "fail":
        raise ValueError(f"unknown verdict {verdict!r}; expected pass, fail or inconclusive")
    failures += 1
    if failures >= failure_threshold:
        return StepDecision("rollback", step_index, 0, failures, False,
                            f"analysis failed at {weight}% ({failures}/{failure_threshold} "
                            "failures): rolling back")
    return StepDecision("fail", step_index, weight, failures, False,
                        f"analysis failed at {weight}% ({failures}/{failure_threshold} failures): "
                        "staying")


def _validate(steps: Sequence[int], failure_threshold: int, step_index: int,
              failures: int) -> None:
    """Raise ValueError for parameters no valid canary strategy can have."""
    if not steps:
        raise ValueError("a canary needs at least one step weight")
    if any(not 0 < weight <= 100 for weight in steps):
        raise ValueError(f"canary step weights must be within 1..100, got {list(steps)}")
    if any(later <= earlier for earlier, later in zip(steps, steps[1:], strict=False)):
        raise ValueError(f"canary step weights must increase, got {list(steps)}")
    if failure_threshold < 1:
        raise ValueError(f"failure threshold must be at least 1, got {failure_threshold}")
    if not 0 <= step_index < len(steps):
        raise ValueError(f"step index {step_index} is outside steps {list(steps)}")
    if failures < 0:
        raise ValueError(f"failures must be >= 0, got {failures}")
