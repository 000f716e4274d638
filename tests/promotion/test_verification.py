"""Table tests of the verification verdict."""

from __future__ import annotations

import pytest

from shipyard.engine.model import Rollout
from shipyard.promotion.verification import REJECTED, SOAKING, VERIFIED, VERIFYING, Checks, assess

DONE = Rollout(service="a", target="a-1", started_at=100.0, strategy="rolling", status="complete", updated_at=110.0)


def verdict(rollout=DONE, undone=False, restarts=0, soak=60.0, has_checks=False, checks=None, now=200.0):
    return assess("a", "a-1", "1.0.0", rollout, undone, restarts, soak, has_checks, checks, now)


@pytest.mark.parametrize("case, expected_state, expected_reason", [
    (dict(rollout=None), "deploying", "has not started"),
    (dict(rollout=DONE.evolve(status="progressing", phase="step", weight=25)), "deploying", "progressing (step, 25%)"),
    (dict(rollout=DONE.evolve(status="failed", reason="AnalysisFailed", message="5xx")), REJECTED, "rolled back"),
    (dict(undone=True), REJECTED, "rollout undo"),
    (dict(restarts=3), REJECTED, "restart storm"),
    (dict(now=150.0), SOAKING, "soaking for 20s more"),
    (dict(has_checks=True), VERIFYING, "verify checks"),
    (dict(has_checks=True, checks=Checks(False, 190.0, ({"passed": False, "reason": "smoke.sh exited 1"},))),
     REJECTED, "smoke.sh exited 1"),
    (dict(has_checks=True, checks=Checks(True, 190.0, ({"passed": True},))), VERIFIED, "verified"),
    (dict(), VERIFIED, "verified"),
])
def test_assess(case, expected_state, expected_reason):
    result = verdict(**case)
    assert result.state == expected_state and expected_reason in result.reason


def test_verified_since_the_end_of_the_soak_and_with_its_evidence():
    result = verdict()
    assert result.since == 170.0
    assert result.evidence == {"rollout": {"strategy": "rolling", "completed_at": 110.0}, "soak": 60.0, "restarts": 0}


def test_a_rollout_of_another_release_says_nothing_about_this_one():
    assert verdict(rollout=DONE.evolve(target="a-2")).state == "deploying"
