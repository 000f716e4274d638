"""Crash back-off: immediate first restart, then 1 s doubling to 60 s, reset after 10 minutes ready."""

import pytest

from shipyard.engine.backoff import crash_count, restart_delay


@pytest.mark.parametrize("crashes, delay", [(1, 0), (2, 1), (3, 2), (4, 4), (7, 32), (8, 60), (50, 60)])
def test_restart_delay(crashes, delay):
    assert restart_delay(crashes) == delay


@pytest.mark.parametrize("previous, ready_since, now, expected", [
    (0, None, 10.0, 1),
    (3, None, 10.0, 4),
    (3, 0.0, 599.0, 4),      # ready, but not for 10 minutes
    (3, 0.0, 600.0, 1),      # ready 10 minutes: a fresh count
])
def test_crash_count(previous, ready_since, now, expected):
    assert crash_count(previous, ready_since, now) == expected
