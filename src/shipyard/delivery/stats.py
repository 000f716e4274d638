"""One-sided tests of "the canary is worse than the primary by more than a margin", from counts.

Both tests ask the same question of a comparison `{compare: ..., maxIncrease: m}`: is there
evidence, at the check's confidence, that the canary is worse than the primary made worse by the
factor θ = 1 + m? The null hypothesis is "not worse than θ × primary"; a p-value below
α = 1 - confidence rejects it (the judge says `fail`), otherwise the judge says `pass`. The judge
guards both with `minRequests`, so "no evidence of harm" is only accepted on enough traffic.

Error rate (`error_rate_test`), canary x₁ errors of n₁ requests, primary x₂ of n₂:

- No errors on either side: nothing to test, p = 1.
- Small counts, i.e. a cell of the 2×2 table whose expected count under equal rates is below 5
  (which is where a rare error class lives, e.g. 10/100 against 0/1000): an exact test conditional
  on the margins. With m = 0 it is Fisher's exact test (`scipy.stats.fisher_exact`,
  alternative="greater"); with m > 0 the null is "odds ratio <= θ", tested with Fisher's
  noncentral hypergeometric distribution (`scipy.stats.nchypergeom_fisher`), which is the same
  test at θ = 1. At the low error rates canaries are judged on, odds ratio ≈ risk ratio; where
  they differ the odds ratio is the larger, so this errs towards `fail`.
- Otherwise the Farrington–Manning score test for the risk ratio, H₀: p₁ <= θ·p₂, with the
  variance taken at the maximum-likelihood rates restricted to p₁ = θ·p₂. With m = 0 this is
  exactly the pooled two-proportion z-test.

Latency (`latency_test`): a one-sided Mann–Whitney U test of canary latencies against primary
latencies multiplied by θ (H₁: a canary request tends to be slower than θ × a primary request),
computed from the histograms without expanding them into samples:

- Both histograms are put on one grid: the union of the canary's bucket bounds and the primary's
  bounds times θ, up to the lower of the two highest finite bounds; everything above is one
  top bucket. Counts between bounds come from linear interpolation of the cumulative counts (the
  assumption `histogram_quantile` makes), so with θ = 1 and the same buckets nothing is
  interpolated; with θ > 1 counts become fractional.
- All observations in one grid bucket are ties. U = Σᵢ aᵢ·(Σ_{j<i} bⱼ + bᵢ/2) for canary counts a
  and primary counts b; the normal approximation uses the tie-corrected variance
  n₁n₂/12·((N+1) - Σ(tᵢ³ - tᵢ)/(N(N-1))) and a continuity correction of 0.5, exactly as
  `scipy.stats.mannwhitneyu(method="asymptotic")` does on the expanded samples. Memory and time
  grow with the number of buckets, never with the number of requests.
- U / (n₁n₂), the probability that a canary request is slower than a θ-scaled primary request
  (ties count half), is reported as the effect size.

So `maxIncrease: 20%` fails when canary latencies are significantly larger than primary
latencies scaled by 1.2, i.e. when the canary is shown to be more than 20 % slower across the
distribution; a canary 10 % slower passes, a canary 50 % slower fails once there is enough traffic.
A rank test answers "is a typical request slower", so a tail that grows while the bulk of requests
stays put (same median, several times the p99) passes it: guard tails with a `latencyP99`
threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def _scipy_stats():  # type: ignore[no-untyped-def]
    """scipy on first use: it costs ~60 MiB of RSS, which a control plane without analyses should not carry."""
    from scipy import stats

    return stats

from shipyard.proxy.window import Buckets, cumulative_at

EXACT_MIN_EXPECTED = 5.0
"""Below this expected count in any cell of the 2×2 table the error-rate test is exact."""


@dataclass(frozen=True)
class ComparisonResult:
    """The outcome of one one-sided test: which test, its statistic and p-value."""

    test: str
    statistic: float | None
    p_value: float


@dataclass(frozen=True)
class LatencyResult(ComparisonResult):
    """A Mann–Whitney result from histograms: U, its z-score and the effect size U/(n₁n₂)."""

    z: float
    n_canary: float
    n_primary: float
    superiority: float | None


def error_rate_test(canary_errors: int, canary_requests: int, primary_errors: int,
                    primary_requests: int, max_increase: float = 0.0) -> ComparisonResult:
    """Test H₁: canary error rate > (1 + max_increase) × primary error rate; both sides n > 0."""
    x1, n1, x2, n2 = canary_errors, canary_requests, primary_errors, primary_requests
    theta = 1.0 + max_increase
    total_errors, total = x1 + x2, n1 + n2
    if total_errors == 0:
        return ComparisonResult("no errors on either side", None, 1.0)
    expected = [n * k / total for n in (n1, n2) for k in (total_errors, total - total_errors)]
    if min(expected) < EXACT_MIN_EXPECTED:
        return _exact_test(x1, n1, x2, n2, theta)
    return _score_test(x1, n1, x2, n2, theta)


def _exact_test(x1: int, n1: int, x2: int, n2: int, theta: float) -> ComparisonResult:
    """Fisher's exact test (theta = 1) or its noncentral form for H₀: odds ratio <= theta."""
    odds_ratio = _odds_ratio(x1, n1, x2, n2)
    if theta == 1.0:
        result = _scipy_stats().fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="greater")
        return ComparisonResult("Fisher exact", odds_ratio, _probability(result.pvalue))
    distribution = _scipy_stats().nchypergeom_fisher(n1 + n2, n1, x1 + x2, theta)
    p_value = distribution.sf(x1 - 1)
    return ComparisonResult("Fisher noncentral exact", odds_ratio, _probability(p_value))


def _score_test(x1: int, n1: int, x2: int, n2: int, theta: float) -> ComparisonResult:
    """Farrington–Manning score test of H₀: p₁ <= theta·p₂ (pooled z-test when theta = 1)."""
    a = (n1 + n2) * theta
    b = -(n1 * theta + x1 + n2 + x2 * theta)
    c = x1 + x2
    p2 = (-b - math.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)
    p1 = min(theta * p2, 1.0)
    variance = p1 * (1 - p1) / n1 + theta * theta * p2 * (1 - p2) / n2
    difference = x1 / n1 - theta * x2 / n2
    name = "two-proportion z" if theta == 1.0 else "Farrington-Manning z"
    if variance <= 0:
        return ComparisonResult(name, None, 0.0 if difference > 0 else 1.0)
    z = difference / math.sqrt(variance)
    return ComparisonResult(name, z, _probability(_scipy_stats().norm.sf(z)))


def latency_test(canary: Buckets, primary: Buckets, max_increase: float = 0.0) -> LatencyResult:
    """Test H₁: canary latency is stochastically greater than (1 + max_increase) × primary's."""
    theta = 1.0 + max_increase
    grid = _grid(canary, primary, theta)
    a = _counts_on_grid(canary, grid, 1.0)
    b = _counts_on_grid(primary, grid, theta)
    n1, n2 = sum(a), sum(b)
    u, primary_below = 0.0, 0.0
    for canary_count, primary_count in zip(a, b, strict=True):
        u += canary_count * (primary_below + primary_count / 2)
        primary_below += primary_count
    n = n1 + n2
    superiority = u / (n1 * n2) if n1 > 0 and n2 > 0 else None
    ties = sum((x + y) ** 3 - (x + y) for x, y in zip(a, b, strict=True))
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 1e-12 * max(n1 * n2, 1.0):
        # Every observation in one bucket (or one side empty): the data cannot tell them apart.
        return LatencyResult("Mann-Whitney U", u, 1.0, 0.0, n1, n2, superiority)
    z = (u - n1 * n2 / 2 - 0.5) / math.sqrt(variance)
    p_value = _probability(_scipy_stats().norm.sf(z))
    return LatencyResult("Mann-Whitney U", u, p_value, z, n1, n2, superiority)


def _grid(canary: Buckets, primary: Buckets, theta: float) -> list[float]:
    """Finite bounds shared by both histograms after scaling the primary's by theta."""
    canary_bounds = [bound for bound, _ in canary[:-1]]
    primary_bounds = [bound * theta for bound, _ in primary[:-1]]
    if not canary_bounds or not primary_bounds:
        return []
    top = min(canary_bounds[-1], primary_bounds[-1])
    return sorted({bound for bound in canary_bounds + primary_bounds if bound <= top})


def _counts_on_grid(buckets: Buckets, grid: list[float], theta: float) -> list[float]:
    """Per-bucket counts of `buckets` scaled by theta on `grid`, plus one bucket above it."""
    if not buckets:
        return [0.0] * (len(grid) + 1)
    cumulative = [cumulative_at(buckets, bound / theta) for bound in grid]
    cumulative.append(float(buckets[-1][1]))
    return [high - low for low, high in zip([0.0, *cumulative[:-1]], cumulative, strict=True)]


def _odds_ratio(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """The sample odds ratio, or None where it is undefined or infinite."""
    numerator, denominator = x1 * (n2 - x2), (n1 - x1) * x2
    return numerator / denominator if denominator else None


def _probability(value: float) -> float:
    """A p-value as a plain float clamped to [0, 1]."""
    return min(max(float(value), 0.0), 1.0)
