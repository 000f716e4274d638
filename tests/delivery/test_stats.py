"""Tests of the one-sided tests against scipy on expanded samples and textbook formulas."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from shipyard.delivery.stats import error_rate_test, latency_test
from shipyard.proxy.window import Buckets

from tests.histograms import ENVOY_BOUNDS, cumulative, from_samples, lognormal


def _expand(buckets: Buckets) -> list[int]:
    """One sample per observation, valued by its bucket's index: ties within a bucket."""
    samples, below = [], 0
    for index, (_, count) in enumerate(buckets):
        samples += [index] * (count - below)
        below = count
    return samples


per_bucket = st.lists(st.integers(0, 40), min_size=len(ENVOY_BOUNDS) + 1,
                      max_size=len(ENVOY_BOUNDS) + 1)


@settings(max_examples=40, deadline=None)
@given(per_bucket, per_bucket)
def test_binned_mann_whitney_equals_scipy_on_expanded_samples(a: list[int], b: list[int]) -> None:
    canary, primary = cumulative(a), cumulative(b)
    result = latency_test(canary, primary)
    x, y = _expand(canary), _expand(primary)
    if len(x) == 0 or len(y) == 0 or len(set(x + y)) == 1:
        assert result.p_value == 1.0
        return
    expected = stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic")
    assert result.statistic == pytest.approx(float(expected.statistic))
    assert result.p_value == pytest.approx(float(expected.pvalue), rel=1e-9, abs=1e-12)


def test_binned_mann_whitney_on_real_samples_matches_scipy_on_bucket_ranks() -> None:
    rng = np.random.default_rng(7)
    canary = from_samples(list(rng.lognormal(4.2, 0.7, 400)))
    primary = from_samples(list(rng.lognormal(4.0, 0.7, 300)))
    result = latency_test(canary, primary)
    expected = stats.mannwhitneyu(_expand(canary), _expand(primary), alternative="greater")
    assert result.p_value == pytest.approx(float(expected.pvalue))
    assert result.p_value < 0.01


def test_latency_test_is_memory_safe_for_huge_counts() -> None:
    started = time.process_time()  # CPU time: another process on a shared machine does not count
    result = latency_test(lognormal(10**9, 150), lognormal(10**9, 100), max_increase=0.2)
    assert time.process_time() - started < 0.5
    assert result.p_value < 1e-6 and result.n_canary == 10**9


def test_differently_bucketed_histograms_are_compared_on_a_common_grid() -> None:
    coarse = (100, 250, 500, 1000)
    canary = lognormal(5000, 100, bounds=coarse)
    primary = lognormal(5000, 100)
    result = latency_test(canary, primary)
    assert result.n_canary == 5000 and result.n_primary == 5000
    assert result.p_value > 0.05


@pytest.mark.parametrize("theta", [1.0, 1.2, 2.0])
@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), [(30, 1000, 10, 1000), (50, 5000, 100, 20000)])
def test_score_test_uses_the_restricted_maximum_likelihood(theta: float, x1: int, n1: int, x2: int,
                                                           n2: int) -> None:
    def negative_log_likelihood(p2: float) -> float:
        p1 = theta * p2
        return -float(stats.binom.logpmf(x1, n1, p1) + stats.binom.logpmf(x2, n2, p2))

    p2 = optimize.minimize_scalar(negative_log_likelihood, bounds=(1e-9, 1 / theta - 1e-9),
                                  method="bounded", options={"xatol": 1e-12}).x
    p1 = theta * p2
    z = (x1 / n1 - theta * x2 / n2) / math.sqrt(p1 * (1 - p1) / n1 + theta**2 * p2 * (1 - p2) / n2)
    result = error_rate_test(x1, n1, x2, n2, theta - 1)
    assert result.statistic == pytest.approx(z, rel=1e-4)
    assert result.p_value == pytest.approx(float(stats.norm.sf(z)), rel=1e-3)


def test_score_test_without_margin_is_the_pooled_two_proportion_z_test() -> None:
    x1, n1, x2, n2 = 130, 10000, 100, 10000
    pooled = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    result = error_rate_test(x1, n1, x2, n2)
    assert result.test == "two-proportion z"
    assert result.statistic == pytest.approx(z)


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"),
                         [(10, 100, 0, 1000), (3, 40, 1, 60), (0, 50, 2, 50)])
def test_small_counts_use_fisher_and_its_noncentral_form_agrees_at_no_margin(
        x1: int, n1: int, x2: int, n2: int) -> None:
    fisher = error_rate_test(x1, n1, x2, n2)
    assert fisher.test == "Fisher exact"
    assert fisher.p_value == pytest.approx(
        float(stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="greater").pvalue))
    noncentral = error_rate_test(x1, n1, x2, n2, max_increase=1e-12)
    assert noncentral.test == "Fisher noncentral exact"
    assert noncentral.p_value == pytest.approx(fisher.p_value, rel=1e-6)
    assert error_rate_test(x1, n1, x2, n2, max_increase=0.5).p_value >= fisher.p_value


def test_no_errors_anywhere_is_no_evidence() -> None:
    assert error_rate_test(0, 100, 0, 100).p_value == 1.0
