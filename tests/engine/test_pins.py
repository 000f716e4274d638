"""`rollout undo` as pure decisions: which release to go back to, and how long the pin holds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shipyard.engine.model import Rollout
from shipyard.engine.pins import Pin, apply_pins, pin_conditions, undo_target
from shipyard.errors import StateError
from tests.engine.test_plan import desired, release


def history(*entries: tuple[str, str | None, str]) -> list[Rollout]:
    """Newest first, like the store returns it: (target, previous, status)."""
    return [Rollout("svc", target, float(100 - n), "rolling", status=status, previous=previous)
            for n, (target, previous, status) in enumerate(entries)]


RELEASES = [release("svc-aaa"), release("svc-bbb"), release("svc-ccc")]


def test_undo_goes_back_to_what_the_current_rollout_replaced() -> None:
    past = history(("svc-ccc", "svc-bbb", "complete"), ("svc-bbb", "svc-aaa", "complete"), ("svc-aaa", None, "complete"))
    assert undo_target("svc", "svc-ccc", past, RELEASES, None).id == "svc-bbb"


def test_undo_without_a_replaced_release_takes_the_newest_completed_other_one() -> None:
    past = history(("svc-ccc", None, "progressing"), ("svc-bbb", None, "failed"), ("svc-aaa", None, "complete"))
    assert undo_target("svc", "svc-ccc", past, RELEASES, None).id == "svc-aaa"


@pytest.mark.parametrize("to", ["svc-aaa", "aaa", "1.4.0"])
def test_undo_to_a_named_release_by_id_digest_or_version(to: str) -> None:
    releases = [replace(release("svc-aaa"), version="1.4.0"), replace(release("svc-bbb"), version="1.5.0")]
    assert undo_target("svc", "svc-bbb", [], releases, to).id == "svc-aaa"


def test_undo_refuses_unknown_releases_and_a_service_with_no_past() -> None:
    with pytest.raises(StateError, match="no release 'nope'; known releases: svc-aaa"):
        undo_target("svc", "svc-bbb", [], RELEASES[:1], "nope")
    with pytest.raises(StateError, match="no earlier release"):
        undo_target("svc", "svc-aaa", history(("svc-aaa", None, "complete")), RELEASES, None)
    with pytest.raises(StateError, match="already runs release svc-bbb"):
        undo_target("svc", "svc-bbb", [], RELEASES, "svc-bbb")


def test_a_pin_runs_the_older_release_as_a_rolling_update_while_the_spec_is_unchanged() -> None:
    services = desired(rid="svc-ccc", strategy="canary")
    pins = {"svc": Pin("svc", "svc-bbb", "svc-ccc", "undo", 1.0)}
    effective, kept, dropped = apply_pins(services, pins, {"svc-bbb": release("svc-bbb")})
    assert effective["svc"].release.id == "svc-bbb" and effective["svc"].strategy == "rolling"
    assert effective["svc"].replicas == services["svc"].replicas
    assert kept == pins and dropped == []
    [condition] = pin_conditions(kept, services, {"svc-bbb": release("svc-bbb")})
    assert (condition.type, condition.status, condition.object) == ("InSync", "False", "svc")
    assert "runs release svc-bbb" in condition.message and "asks for svc-ccc" in condition.message


def test_a_pin_ends_once_the_spec_asks_for_something_else_or_the_service_is_gone() -> None:
    pins = {"svc": Pin("svc", "svc-bbb", "svc-ccc", "undo", 1.0)}
    effective, kept, dropped = apply_pins(desired(rid="svc-ddd"), pins, {"svc-bbb": release("svc-bbb")})
    assert effective["svc"].release.id == "svc-ddd" and kept == {} and dropped == [pins["svc"]]
    assert apply_pins({}, pins, {"svc-bbb": release("svc-bbb")})[2] == [pins["svc"]]
