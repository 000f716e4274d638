"""The follower's pure decisions: what to do with a fetched head, conditions, overrides, history records."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shipyard.engine.desired import DesiredState
from shipyard.engine.model import DesiredService, Probe, Release, Rolling
from shipyard.gitops.decide import (
    Action,
    commit_record,
    decide,
    rejection_condition,
    seconds_until,
    services_after,
    with_overrides,
)
from shipyard.source.git import Commit

A, B, C = "a" * 40, "b" * 40, "c" * 40


@pytest.mark.parametrize("head, applied, rejected, suspended, drifted, action", [
    (B, A, None, False, False, Action.APPLY),       # a new commit
    (A, A, None, False, False, Action.NONE),        # nothing new
    (A, A, None, False, True, Action.REAPPLY),      # scaled or edited by hand: git wins
    (None, A, None, False, True, Action.REAPPLY),   # the fetch failed: drift is still put back
    (None, A, None, False, False, Action.NONE),
    (B, A, B, False, False, Action.NONE),           # the head was rejected already: not again
    (B, A, B, False, True, Action.REAPPLY),
    (C, A, B, False, False, Action.APPLY),          # the next commit after a rejected one
    (A, A, B, False, False, Action.REAPPLY),        # the branch went back to the applied commit
    (B, A, None, True, False, Action.HOLD),         # suspended: new commits wait
    (A, A, None, True, True, Action.NONE),          # suspended: imperative changes stay
    (B, None, None, False, False, Action.APPLY),    # the first commit
    (None, None, None, False, False, Action.NONE),
])
def test_decide(head, applied, rejected, suspended, drifted, action):
    assert decide(head, applied, rejected, suspended, drifted) is action


COMMIT = Commit(B, "Ada Lovelace", "ada@example.com", datetime(2024, 1, 1, 12, tzinfo=timezone.utc),
                "Bump catalog", "")


def test_rejection_condition_names_the_commit_and_every_error():
    errors = ["services/a.yaml:3:1: error: replcas: unknown field", "environments/dev.yaml:7:5: error: x: bad"]
    condition = rejection_condition(COMMIT, errors)
    assert (condition.type, condition.status, condition.reason) == ("Ready", "False", "ValidationFailed")
    assert condition.message.startswith(f"commit {B[:12]} (Bump catalog) is invalid, 2 errors")
    assert all(error in condition.message for error in errors)


def _desired(**replicas: int) -> DesiredState:
    probe = Probe("/healthz", 1.0, 1.0, 3)
    services = {}
    for name, count in replicas.items():
        release = Release(f"{name}-1", name, "1.0.0", "hash", ("python3",), (), 0.1, 2**26, probe, probe, 30.0)
        services[name] = DesiredService(name, release, count, "rolling", Rolling(1, 0, 0.0, 600.0), 10.0, None)
    return DesiredState("dev", "shop", A, services)


def test_overrides_replace_only_the_replicas_of_the_named_services():
    desired = _desired(alpha=3, beta=1)
    scaled = with_overrides(desired, {"alpha": 5, "gone": 2})
    assert scaled.services["alpha"].replicas == 5 and scaled.services["beta"].replicas == 1
    assert scaled.services["alpha"].release == desired.services["alpha"].release and "gone" not in scaled.services
    assert desired.services["alpha"].replicas == 3  # the source's desired state is kept as it was
    assert with_overrides(desired, {}) is desired


def test_records_for_the_history():
    assert services_after(_desired(beta=1, alpha=3)) == {
        "alpha": {"version": "1.0.0", "replicas": 3, "release": "alpha-1"},
        "beta": {"version": "1.0.0", "replicas": 1, "release": "beta-1"}}
    assert services_after(None) == {}
    assert commit_record(COMMIT) == {"sha": B, "short": B[:12], "author": "Ada Lovelace", "email": "ada@example.com",
                                     "date": "2024-01-01T12:00:00+00:00", "message": "Bump catalog"}


def test_seconds_until_the_next_fetch():
    assert seconds_until(None, 30, 100) == 0
    assert seconds_until(100, 30, 110) == 20
    assert seconds_until(100, 30, 200) == 0
