"""Table tests of the canary step decision."""

from __future__ import annotations

import pytest

from shipyard.delivery.judge import Verdict
from shipyard.delivery.step import StepDecision, decide_step

STEPS = (10, 25, 50)


@pytest.mark.parametrize(("steps", "threshold", "index", "failures", "verdict", "expected"), [
    # pass: advance to the next weight; promote after the last step or on reaching 100
    (STEPS, 3, 0, 0, "pass", ("advance", 1, 25, 0, False)),
    (STEPS, 3, 1, 2, "pass", ("advance", 2, 50, 2, False)),   # failures are not forgiven
    (STEPS, 3, 2, 0, "pass", ("advance", 3, 100, 0, True)),
    ((10, 50, 100), 3, 1, 0, "pass", ("advance", 2, 100, 0, True)),
    ((10, 50, 100), 3, 2, 0, "pass", ("advance", 3, 100, 0, True)),
    ((100,), 1, 0, 0, "pass", ("advance", 1, 100, 0, True)),
    # inconclusive: hold where we are, count nothing
    (STEPS, 3, 1, 0, "inconclusive", ("hold", 1, 25, 0, False)),
    (STEPS, 3, 1, 2, "inconclusive", ("hold", 1, 25, 2, False)),
    # fail: count it and stay, roll back once the threshold is reached
    (STEPS, 3, 1, 0, "fail", ("fail", 1, 25, 1, False)),
    (STEPS, 3, 1, 1, "fail", ("fail", 1, 25, 2, False)),
    (STEPS, 3, 1, 2, "fail", ("rollback", 1, 0, 3, False)),
    (STEPS, 1, 0, 0, "fail", ("rollback", 0, 0, 1, False)),
    (STEPS, 2, 2, 5, "fail", ("rollback", 2, 0, 6, False)),
])
def test_decide_step(steps: tuple[int, ...], threshold: int, index: int, failures: int,
                     verdict: Verdict, expected: tuple[str, int, int, int, bool]) -> None:
    decision = decide_step(steps, threshold, index, failures, verdict)
    assert (decision.action, decision.step_index, decision.weight, decision.failures,
            decision.promote) == expected


@pytest.mark.parametrize(("verdict", "reason"), [
    ("pass", "analysis passed at 25%: advancing to 50%"),
    ("inconclusive", "analysis inconclusive at 25%: holding"),
    ("fail", "analysis failed at 25% (1/2 failures): staying"),
])
def test_reasons_name_the_weight(verdict: Verdict, reason: str) -> None:
    assert decide_step(STEPS, 2, 1, 0, verdict).reason == reason


def test_rollback_and_promotion_reasons() -> None:
    assert decide_step(STEPS, 1, 1, 0, "fail").reason == \
        "analysis failed at 25% (1/1 failures): rolling back"
    assert decide_step(STEPS, 1, 2, 0, "pass").reason == "analysis passed at 50%: promoting"


@pytest.mark.parametrize(("steps", "threshold", "index", "failures", "verdict", "match"), [
    ((), 1, 0, 0, "pass", "at least one step"),
    ((10, 0), 1, 0, 0, "pass", "within 1..100"),
    ((10, 150), 1, 0, 0, "pass", "within 1..100"),
    ((50, 10), 1, 0, 0, "pass", "increase"),
    ((10, 10), 1, 0, 0, "pass", "increase"),
    (STEPS, 0, 0, 0, "pass", "failure threshold"),
    (STEPS, 1, 3, 0, "pass", "outside steps"),
    (STEPS, 1, -1, 0, "pass", "outside steps"),
    (STEPS, 1, 0, -1, "pass", "failures"),
    (STEPS, 1, 0, 0, "maybe", "unknown verdict"),
])
def test_invalid_parameters_are_rejected(steps: tuple[int, ...], threshold: int, index: int,
                                         failures: int, verdict: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        decide_step(steps, threshold, index, failures, verdict)  # type: ignore[arg-type]


def test_decision_is_a_frozen_value() -> None:
    decision = decide_step(STEPS, 1, 0, 0, "pass")
    assert isinstance(decision, StepDecision)
    with pytest.raises(AttributeError):
        decision.weight = 5  # type: ignore[misc]
