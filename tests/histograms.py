"""Histogram builders shared by the analysis tests."""

from __future__ import annotations

import math
from collections.abc import Sequence

from hypothesis import strategies as st
from scipy import stats

from shipyard.proxy.window import Buckets, WindowStats

# Envoy's default histogram bucket bounds, in ms.
ENVOY_BOUNDS: tuple[float, ...] = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
                                   30000, 60000, 300000, 600000, 1800000, 3600000)


def cumulative(per_bucket: Sequence[int], bounds: Sequence[float] = ENVOY_BOUNDS) -> Buckets:
    """Cumulative buckets from per-bucket counts; the last count goes to +inf."""
    assert len(per_bucket) == len(bounds) + 1
    total, out = 0, []
    for bound, count in zip([*bounds, math.inf], per_bucket, strict=True):
        total += count
        out.append((float(bound), total))
    return tuple(out)


def from_samples(samples: Sequence[float], bounds: Sequence[float] = ENVOY_BOUNDS) -> Buckets:
    """Bin raw latencies (ms) the way Envoy does (le = upper bound inclusive)."""
    return tuple((float(b), sum(1 for s in samples if s <= b)) for b in bounds) + \
        ((math.inf, len(samples)),)


def lognormal(n: int, median_ms: float, sigma: float = 0.6,
              bounds: Sequence[float] = ENVOY_BOUNDS) -> Buckets:
    """The expected Envoy histogram of n log-normal latencies (deterministic, no sampling)."""
    distribution = stats.lognorm(sigma, scale=median_ms)
    counts = [min(n, round(n * float(distribution.cdf(b)))) for b in bounds]
    return tuple(zip(map(float, bounds), counts, strict=True)) + ((math.inf, n),)


def window(requests: int, errors: int = 0, seconds: float = 60.0,
           buckets: Buckets = ()) -> WindowStats:
    return WindowStats(requests=requests, errors_5xx=errors, seconds=seconds,
                       latency_buckets=buckets)


@st.composite
def histograms(draw: st.DrawFn, max_count: int = 10_000) -> Buckets:
    """Any well-formed cumulative histogram on a subset of Envoy's bounds (possibly empty)."""
    bounds = draw(st.lists(st.sampled_from(ENVOY_BOUNDS), min_size=0, max_size=8, unique=True))
    per_bucket = draw(st.lists(st.integers(0, max_count), min_size=len(bounds) + 1,
                               max_size=len(bounds) + 1))
    return cumulative(per_bucket, sorted(bounds))


@st.composite
def windows(draw: st.DrawFn) -> WindowStats:
    """Any valid window: non-negative counts, errors <= requests, any histogram."""
    requests = draw(st.integers(0, 1_000_000))
    errors = draw(st.integers(0, requests))
    seconds = draw(st.floats(0, 3600, allow_nan=False))
    return window(requests, errors, seconds, draw(histograms()))
