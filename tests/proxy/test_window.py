"""Tests of WindowStats: rates, validation and histogram_quantile-compatible quantiles."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.proxy.window import Buckets, WindowStats, cumulative_at

from tests.histograms import histograms, window

INF = math.inf
SIMPLE: Buckets = ((100.0, 50), (200.0, 90), (500.0, 100), (INF, 100))


@pytest.mark.parametrize(("buckets", "q", "expected"), [
    (SIMPLE, 0.5, 100.0),                        # exactly at a bound
    (SIMPLE, 0.25, 50.0),                        # lowest bucket starts at 0
    (SIMPLE, 0.7, 150.0),                        # 100 + 100 * 20/40
    (SIMPLE, 0.95, 350.0),                       # 200 + 300 * 5/10
    (SIMPLE, 0.99, 470.0),
    (SIMPLE, 1.0, 500.0),
    (SIMPLE, 0.0, 0.0),
    (((100.0, 10), (INF, 20)), 0.9, 100.0),      # rank in +inf: highest finite bound
    (((100.0, 10), (INF, 20)), 0.5, 100.0),
    (((1.0, 0), (5.0, 0), (10.0, 4), (INF, 4)), 0.5, 7.5),   # empty buckets are skipped
    (((1.0, 0), (5.0, 0), (10.0, 4), (INF, 4)), 0.0, 5.0),   # q=0: start of first non-empty
    (((0.5, 3), (1.0, 3), (INF, 3)), 0.99, 0.495),
])
def test_quantile_interpolates_like_histogram_quantile(buckets: Buckets, q: float,
                                                       expected: float) -> None:
    assert window(100, buckets=buckets).quantile(q) == pytest.approx(expected)


@pytest.mark.parametrize("buckets", [(), ((INF, 0),), ((100.0, 0), (INF, 0)), ((INF, 5),)])
def test_quantile_is_none_without_finite_data(buckets: Buckets) -> None:
    assert window(10, buckets=buckets).quantile(0.5) is None


@pytest.mark.parametrize("q", [-0.1, 1.1, math.nan])
def test_quantile_rejects_q_outside_unit_interval(q: float) -> None:
    with pytest.raises(ValueError, match="quantile"):
        window(1, buckets=SIMPLE).quantile(q)


@pytest.mark.parametrize(("requests", "errors", "seconds", "rate", "success", "error"), [
    (812, 81, 60.0, 812 / 60, 100 * 731 / 812, 100 * 81 / 812),
    (100, 0, 10.0, 10.0, 100.0, 0.0),
    (0, 0, 60.0, 0.0, None, None),
    (5, 5, 0.0, 0.0, 0.0, 100.0),
])
def test_rates(requests: int, errors: int, seconds: float, rate: float, success: float | None,
               error: float | None) -> None:
    stats = window(requests, errors, seconds)
    assert stats.request_rate == pytest.approx(rate)
    assert stats.success_rate == (None if success is None else pytest.approx(success))
    assert stats.error_rate == (None if error is None else pytest.approx(error))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"requests": -1, "errors_5xx": 0, "seconds": 1.0}, "non-negative"),
    ({"requests": 1, "errors_5xx": 2, "seconds": 1.0}, "more 5xx"),
    ({"requests": 1, "errors_5xx": 0, "seconds": math.nan}, "non-negative"),
    ({"requests": 1, "errors_5xx": 0, "seconds": 1.0,
      "latency_buckets": ((100.0, 1),)}, r"\+inf"),
    ({"requests": 1, "errors_5xx": 0, "seconds": 1.0,
      "latency_buckets": ((100.0, 1), (50.0, 2), (INF, 2))}, "increasing"),
    ({"requests": 1, "errors_5xx": 0, "seconds": 1.0,
      "latency_buckets": ((100.0, 3), (INF, 2))}, "cumulative"),
])
def test_invalid_windows_are_rejected(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        WindowStats(**kwargs)  # type: ignore[arg-type]


def test_cumulative_at_inverts_quantile() -> None:
    assert cumulative_at(SIMPLE, 150.0) == pytest.approx(70.0)
    assert cumulative_at(SIMPLE, 500.0) == 100.0
    assert cumulative_at(SIMPLE, 0.0) == 0.0
    assert cumulative_at(SIMPLE, INF) == 100.0


@given(histograms(), st.floats(0, 1), st.floats(0, 1))
def test_quantile_is_monotone_in_q(buckets: Buckets, q1: float, q2: float) -> None:
    stats = window(1, buckets=buckets)
    low, high = stats.quantile(min(q1, q2)), stats.quantile(max(q1, q2))
    if low is None or high is None:
        assert low is None and high is None
        return
    assert low <= high + 1e-9
    finite = [bound for bound, _ in buckets if math.isfinite(bound)]
    assert low >= 0 and high <= finite[-1]


@given(histograms(), st.floats(0, 1))
def test_cumulative_at_quantile_recovers_the_rank(buckets: Buckets, q: float) -> None:
    value = window(1, buckets=buckets).quantile(q)
    total = buckets[-1][1] if buckets else 0
    if value is None or q * total > buckets[-2][1]:
        return  # rank in the +inf bucket: clamped to the highest finite bound
    assert cumulative_at(buckets, value) == pytest.approx(q * total, abs=1e-6 * max(total, 1))


# Cases first written for the data plane's own quantile (now this one).
@pytest.mark.parametrize(
    "buckets, q, expected",
    [
        (((1, 0), (2, 10), (INF, 10)), 0.5, 1.5),  # interpolated inside (1, 2]
        (((1, 10), (2, 10), (INF, 10)), 0.5, 0.5),  # the first bucket starts at 0
        (((1, 5), (2, 10), (INF, 10)), 1.0, 2.0),
        (((1, 5), (2, 5), (3, 10), (INF, 10)), 0.5, 1.0),  # rank on a bucket edge
        (((1, 5), (2, 5), (INF, 10)), 0.9, 2.0),  # in +Inf: the highest finite bound
        (((10, 1), (20, 2), (40, 4), (INF, 4)), 0.75, 30.0),
        (((1, 0), (2, 0), (INF, 0)), 0.5, None),  # no observations
        (((INF, 3),), 0.5, None),  # fewer than two buckets, like Prometheus
    ],
)
def test_quantile_matches_prometheus_on_envoy_style_buckets(
    buckets: tuple[tuple[float, int], ...], q: float, expected: float | None
) -> None:
    assert WindowStats(buckets[-1][1], 0, 1.0, buckets).quantile(q) == expected


def test_quantile_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        WindowStats(1, 0, 1.0, ((1, 1), (INF, 1))).quantile(1.5)
    with pytest.raises(ValueError):
        WindowStats(1, 0, 1.0, ((1, 1), (2, 1))).quantile(0.5)
