"""A canary or blue-green rollout under capacity pressure, as pure decisions (observed failure 2 of issue 10).

The failure: a prod canary whose second instance did not fit moved traffic to 50 % on its single
instance and sat silently in `promoting` until ProgressDeadlineExceeded.
"""

from __future__ import annotations

from dataclasses import replace

from shipyard.delivery import phases
from shipyard.engine.model import Capacity, DesiredService, Progressive, Rolling, Rollout, State
from shipyard.engine.plan import World, plan
from shipyard.engine.routing import split
from tests.engine.test_plan import GiB, inst, release

CANARY = Progressive(steps=(10, 50, 100), interval=10.0, failure_threshold=2)
BLUE_GREEN = Progressive(auto_promote=True, scale_down_delay=30.0)


def service(strategy: str = "canary", replicas: int = 3, config: Progressive = CANARY,
            deadline: float = 600.0) -> dict[str, DesiredService]:
    return {"svc": DesiredService("svc", release("svc-new", cpu=0.25), replicas, strategy,
                                  Rolling(1, 0, 0.0, deadline), 5.0, 9000, config)}


def started(**fields) -> Rollout:
    return replace(Rollout("svc", "svc-new", 0.0, "canary", previous="svc-old", phase=phases.STARTING), **fields)


def run(rollout: Rollout, instances, cpu: float, strategy: str = "canary", now: float = 100.0, **kwargs):
    config = CANARY if strategy == "canary" else BLUE_GREEN
    world = World(service(strategy, config=config, **kwargs), tuple(instances), {"svc": rollout},
                  Capacity(cpu=cpu, memory=64 * GiB), now, releases={"svc-old": release("svc-old", cpu=0.25)})
    return plan(world)


def primary(n: int = 3) -> list:
    return [replace(inst(f"old{i}", "svc-old"), handle={"limits": {"cpu": 0.25, "memory": 64 * 2**20}})
            for i in range(n)]


def test_a_canary_that_cannot_reach_all_its_replicas_does_not_begin_and_says_why_at_once():
    # 3 × 250m serve; a machine of 1.1 cores has room for one more, not the three a promotion needs.
    result = run(started(), primary(), cpu=1.1)
    assert result.start == []
    condition = next(c for c in result.conditions if c.type == "Schedulable")
    assert (condition.status, condition.reason, condition.object) == ("False", "InsufficientCPU", "svc")
    assert condition.message == "svc needs 3 × 250m CPU for its canary, 350m free"
    waiting = result.rollouts[-1]
    assert (waiting.phase, waiting.weight, waiting.status) == ("starting", 0, "progressing")
    assert waiting.waiting == waiting.message == (
        "0/1 instances of svc-new ready, traffic stays at 0%: svc needs 3 × 250m CPU for its canary, 350m free")


def test_a_canary_that_fits_starts_its_first_instance_and_sets_the_rest_aside():
    result = run(started(), primary(), cpu=1.5)
    assert result.start == [("svc", "svc-new")] and not any(c.type == "Schedulable" for c in result.conditions)
    assert result.held == (1.5, 6 * 64 * 2**20)  # three primaries, one canary now, two more later


def test_the_set_aside_instances_are_not_given_to_another_service():
    services = service(config=CANARY)
    services["zzz"] = DesiredService("zzz", replace(release("zzz-1", cpu=0.25), service="zzz"), 1, "rolling",
                                     Rolling(1, 0, 0.0, 600.0), 5.0, 9001)
    world = World(services, tuple(primary()), {"svc": started()}, Capacity(cpu=1.6, memory=64 * GiB), 100.0,
                  releases={"svc-old": release("svc-old", cpu=0.25)})
    result = plan(world)
    assert result.start == [("svc", "svc-new")]
    assert next(c for c in result.conditions if c.type == "Schedulable").object == "zzz"


def test_traffic_stays_at_the_current_step_while_the_next_steps_instances_do_not_fit():
    # Mid-rollout at 10 % on one ready canary; the machine no longer has room for the second one.
    at_ten = started(phase=phases.STEP, step=0, weight=10, check_started_at=50.0, next_check_at=60.0)
    result = run(at_ten, [*primary(), inst("new0")], cpu=1.0)
    assert result.start == []
    moved = result.rollouts[-1]
    assert (moved.phase, moved.weight) == ("step", 10) and moved.waiting_since == 100.0
    assert moved.waiting == "1/2 instances of svc-new ready, traffic stays at 10%: " \
                            "svc needs 2 × 250m CPU for its canary, 0 free"
    # the split keeps 10 %: nothing moves to 50 % while the runner does not judge a waiting canary
    weights = dict(split(service()["svc"], moved, {"svc-old": 3, "svc-new": 1})["weights"])
    assert weights == {"svc.old": 90, "svc.new": 10}
    # waiting longer than the progress deadline rolls back, and says what it waited for
    late = run(moved, [*primary(), inst("new0")], cpu=1.0, now=701.0)
    failed = late.rollouts[-1]
    assert (failed.status, failed.reason) == ("failed", "ProgressDeadlineExceeded")
    assert "svc needs 2 × 250m CPU for its canary" in failed.message


def test_the_wait_ends_once_the_instances_are_ready():
    waiting = started(phase=phases.STEP, step=0, weight=10, waiting="1/2 …: starting", waiting_since=90.0)
    result = run(waiting, [*primary(), inst("new0"), inst("new1")], cpu=8)
    assert (result.rollouts[-1].waiting, result.rollouts[-1].waiting_since) == ("", None)


def test_a_promotion_that_cannot_finish_says_why_instead_of_sitting_silently():
    promoting = started(phase=phases.PROMOTING, step=1, weight=50, updated_at=100.0)
    result = run(promoting, [*primary(), inst("new0"), inst("new1")], cpu=1.25)
    assert (result.rollouts[-1].phase, result.rollouts[-1].weight) == ("promoting", 50)
    assert "svc needs 1 × 250m CPU for its canary, 0 free" in result.rollouts[-1].waiting
    assert any(c.reason == "InsufficientCPU" for c in result.conditions)


def test_blue_green_that_does_not_fit_starts_nothing_and_says_why():
    green = started(strategy="blue-green")
    result = run(green, primary(), cpu=1.0, strategy="blue-green")
    assert result.start == []
    condition = next(c for c in result.conditions if c.type == "Schedulable")
    assert condition.message == "svc needs 3 × 250m CPU for its green side, 250m free"


def test_a_rolling_rollout_that_does_not_fit_says_why_on_its_record():
    services = {"svc": DesiredService("svc", release("svc-new", cpu=0.25), 3, "rolling",
                                      Rolling(1, 0, 0.0, 600.0), 5.0, 9000)}
    rolling = Rollout("svc", "svc-new", 0.0, "rolling", previous="svc-old")
    result = plan(World(services, tuple(primary()), {"svc": rolling}, Capacity(cpu=0.8, memory=64 * GiB), 100.0))
    assert result.start == []
    assert result.rollouts[-1].message == "no room for new instances: svc needs 1 × 250m CPU, 50m free"
    assert result.rollouts[-1].waiting == result.rollouts[-1].message


def test_self_healing_keeps_the_down_instances_reservation():
    down = [*primary(2), replace(inst("old2", "svc-old", state=State.EXITED, next_attempt=50.0),
                                 handle={"limits": {"cpu": 0.25, "memory": 64 * 2**20}})]
    services = {"svc": DesiredService("svc", release("svc-old", cpu=0.25), 3, "rolling",
                                      Rolling(1, 0, 0.0, 600.0), 5.0, 9000)}
    done = {"svc": Rollout("svc", "svc-old", 0.0, "rolling", status="complete")}
    result = plan(World(services, tuple(down), done, Capacity(cpu=0.75, memory=64 * GiB), 100.0))
    assert result.restart == ["old2"] and not any(c.type == "Schedulable" for c in result.conditions)


def test_scaling_down_mid_canary_frees_capacity_instead_of_taking_more():
    at_ten = started(phase=phases.STEP, step=0, weight=10)
    news = [inst(f"new{i}") for i in range(4)]
    result = run(at_ten, [*primary(), *news], cpu=8, replicas=3)
    assert result.start == [] and len(result.stop) == 2  # 3 replicas at 50 % next: 2 canaries are enough
    assert result.held[0] == 1.75  # 3 primaries + 4 canaries, the two stopping ones until they are gone
