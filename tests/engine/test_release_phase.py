"""The release phase's pure decision, table-style: hold, run, fail, release, rerun on rollback."""

from __future__ import annotations

import pytest

from shipyard.engine.model import Capacity, DesiredService, Instance, Probe, Release, Rolling, Rollout, State
from shipyard.engine.plan import World, plan
from shipyard.engine.release_phase import RELEASING, decide, failure_message, needs_run

PROBE = Probe("/healthz", 1.0, 1.0, 3)


def desired(rid: str = "svc-new", rerun: bool = False, command: tuple[str, ...] = ("migrate",)) -> DesiredService:
    release = Release(rid, "svc", "1", "snap", ("app",), (), 0.1, 64 << 20, PROBE, PROBE, 30.0,
                      release_command=command, release_timeout=60.0, rerun_on_rollback=rerun)
    return DesiredService("svc", release, 2, "rolling", Rolling("25%", 0, 0.0, 600.0), 5.0, None)


def serving(rid: str = "svc-old") -> list[Instance]:
    return [Instance(id=f"i{n}", service="svc", release=rid, port=1000 + n, state=State.READY, created_at=0.0)
            for n in range(2)]


def test_a_new_release_is_held_and_its_phase_started() -> None:
    decision = decide(desired(), None, None, None, serving(), running=False, now=5.0)
    assert decision.run
    assert decision.rollout is not None and decision.rollout.status == RELEASING
    assert decision.rollout.target == "svc-new" and decision.rollout.previous == "svc-old"


def test_a_held_rollout_starts_nothing_and_stops_nothing() -> None:
    held = decide(desired(), None, None, None, serving(), running=False, now=5.0).rollout
    assert held is not None
    result = plan(World({"svc": desired()}, tuple(serving()), {"svc": held}, Capacity(8, 8 << 30), 6.0))
    assert result.start == [] and result.stop == []


@pytest.mark.parametrize("record, running, expected", [
    ({"status": "running"}, True, None),          # already held, under way: nothing to do
    ({"status": "running"}, False, None),         # a restarted control plane resumes it (the reconciler's job)
    ({"status": "succeeded"}, False, "progressing"),
    ({"status": "failed", "exit_code": 3, "output": ["boom"]}, False, "failed"),
])
def test_outcomes_of_a_held_rollout(record: dict, running: bool, expected: str | None) -> None:
    held = decide(desired(), None, None, None, serving(), running=False, now=5.0).rollout
    decision = decide(desired(), held, record, None, serving(), running=running, now=9.0)
    assert not decision.run
    assert (decision.rollout.status if decision.rollout else None) == expected
    if expected == "failed":
        assert decision.rollout is not None and "exited with code 3" in decision.rollout.message
        assert decide(desired(), decision.rollout, record, None, serving(), False, 10.0).rollout is None


def test_a_release_without_a_phase_is_left_alone() -> None:
    assert decide(desired(command=()), None, None, None, serving(), False, 5.0) == decide(
        desired(command=()), None, {"status": "failed"}, None, [], False, 5.0)


@pytest.mark.parametrize("rerun, last, expected", [
    (False, "svc-other", False),   # a rollback to a release whose phase ran does not run it again…
    (True, "svc-other", True),     # …unless declared
    (True, "svc-new", False),      # the release whose phase ran last (a restart, a re-apply): never again
    (True, None, False),
])
def test_rerun_on_rollback_only_if_declared(rerun: bool, last: str | None, expected: bool) -> None:
    assert needs_run(desired(rerun=rerun), {"status": "succeeded"}, last) is expected


def test_failure_message_tells_exit_code_timeout_and_output() -> None:
    failed = {"exit_code": 2, "output": ["a", "b"]}
    assert failure_message(("m", "up"), failed, "svc-new", "svc-old") == (
        "release phase `m up` exited with code 2; release svc-new is not deployed, release svc-old keeps serving; "
        "last output: a | b")
    assert "timed out after 60s" in failure_message(("m",), {"timed_out": True, "timeout": 60.0}, "r", None)
    assert "nothing was deployed" in failure_message(("m",), {"exit_code": 1}, "r", None)


def test_a_first_deployment_waits_for_its_phase_too() -> None:
    held = decide(desired(), None, None, None, [], running=False, now=1.0).rollout
    assert held is not None and held.previous is None
    result = plan(World({"svc": desired()}, (), {"svc": held}, Capacity(8, 8 << 30), 2.0))
    assert result.start == []
    released = decide(desired(), held, {"status": "succeeded"}, None, [], False, 3.0).rollout
    assert released is not None and released.status == "progressing"
    assert plan(World({"svc": desired()}, (), {"svc": released}, Capacity(8, 8 << 30), 4.0)).start == \
        [("svc", "svc-new")] * 2
    assert isinstance(released, Rollout)
