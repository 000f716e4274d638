"""The pure mapping from records to the data plane: a route never names a cluster the picture lacks."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from shipyard.delivery import phases
from shipyard.engine.desired import DesiredState
from shipyard.engine.model import Instance, Progressive, Rollout, State
from shipyard.engine.routing import data_plane, split
from shipyard.proxy.model import HeaderMatch, cluster_name
from tests.engine.test_plan import desired

CANARY = Progressive(steps=(20, 50, 100), interval=1.0, failure_threshold=2, mirror=20,
                     matches=(HeaderMatch("x-canary", "1"),))


def state(strategy: str = "canary", target: str = "svc-good") -> DesiredState:
    service = replace(desired(3, rid=target, strategy=strategy)["svc"], progressive=CANARY, endpoint_port=18080)
    return DesiredState("dev", "test", "r1", {"svc": service})


def instance(iid: str, rid: str, state_: State = State.READY, port: int = 20000) -> Instance:
    return Instance(id=iid, service="svc", release=rid, port=port, state=state_, created_at=0.0)


def test_a_promoted_canary_whose_old_primary_is_gone_routes_only_to_the_new_release() -> None:
    """Observed failure (1): A rolled back from svc-bad to svc-orig, then promoted to svc-good; once the
    old primary's instances were forgotten the next pass raised `invalid data plane: route svc uses
    unknown clusters ['svc.orig']` (the promoted canary kept naming its old primary at weight 0)."""
    rollout = Rollout("svc", "svc-good", 0.0, "canary", status="complete", previous="svc-orig",
                      phase=phases.PROMOTED, weight=100, step=2)
    instances = [instance(f"good{n}", "svc-good", port=20000 + n) for n in range(3)]
    plane = data_plane(state(), instances, 0, rollouts={"svc": rollout})
    assert plane.routes[0].weights == ((cluster_name("svc-good"), 100),)
    assert {c.name for c in plane.clusters} == {"svc.good"}


RELEASES = ("svc-orig", "svc-good", "svc-bad")
ROLLOUTS = [
    Rollout("svc", "svc-good", 0.0, strategy, status=status, previous=previous, phase=phase, weight=weight)
    for strategy, phase_list in (("canary", (phases.STARTING, phases.MIRROR, phases.STEP, phases.PROMOTING,
                                             phases.PROMOTED, phases.ROLLED_BACK)),
                                 ("blue-green", (phases.STARTING, phases.AWAITING, phases.SWITCHED,
                                                 phases.ROLLED_BACK)))
    for phase in phase_list
    for status in ("progressing", "complete", "failed")
    for previous in ("svc-orig", "svc-bad", None)
    for weight in (0, 50, 100)
]
PICTURES = [dict(p) for n in range(len(RELEASES) + 1) for p in itertools.combinations(
    [(r, s) for r in RELEASES for s in (State.READY, State.STARTING, State.STOPPING)], n)
    if len({r for r, _ in p}) == n]


@pytest.mark.parametrize("strategy", ["canary", "blue-green"])
def test_no_order_of_releases_makes_a_route_name_a_missing_cluster(strategy: str) -> None:
    """Every rollout record (any phase, status, previous release, weight) against every picture of
    instances (each release absent, starting, ready or stopping): the data plane is always valid."""
    desired_state = state(strategy)
    for rollout, picture in itertools.product(ROLLOUTS, PICTURES):
        instances = [instance(f"{rid}-{n}", rid, st, 20000 + n) for n, (rid, st) in enumerate(picture.items())]
        plane = data_plane(desired_state, instances, 0, rollouts={"svc": replace(rollout, strategy=strategy)},
                           previews={"svc": 18081})   # raises ValueError on any unknown cluster
        named = set().union(*(route.clusters() for route in plane.routes))
        assert named <= {cluster_name(rid) for rid in picture}, (rollout, picture)


def test_split_names_only_releases_present_in_the_picture() -> None:
    service = state().services["svc"]
    promoted = Rollout("svc", "svc-good", 0.0, "canary", previous="svc-orig", phase=phases.STEP, weight=50)
    assert dict(split(service, promoted, {"svc-good": 1})["weights"]) == {"svc.good": 100}
    assert dict(split(service, promoted, {"svc-good": 1, "svc-orig": 0})["weights"]) == {
        "svc.orig": 0, "svc.good": 100}
    assert dict(split(service, promoted, {"svc-good": 1, "svc-orig": 2})["weights"]) == {
        "svc.orig": 50, "svc.good": 50}
