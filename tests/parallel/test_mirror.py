"""The pure parts of wiring a parallel run: when it compares, against which instances, the data plane, the check."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shipyard.delivery import phases
from shipyard.engine.model import Instance, Progressive, Rollout, State
from shipyard.parallel import mirror
from shipyard.parallel.compare import Settings
from shipyard.proxy.model import Cluster, DataPlane, Endpoint, Route
from shipyard.spec.models import ParallelRun

RUN = ParallelRun.model_validate({"percent": 25, "methods": ["GET", "POST"],
                                  "ignore": {"headers": ["x-id"], "json": ["$.timestamp"]}, "maxDifferences": 0})


def rollout(**fields) -> Rollout:
    base = Rollout("svc", "svc-new", 0.0, "canary", previous="svc-old", phase=phases.MIRROR)
    return replace(base, **fields)


def instance(name: str, release: str, port: int, state: State = State.READY) -> Instance:
    return Instance(name, "svc", release, port, state, 0.0)


def test_settings_follow_the_spec() -> None:
    assert mirror.settings(RUN) == Settings(25, ("GET", "POST"), ("x-id",), ("$.timestamp",), 0)


@pytest.mark.parametrize("fields, spec, expected", [
    ({}, RUN, True),
    ({"phase": phases.STEP}, RUN, True),
    ({"phase": phases.STARTING}, RUN, False),
    ({"phase": phases.PROMOTING}, RUN, False),
    ({"status": "failed", "phase": phases.ROLLED_BACK}, RUN, False),
    ({"previous": None}, RUN, False),
    ({"strategy": "blue-green"}, RUN, False),
    ({}, None, False),
])
def test_only_a_canary_in_an_analysis_phase_compares(fields, spec, expected) -> None:
    assert mirror.comparing(rollout(**fields), spec) is expected


def test_two_live_instances_and_a_candidate_or_one_live_instance_twice() -> None:
    two = [instance("a", "svc-old", 8001), instance("b", "svc-old", 8002), instance("c", "svc-new", 8003),
           instance("d", "svc-new", 8004, State.STARTING)]
    assert mirror.targets(rollout(), two) == mirror.Targets("http://127.0.0.1:8001", "http://127.0.0.1:8002",
                                                            "http://127.0.0.1:8003")
    one = mirror.targets(rollout(), two[::2])
    assert one is not None and one.primary == one.secondary == "http://127.0.0.1:8001"
    assert mirror.targets(rollout(), two[:2]) is None  # no ready candidate


def test_the_data_plane_copies_to_the_comparator_cluster() -> None:
    plane = DataPlane(routes=(Route("svc", 9000, (("svc.old", 1),)), Route("other", 9001, (("other.x", 1),))),
                      clusters=(Cluster("svc.old", (Endpoint("127.0.0.1", 8001),)),
                                Cluster("other.x", (Endpoint("127.0.0.1", 8002),))), ingress_port=0)
    assert mirror.with_comparators(plane, {}) is plane
    copied = mirror.with_comparators(plane, {"svc": (7000, mirror.settings(RUN))})
    svc, other = copied.routes
    assert (svc.compare_cluster, svc.compare_percent, svc.compare_methods) == ("svc.parallel-run", 25, ("GET", "POST"))
    assert other.compare_cluster is None
    assert Cluster("svc.parallel-run", (Endpoint("127.0.0.1", 7000),), idle_timeout_s=2.0) in copied.clusters


def summary(differences: list[tuple[str, int]], compared: int = 20) -> dict:
    return {"compared": compared, "differing": len(differences), "failed": 0,
            "differences": [{"route": "GET /p", "field": f, "count": n, "examples": []} for f, n in differences],
            "noise": {"GET /p": ["$.timestamp"]}}


def test_the_check_fails_beyond_max_differences_holds_on_too_few_copies_and_passes_otherwise() -> None:
    strict = mirror.settings(RUN)
    failed = mirror.decision(summary([("$.price", 3)]), strict, min_requests=10)
    assert failed.verdict == "fail" and failed.inputs["unexplained"] == 3 and failed.inputs["max_differences"] == 0
    assert "GET /p $.price (3)" in failed.reason and "noise cancelled: $.timestamp" in failed.reason
    assert mirror.decision(summary([], compared=3), strict, min_requests=10).verdict == "inconclusive"
    assert mirror.decision(summary([]), strict, min_requests=10).verdict == "pass"
    lenient = replace(strict, max_differences=None)
    assert mirror.decision(summary([("$.price", 3)]), lenient, min_requests=10).verdict == "pass"
    assert mirror.joined((failed, mirror.decision(summary([]), strict, 10))).verdict == "fail"


def test_a_parallel_run_starts_the_canary_on_copies_only() -> None:
    config = Progressive(steps=(10, 100), interval=5.0, parallel_run=10.0)
    started = phases.start_analysis(rollout(phase=phases.STARTING), config, now=1.0)
    assert (started.phase, started.weight) == (phases.MIRROR, 0)
