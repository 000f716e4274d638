"""Tests of the fetch schedule and its backoff."""

from __future__ import annotations

import pytest

from shipyard.source.poll import next_fetch_due, retry_delay


@pytest.mark.parametrize(
    "last_fetch, interval, now, requested, due",
    [
        (None, 60.0, 0.0, False, True),  # never fetched
        (100.0, 60.0, 159.9, False, False),
        (100.0, 60.0, 160.0, False, True),  # exactly one interval later
        (100.0, 60.0, 101.0, True, True),  # a webhook asked
        (100.0, 60.0, 50.0, False, False),  # a clock that went back waits
    ],
)
def test_next_fetch_due(
    last_fetch: float | None, interval: float, now: float, requested: bool, due: bool
) -> None:
    assert next_fetch_due(last_fetch, interval, now, requested) is due


@pytest.mark.parametrize(
    "interval, failures, cap, delay",
    [
        (30.0, 0, 600.0, 30.0),
        (30.0, 1, 600.0, 60.0),
        (30.0, 2, 600.0, 120.0),
        (30.0, 4, 600.0, 480.0),
        (30.0, 5, 600.0, 600.0),  # capped
        (30.0, 10_000, 600.0, 600.0),  # no overflow
        (900.0, 3, 600.0, 900.0),  # the cap never shortens the interval
        (30.0, -1, 600.0, 30.0),
    ],
)
def test_retry_delay(interval: float, failures: int, cap: float, delay: float) -> None:
    assert retry_delay(interval, failures, cap) == delay


def test_a_failing_source_is_fetched_less_often() -> None:
    interval = retry_delay(60.0, failures=2)
    assert not next_fetch_due(1000.0, interval, 1000.0 + 200.0, requested=False)
    assert next_fetch_due(1000.0, interval, 1000.0 + 240.0, requested=False)
