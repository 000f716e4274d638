"""Traffic of one release over one check window: counts, rates and histogram quantiles."""

from __future__ import annotations

import math
from dataclasses import dataclass

Buckets = tuple[tuple[float, int], ...]
"""Cumulative histogram: (upper bound in ms, observations <= bound), ascending, `+inf` last."""


@dataclass(frozen=True)
class WindowStats:
    """What one release served during a window: the difference of two scrapes of Envoy's stats.

    `latency_buckets` is cumulative, Envoy/Prometheus style: `(upper_bound_ms, count)` pairs with
    strictly increasing bounds and non-decreasing counts, the last bound `math.inf`. It may be
    empty when the data plane reported no histogram.
    """

    requests: int
    errors_5xx: int
    seconds: float
    latency_buckets: Buckets = ()

    def __post_init__(self) -> None:
        if self.requests < 0 or self.errors_5xx < 0 or not 0 <= self.seconds < math.inf:
            raise ValueError(f"window counts must be non-negative, got {self!r}")
        if self.errors_5xx > self.requests:
            raise ValueError(f"window has more 5xx ({self.errors_5xx}) than requests "
                             f"({self.requests})")
        _validate_buckets(self.latency_buckets)

    @property
    def request_rate(self) -> float:
        """Requests per second over the window (0 for an empty window)."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def success_rate(self) -> float | None:
        """Percentage of requests that were not answered with a 5xx; None without requests."""
        if self.requests == 0:
            return None
        return 100.0 * (self.requests - self.errors_5xx) / self.requests

    @property
    def error_rate(self) -> float | None:
        """Percentage of requests answered with a 5xx; None without requests."""
        if self.requests == 0:
            return None
        return 100.0 * self.errors_5xx / self.requests

    @property
    def latency_count(self) -> int:
        """Number of observations in the latency histogram."""
        return self.latency_buckets[-1][1] if self.latency_buckets else 0

    def quantile(self, q: float) -> float | None:
        """The q-quantile of latency in ms, as Prometheus' `histogram_quantile` computes it.

        Linear interpolation inside the bucket the rank falls into; the lowest bucket starts at 0;
        a rank in the `+inf` bucket yields the highest finite bound. None without observations.
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be within [0, 1], got {q}")
        buckets = self.latency_buckets
        total = self.latency_count
        if total == 0 or len(buckets) < 2:
            return None
        rank = q * total
        below, lower = 0, 0.0
        for bound, cumulative in buckets[:-1]:
            # `> below` skips empty buckets, so q=0 gives the start of the first non-empty bucket.
            if cumulative >= rank and cumulative > below:
                return lower + (bound - lower) * (rank - below) / (cumulative - below)
            below, lower = cumulative, bound
        return buckets[-2][0]


def cumulative_at(buckets: Buckets, x: float) -> float:
    """Observations <= x, interpolated linearly inside a bucket (the inverse of `quantile`).

    Exact at every bucket bound; above the highest finite bound it is only known at `+inf`, so
    callers must not ask for a finite x beyond it.
    """
    below, lower = 0, 0.0
    for bound, cumulative in buckets:
        if x <= bound:
            if math.isinf(bound):
                return float(below) if math.isfinite(x) else float(cumulative)
            if x <= lower:
                return float(below)
            return below + (cumulative - below) * (x - lower) / (bound - lower)
        below, lower = cumulative, bound
    return float(below)


def _validate_buckets(buckets: Buckets) -> None:
    """Raise ValueError unless `buckets` is a well-formed cumulative histogram (or empty)."""
    if not buckets:
        return
    if not math.isinf(buckets[-1][0]):
        raise ValueError(f"the last latency bucket must be +inf, got {buckets[-1][0]}")
    previous_bound, previous_count = -math.inf, 0
    for bound, count in buckets:
        if bound < 0 or not bound > previous_bound:
            raise ValueError(f"latency bucket bounds must be >= 0 and increasing, got {bound} "
                             f"after {previous_bound}")
        if count < previous_count:
            raise ValueError(f"latency bucket counts must be cumulative, got {count} after "
                             f"{previous_count} at bound {bound}")
        previous_bound, previous_count = bound, count
