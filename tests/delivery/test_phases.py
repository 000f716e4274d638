"""Canary and blue-green as pure decisions: phase moves, instance counts and the traffic split."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shipyard.delivery import phases
from shipyard.engine.model import Progressive, Rollout, State
from shipyard.engine.plan import World, plan
from shipyard.engine.routing import split
from shipyard.errors import StateError
from shipyard.spec.models import Service
from tests.engine.test_plan import BIG, desired, inst, release

CANARY = Progressive(steps=(10, 50, 100), interval=5.0, failure_threshold=2)
BLUE_GREEN = Progressive(auto_promote=True, scale_down_delay=30.0)


def canary_rollout(**fields) -> Rollout:
    base = Rollout("svc", "svc-new", 0.0, "canary", previous="svc-old", phase=phases.STARTING)
    return replace(base, **fields)


def world(rollout: Rollout, instances, strategy: str = "canary", config: Progressive = CANARY, replicas: int = 4,
          now: float = 100.0) -> World:
    services = desired(replicas, strategy=strategy)
    services["svc"] = replace(services["svc"], progressive=config)
    return World(services, tuple(instances), {"svc": rollout}, BIG, now, releases={"svc-old": release("svc-old")})


def olds(n: int = 4) -> list:
    return [inst(f"old{i}", "svc-old") for i in range(n)]


# ---- transitions ------------------------------------------------------------------------------------
def test_a_regression_rolls_back_at_once_whatever_the_failures_and_the_step_time() -> None:
    rollout = canary_rollout(phase=phases.STEP, step=0, weight=10, failures=0, check_started_at=50.0,
                             next_check_at=55.0)
    evidence = {"summary": "errorRate: e-value 42 (rollback at 20)", "checks": []}
    moved = phases.after_regression(rollout, evidence, 51.0)
    assert (moved.status, moved.phase, moved.weight, moved.reason) == ("failed", phases.ROLLED_BACK, 0, "AnalysisFailed")
    assert moved.failures == 0 and moved.next_check_at is None
    assert "regression detected at 10% of traffic: errorRate: e-value 42" in moved.message
    last = moved.decisions[-1]
    assert (last["verdict"], last["action"], last["weight"], last["summary"]) == ("fail", "rollback", 10, evidence["summary"])
    assert phases.decision_reason(last) == "AnalysisFailed"


def test_the_first_ready_canary_gets_the_first_step_or_its_gates_or_mirrored_traffic() -> None:
    rollout = canary_rollout()
    stepped = phases.after_canary_ready(rollout, CANARY, 10.0)
    assert (stepped.phase, stepped.step, stepped.weight, stepped.next_check_at) == ("step", 0, 10, 15.0)
    gated = phases.after_canary_ready(rollout, replace(CANARY, pre_rollout=True), 10.0)
    assert (gated.phase, gated.weight) == ("pre-rollout", 0)
    mirrored = phases.after_canary_ready(rollout, replace(CANARY, mirror=20), 10.0)
    assert (mirrored.phase, mirrored.weight, mirrored.step) == ("mirror", 0, -1)


@pytest.mark.parametrize("verdict, phase, step, weight, failures, status", [
    ("pass", "step", 1, 50, 0, "progressing"),
    ("inconclusive", "step", 0, 10, 0, "progressing"),
    ("fail", "step", 0, 10, 1, "progressing"),
])
def test_an_analysis_verdict_moves_the_canary(verdict, phase, step, weight, failures, status) -> None:
    rollout = canary_rollout(phase="step", step=0, weight=10, check_started_at=10.0, next_check_at=15.0)
    moved = phases.after_analysis(rollout, CANARY, verdict, {"summary": "numbers"}, 15.0)
    assert (moved.phase, moved.step, moved.weight, moved.failures, moved.status) == (phase, step, weight, failures, status)
    assert moved.next_check_at == 20.0
    # a hold keeps gathering traffic in a growing window; any other move starts a new one
    assert moved.check_started_at == (10.0 if verdict == "inconclusive" else 15.0)
    assert moved.decisions[-1]["verdict"] == verdict and moved.decisions[-1]["summary"] == "numbers"


def test_failures_add_up_to_a_rollback_and_passing_the_last_step_promotes() -> None:
    failing = canary_rollout(phase="step", step=1, weight=50, failures=1)
    rolled = phases.after_analysis(failing, CANARY, "fail", {}, 20.0)
    assert (rolled.status, rolled.phase, rolled.weight, rolled.reason) == ("failed", "rolled-back", 0, "AnalysisFailed")
    assert "rolled back to svc-old" in rolled.message and rolled.failures == 2
    promoted = phases.after_analysis(canary_rollout(phase="step", step=1, weight=50), CANARY, "pass", {}, 20.0)
    assert (promoted.phase, promoted.weight, promoted.next_check_at) == ("promoting", 50, None)
    gated = phases.after_analysis(canary_rollout(phase="step", step=1, weight=50),
                                  replace(CANARY, pre_promotion=True), "pass", {}, 20.0)
    assert gated.phase == "pre-promotion"


def test_mirrored_traffic_passing_leads_to_the_first_step() -> None:
    config = replace(CANARY, mirror=50)
    moved = phases.after_analysis(canary_rollout(phase="mirror"), config, "pass", {}, 30.0)
    assert (moved.phase, moved.step, moved.weight) == ("step", 0, 10)
    held = phases.after_analysis(canary_rollout(phase="mirror"), config, "inconclusive", {}, 30.0)
    assert (held.phase, held.decisions[-1]["action"]) == ("mirror", "hold")


def test_gates_advance_or_roll_back() -> None:
    passed = phases.after_gates(canary_rollout(phase="pre-rollout"), CANARY, "canary", True, "ok", [], 5.0)
    assert (passed.phase, passed.weight) == ("step", 10)
    failed = phases.after_gates(canary_rollout(phase="pre-rollout"), CANARY, "canary", False, "exit 3", [], 5.0)
    assert (failed.status, failed.reason) == ("failed", "GateFailed") and "exit 3" in failed.message
    green = canary_rollout(strategy="blue-green", phase="pre-promotion")
    switched = phases.after_gates(green, BLUE_GREEN, "blue-green", True, "ok", [], 5.0)
    assert (switched.phase, switched.switched_at) == ("switched", 5.0)
    waiting = phases.after_gates(green, replace(BLUE_GREEN, auto_promote=False), "blue-green", True, "ok", [], 5.0)
    assert waiting.phase == "awaiting-promotion" and "rollout promote svc" in waiting.message


def test_operator_commands() -> None:
    stepping = canary_rollout(phase="step", step=0, weight=10)
    assert phases.promote(stepping, CANARY, "canary", False, 1.0).weight == 50
    assert phases.promote(stepping, CANARY, "canary", True, 1.0).phase == "promoting"
    with pytest.raises(StateError, match="no canary instance is ready"):
        phases.promote(canary_rollout(), CANARY, "canary", False, 1.0)
    aborted = phases.abort(stepping, 2.0)
    assert (aborted.status, aborted.reason) == ("failed", "Aborted")
    with pytest.raises(StateError, match="failed, not progressing"):
        phases.abort(aborted, 3.0)
    retried = phases.retry(aborted, "svc-new", 4.0)
    assert (retried.status, retried.phase, retried.started_at, retried.decisions) == ("progressing", "starting", 4.0, ())
    with pytest.raises(StateError, match="spec now asks for svc-newer"):
        phases.retry(aborted, "svc-newer", 4.0)
    assert phases.approve(stepping, 5.0).approved
    with pytest.raises(StateError, match="applies to canary and blue-green"):
        phases.promote(Rollout("svc", "svc-new", 0.0, "rolling"), CANARY, "rolling", False, 1.0)


# ---- the plan ---------------------------------------------------------------------------------------
def test_a_new_canary_rollout_starts_one_instance_beside_the_full_primary() -> None:
    services = desired(4, strategy="canary")
    services["svc"] = replace(services["svc"], progressive=CANARY)
    result = plan(World(services, tuple(olds()), {}, BIG, 100.0))
    assert result.rollouts[0].phase == "starting" and result.rollouts[0].previous == "svc-old"
    assert result.start == [("svc", "svc-new")] and result.stop == []


def test_canary_instances_are_ready_for_the_next_weight_and_the_primary_stays_whole() -> None:
    rollout = canary_rollout(phase="step", step=0, weight=10)
    result = plan(world(rollout, [*olds(), inst("new0")]))
    assert result.start == [("svc", "svc-new")] and result.stop == []  # next step 50 %: ceil(4 × 50 %) = 2
    last = plan(world(canary_rollout(phase="step", step=1, weight=50), [*olds(), inst("new0"), inst("new1")]))
    assert last.start == [("svc", "svc-new")] * 2  # before promotion: all of them


def test_traffic_waits_until_the_first_steps_instances_are_ready() -> None:
    config = replace(CANARY, steps=(50, 100))
    one = plan(world(canary_rollout(), [*olds(), inst("new0"), inst("new1", state=State.STARTING)], config=config))
    assert [(r.phase, r.weight, r.waiting) for r in one.rollouts] == [
        ("starting", 0, "1/2 instances of svc-new ready, traffic stays at 0%: starting")]
    two = plan(world(canary_rollout(), [*olds(), inst("new0"), inst("new1")], config=config))
    assert (two.rollouts[-1].phase, two.rollouts[-1].weight) == ("step", 50)


def test_promotion_scales_the_canary_then_takes_all_traffic_then_retires_the_primary() -> None:
    news = [inst(f"new{i}") for i in range(4)]
    promoting = plan(world(canary_rollout(phase="promoting", weight=50), [*olds(), *news]))
    assert promoting.rollouts[-1].phase == "promoted" and promoting.rollouts[-1].weight == 100
    # The primary retires in the same pass: a stopping instance loses its weight before its endpoint.
    assert sorted(promoting.stop) == [(f"old{i}", "replaced by svc-new") for i in range(4)]
    not_yet = plan(world(canary_rollout(phase="promoting", weight=50), [*olds(), *news[:3]]))
    assert not_yet.stop == [] and not_yet.start == [("svc", "svc-new")]
    assert [(r.phase, r.weight) for r in not_yet.rollouts] == [("promoting", 50)]
    done = plan(world(canary_rollout(phase="promoted", weight=100), news))
    assert done.rollouts[-1].status == "complete"


def test_a_rolled_back_canary_stops_its_instances_and_tops_the_primary_up() -> None:
    rolled = canary_rollout(status="failed", phase="rolled-back", reason="AnalysisFailed", message="m")
    result = plan(world(rolled, [*olds(3), inst("new0"), inst("new1")]))
    assert sorted(i for i, _ in result.stop) == ["new0", "new1"]
    assert result.start == [("svc", "svc-old")]
    in_sync = next(c for c in result.conditions if c.type == "InSync")
    assert "runs release svc-old while the spec asks for svc-new" in in_sync.message


def test_blue_green_starts_a_full_green_set_and_keeps_blue_for_the_delay() -> None:
    green = canary_rollout(strategy="blue-green")
    started = plan(world(green, olds(), "blue-green", BLUE_GREEN))
    assert started.start == [("svc", "svc-new")] * 4
    news = [inst(f"new{i}") for i in range(4)]
    ready = plan(world(green, [*olds(), *news], "blue-green", BLUE_GREEN))
    assert ready.rollouts[-1].phase == "switched" and ready.stop == []
    switched = canary_rollout(strategy="blue-green", phase="switched", switched_at=90.0, weight=100)
    assert plan(world(switched, [*olds(), *news], "blue-green", BLUE_GREEN, now=110.0)).stop == []
    later = plan(world(switched, [*olds(), *news], "blue-green", BLUE_GREEN, now=121.0))
    assert len(later.stop) == 4


def test_a_canary_that_never_gets_ready_fails_at_the_progress_deadline() -> None:
    starting = [inst("new0", state=State.STARTING)]
    result = plan(world(canary_rollout(), [*olds(), *starting], now=601.0))
    assert (result.rollouts[-1].status, result.rollouts[-1].reason) == ("failed", "ProgressDeadlineExceeded")


# ---- the traffic split ------------------------------------------------------------------------------
SPEC = Service.model_validate({"apiVersion": "shipyard/v1", "kind": "Service", "name": "svc", "version": "1",
                               "artifact": {"path": "app", "command": ["app"]},
                               "strategy": {"type": "canary", "canary": {
                                   "mirror": 20, "match": [{"header": {"name": "x-canary", "exact": "1"}}]}}})


def weights(result) -> dict[str, int]:
    return dict(result["weights"])


def test_the_canary_gets_its_weight_and_matching_requests_once_it_has_traffic() -> None:
    service = replace(desired(4, strategy="canary")["svc"], progressive=CANARY)
    result = split(service, SPEC, canary_rollout(phase="step", step=0, weight=10), {"svc-old": 4, "svc-new": 1})
    assert weights(result) == {"svc.old": 90, "svc.new": 10}
    assert result["match_cluster"] == "svc.new" and result["matches"][0].value == "1"
    starting = split(service, SPEC, canary_rollout(), {"svc-old": 4, "svc-new": 1})
    assert weights(starting) == {"svc.old": 100, "svc.new": 0} and "matches" not in starting


def test_mirroring_shadows_traffic_without_weight() -> None:
    service = replace(desired(4, strategy="canary")["svc"], progressive=CANARY)
    result = split(service, SPEC, canary_rollout(phase="mirror"), {"svc-old": 4, "svc-new": 1})
    assert weights(result)["svc.new"] == 0 and (result["mirror_cluster"], result["mirror_percent"]) == ("svc.new", 20)


def test_rollback_and_blue_green_send_everything_to_one_side() -> None:
    service = replace(desired(4, strategy="canary")["svc"], progressive=CANARY)
    rolled = canary_rollout(status="failed", phase="rolled-back")
    assert weights(split(service, SPEC, rolled, {"svc-old": 4, "svc-new": 2})) == {"svc.old": 1}
    green = replace(service, strategy="blue-green")
    before = split(green, SPEC, canary_rollout(strategy="blue-green", phase="awaiting-promotion"),
                   {"svc-old": 4, "svc-new": 4})
    after = split(green, SPEC, canary_rollout(strategy="blue-green", phase="switched"), {"svc-old": 4, "svc-new": 4})
    assert weights(before) == {"svc.old": 1} and weights(after) == {"svc.new": 1}


def test_without_a_progressive_rollout_releases_weigh_their_ready_instances() -> None:
    service = desired(4)["svc"]
    assert weights(split(service, SPEC, None, {"svc-old": 3, "svc-new": 1})) == {"svc.old": 3, "svc.new": 1}
    nobody = split(replace(service, progressive=CANARY), SPEC, canary_rollout(phase="step", weight=10),
                   {"svc-old": 0, "svc-new": 0})
    assert weights(nobody) == {"svc.old": 0, "svc.new": 0}


# ---- a canary without traffic -----------------------------------------------------------------------
def test_a_canary_without_traffic_says_so_once_and_fails_at_the_progress_deadline() -> None:
    evidence = {"summary": "canary served 0 requests (minRequests 50)", "window": {"canary": {"requests": 0}}}
    rollout = canary_rollout(phase="step", step=0, weight=10, check_started_at=10.0, next_check_at=20.0)
    first = phases.after_analysis(rollout, CANARY, "inconclusive", evidence, 20.0, deadline=600.0)
    assert [d["verdict"] for d in first.decisions] == ["inconclusive"]
    assert first.message == ("waiting for traffic at 10% of traffic: canary served 0 requests (minRequests 50); "
                             "fails with InsufficientTraffic in 590s")
    again = phases.after_analysis(first, CANARY, "inconclusive", evidence, 25.0, deadline=600.0)
    assert again.decisions == first.decisions  # no second record, so no second event
    assert (again.next_check_at, again.check_started_at, again.status) == (30.0, 10.0, "progressing")
    assert again.message.endswith("fails with InsufficientTraffic in 585s")
    failed = phases.after_analysis(again, CANARY, "inconclusive", evidence, 610.0, deadline=600.0)
    assert (failed.status, failed.reason, failed.phase, failed.weight) == ("failed", "InsufficientTraffic",
                                                                           "rolled-back", 0)
    assert "too little traffic to judge the canary at 10% of traffic within the progress deadline (600s)" \
        in failed.message
    assert failed.decisions[-1]["action"] == "rollback" and len(failed.decisions) == 2
    assert [phases.decision_reason(d) for d in failed.decisions] == ["AnalysisInconclusive", "InsufficientTraffic"]


def test_traffic_arriving_after_a_hold_is_judged_as_usual() -> None:
    rollout = canary_rollout(phase="step", step=0, weight=10, check_started_at=10.0, next_check_at=20.0)
    held = phases.after_analysis(rollout, CANARY, "inconclusive", {"summary": "few"}, 20.0, deadline=600.0)
    passed = phases.after_analysis(held, CANARY, "pass", {"summary": "ok"}, 30.0, deadline=600.0)
    assert (passed.step, passed.weight) == (1, 50) and [d["verdict"] for d in passed.decisions] == ["inconclusive", "pass"]
