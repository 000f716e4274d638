"""Table-style tests of the pure reconcile plan: no processes, only records and the clock."""

from __future__ import annotations

import pytest

from shipyard.engine.model import Capacity, DesiredService, Instance, Probe, Release, Rolling, Rollout, State
from shipyard.engine.plan import World, plan

GiB = 1024**3
MiB = 1024**2
BIG = Capacity(cpu=64, memory=64 * GiB)


def release(rid: str = "svc-new", cpu: float = 0.1, memory: int = 64 * MiB) -> Release:
    probe = Probe("/healthz", 1.0, 1.0, 3)
    return Release(rid, "svc", "1", "snap", ("app",), (), cpu, memory, probe, probe, 30.0)


def desired(replicas: int = 3, rid: str = "svc-new", strategy: str = "rolling", surge: int | str = "25%",
            unavailable: int | str = 0, min_ready: float = 0.0, deadline: float = 600.0,
            memory: int = 64 * MiB) -> dict[str, DesiredService]:
    return {"svc": DesiredService("svc", release(rid, memory=memory), replicas, strategy,
                                  Rolling(surge, unavailable, min_ready, deadline), 5.0, None)}


def inst(iid: str, rid: str = "svc-new", state: State = State.READY, ready_since: float | None = 0.0,
         created: float = 0.0, next_attempt: float | None = None) -> Instance:
    return Instance(id=iid, service="svc", release=rid, port=10000 + hash(iid) % 1000, state=state,
                    created_at=created, ready_since=ready_since if state is State.READY else None,
                    next_attempt_at=next_attempt)


def rollout(target: str = "svc-new", status: str = "progressing", started: float = 0.0) -> dict[str, Rollout]:
    return {"svc": Rollout("svc", target, started, "rolling", status=status)}


def run(desired_services, instances, rollouts=None, now=100.0, capacity=BIG):
    return plan(World(desired_services, tuple(instances), rollouts if rollouts is not None else rollout(), capacity, now))


def test_first_deployment_starts_every_replica_at_once():
    result = run(desired(3), [], rollouts={})
    assert result.start == [("svc", "svc-new")] * 3
    assert [r.status for r in result.rollouts] == ["progressing"]


def test_steady_state_plans_nothing():
    instances = [inst(f"i{n}") for n in range(3)]
    result = run(desired(3), instances, rollout(status="complete"))
    assert result.empty and result.conditions == []


def test_completion_is_recorded_once_every_instance_is_ready():
    instances = [inst(f"i{n}") for n in range(3)]
    result = run(desired(3), instances)
    assert [(r.status, r.reason) for r in result.rollouts] == [("complete", "RolloutComplete")]


@pytest.mark.parametrize("replicas, before, after, starts, stops", [
    (5, 3, None, 2, 0),   # scale up
    (1, 3, None, 0, 2),   # scale down
    (0, 2, None, 0, 2),   # scale to zero
])
def test_scaling_changes_only_the_count(replicas, before, after, starts, stops):
    instances = [inst(f"i{n}", created=n) for n in range(before)]
    result = run(desired(replicas), instances, rollout(status="complete"))
    assert len(result.start) == starts and len(result.stop) == stops


def test_scale_down_removes_not_ready_and_newest_first():
    instances = [inst("old-ready", created=1), inst("new-ready", created=5),
                 inst("starting", state=State.STARTING, created=3)]
    result = run(desired(1), instances, rollout(status="complete"))
    assert [i for i, _ in result.stop] == ["starting", "new-ready"]


# ---- rolling update: maxSurge / maxUnavailable -------------------------------------------------------

def test_rolling_update_surges_by_max_surge_and_keeps_old_serving():
    old = [inst(f"o{n}", rid="svc-old") for n in range(4)]
    result = run(desired(4, surge="25%", unavailable=0), old, rollouts={"svc": Rollout("svc", "svc-old", 0, "rolling", "complete")})
    assert result.start == [("svc", "svc-new")]       # 25 % of 4 = 1 surge
    assert result.stop == []                          # maxUnavailable 0: nothing old stops yet
    assert result.rollouts[0].target == "svc-new" and result.rollouts[0].previous == "svc-old"


def test_rolling_update_retires_one_old_per_available_new():
    old = [inst(f"o{n}", rid="svc-old") for n in range(4)]
    new = [inst("n0")]
    result = run(desired(4), old + new)
    assert len(result.stop) == 1 and result.start == []   # total 5 = 4 + surge 1: no room to start


def test_stopping_instances_count_against_the_surge_budget():
    old = [inst(f"o{n}", rid="svc-old") for n in range(3)] + [inst("o3", rid="svc-old", state=State.STOPPING)]
    new = [inst("n0")]
    result = run(desired(4), old + new)
    assert result.start == []  # 3 old + 1 stopping + 1 new = 5 = replicas + surge


def test_max_unavailable_allows_stopping_before_replacements_are_ready():
    old = [inst(f"o{n}", rid="svc-old") for n in range(4)]
    result = run(desired(4, surge=0, unavailable=1), old)
    assert len(result.stop) == 1 and result.start == []


def test_both_zero_still_moves_one_at_a_time():
    old = [inst(f"o{n}", rid="svc-old") for n in range(2)]
    result = run(desired(2, surge=0, unavailable=0), old)
    assert result.start == [("svc", "svc-new")]


def test_min_ready_delays_counting_a_new_instance_as_available():
    old = [inst(f"o{n}", rid="svc-old") for n in range(2)]
    new = [inst("n0", ready_since=99.5)]
    assert run(desired(2, surge=1, min_ready=1.0), old + new, now=100.0).stop == []
    assert len(run(desired(2, surge=1, min_ready=1.0), old + new, now=101.0).stop) == 1


def test_old_instances_that_are_not_ready_are_retired_first():
    old = [inst("o-ready", rid="svc-old"), inst("o-down", rid="svc-old", state=State.EXITED)]
    result = run(desired(2, surge=1), old)
    assert result.forget == ["o-down"]


def test_progress_deadline_fails_the_rollout_and_freezes_it():
    old = [inst(f"o{n}", rid="svc-old") for n in range(2)]
    new = [inst("n0", state=State.STARTING)]
    result = run(desired(2, deadline=60), old + new, rollout(started=0.0), now=61.0)
    failed = [r for r in result.rollouts if r.status == "failed"]
    assert failed and failed[0].reason == "ProgressDeadlineExceeded"
    frozen = run(desired(2, deadline=60), old + new, {"svc": failed[0]}, now=62.0)
    assert frozen.start == [] and frozen.stop == []


def test_a_newer_release_supersedes_a_progressing_rollout():
    instances = [inst("o0", rid="svc-old"), inst("n0", rid="svc-mid")]
    result = run(desired(2, rid="svc-newest"), instances, rollout(target="svc-mid"))
    statuses = [(r.target, r.status) for r in result.rollouts]
    assert ("svc-mid", "superseded") in statuses and ("svc-newest", "progressing") in statuses


# ---- recreate ----------------------------------------------------------------------------------------

def test_recreate_stops_every_old_instance_before_starting_new_ones():
    old = [inst(f"o{n}", rid="svc-old") for n in range(3)]
    first = run(desired(3, strategy="recreate"), old)
    assert len(first.stop) == 3 and first.start == []
    stopping = [inst(f"o{n}", rid="svc-old", state=State.STOPPING) for n in range(3)]
    assert run(desired(3, strategy="recreate"), stopping).start == []
    assert len(run(desired(3, strategy="recreate"), []).start) == 3


# ---- self-healing and back-off -----------------------------------------------------------------------

def test_a_crashed_instance_restarts_when_its_back_off_is_due():
    crashed = inst("i0", state=State.EXITED, next_attempt=105.0)
    assert run(desired(1), [crashed], now=104.0).restart == []
    assert run(desired(1), [crashed], now=105.0).restart == ["i0"]


def test_a_crashed_instance_is_not_doubled_by_a_new_one():
    result = run(desired(1), [inst("i0", state=State.EXITED, next_attempt=130.0)])
    assert result.start == [] and result.restart == []
    assert any(c.reason == "InstancesCrashing" for c in result.conditions)


def test_removed_service_is_drained_and_stopped():
    instances = [inst("i0"), inst("i1", state=State.EXITED)]
    result = run({}, instances, {})
    assert result.stop == [("i0", "service removed from the environment")] and result.forget == ["i1"]


# ---- capacity ----------------------------------------------------------------------------------------

def test_capacity_starts_what_fits_and_says_why_the_rest_does_not():
    small = Capacity(cpu=8, memory=GiB + 100 * MiB)
    result = run(desired(5, memory=512 * MiB), [], rollouts={}, capacity=small)
    assert len(result.start) == 2
    condition = next(c for c in result.conditions if c.reason == "InsufficientMemory")
    assert condition.message == "svc needs 3 × 512Mi, 100Mi free"


def test_existing_instances_keep_their_reservation():
    small = Capacity(cpu=8, memory=GiB)
    instances = [inst("i0"), inst("i1")]
    result = run(desired(4, memory=512 * MiB), instances, rollout(status="complete"), capacity=small)
    assert result.start == []


def test_cpu_is_a_capacity_limit_too():
    d = {"svc": DesiredService("svc", release(cpu=1.0), 3, "rolling", Rolling("25%", 0, 0, 600), 5.0, None)}
    result = run(d, [], rollouts={}, capacity=Capacity(cpu=2, memory=64 * GiB))
    assert len(result.start) == 2
    assert any(c.reason == "InsufficientCPU" for c in result.conditions)


def test_planning_twice_after_applying_plans_nothing_new():
    """Idempotence: record what the first plan asked for; the second pass must not ask again."""
    first = run(desired(2), [], rollouts={})
    started = [inst(f"n{k}", state=State.STARTING) for k, _ in enumerate(first.start)]
    second = run(desired(2), started, {"svc": first.rollouts[0]})
    assert second.start == [] and second.stop == [] and second.rollouts == []


def test_start_up_storms_are_throttled_to_a_few_instances_per_core():
    result = run(desired(50), [], rollouts={}, capacity=Capacity(cpu=2, memory=64 * GiB))
    assert len(result.start) == 8
    starting = [inst(f"s{n}", state=State.STARTING) for n in range(8)]
    assert run(desired(50), starting, capacity=Capacity(cpu=2, memory=64 * GiB)).start == []


# ---- the wall clock jumps --------------------------------------------------------------------------

def test_a_restart_scheduled_before_the_clock_jumped_back_is_not_postponed_by_the_jump():
    crashed = inst("i0", state=State.EXITED, next_attempt=100.0 + 4.0)
    assert run(desired(1), [crashed], rollout(status="complete"), now=100.0).restart == []   # back-off: wait
    assert run(desired(1), [crashed], rollout(status="complete"), now=104.0 - 3600).restart == ["i0"]


def test_an_instance_ready_since_a_time_the_clock_went_back_past_counts_as_available():
    assert inst("i0", ready_since=5000.0).available(now=1400.0, min_ready=10.0)
    assert not inst("i0", ready_since=95.0).available(now=100.0, min_ready=10.0)
