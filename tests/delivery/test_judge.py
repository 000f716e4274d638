"""Table and property tests of the judge: thresholds, comparisons, queries and combine."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.delivery.checks import CompareCheck, PrometheusCheck, ThresholdCheck
from shipyard.delivery.judge import Decision, Verdict, combine, judge, judge_query
from shipyard.proxy.window import WindowStats

from tests.histograms import lognormal, window, windows

HIST = ((100.0, 50), (200.0, 90), (500.0, 100), (float("inf"), 100))  # p50 100, p99 470


@pytest.mark.parametrize(("check", "canary", "verdict", "reason"), [
    (ThresholdCheck("successRate", min=99), window(812, 80), "fail",
     "successRate 90.15% < min 99% (n=812)"),
    (ThresholdCheck("successRate", min=99), window(1000, 5), "pass",
     "successRate 99.5% within min 99% (n=1000)"),
    (ThresholdCheck("successRate", min=99.99), window(100000, 11), "fail",
     "successRate 99.989% < min 99.99% (n=100000)"),
    (ThresholdCheck("errorRate", max=1), window(1000, 20), "fail",
     "errorRate 2% > max 1% (n=1000)"),
    (ThresholdCheck("latencyP99", max=500), window(100, buckets=HIST), "pass",
     "latencyP99 470ms within max 500ms (n=100)"),
    (ThresholdCheck("latencyP99", max=400), window(100, buckets=HIST), "fail",
     "latencyP99 470ms > max 400ms (n=100)"),
    (ThresholdCheck("latencyP50", min=10, max=400), window(100, buckets=HIST), "pass",
     "latencyP50 100ms within min 10ms and max 400ms (n=100)"),
    (ThresholdCheck("requestRate", min=5), window(120, seconds=60), "fail",
     "requestRate 2/s < min 5/s (n=120)"),
    (ThresholdCheck("successRate", min=99), window(49, 0), "inconclusive",
     "successRate: canary served 49 requests in 60s, fewer than minRequests 50; holding"),
    (ThresholdCheck("latencyP95", max=1), window(100), "inconclusive",
     "latencyP95: no latency histogram for the canary's 100 requests"),
])
def test_thresholds(check: ThresholdCheck, canary: WindowStats, verdict: Verdict,
                    reason: str) -> None:
    decision = judge(check, canary, None, min_requests=50)
    assert (decision.verdict, decision.reason) == (verdict, reason)
    assert decision.check == check.label


@pytest.mark.parametrize(("canary", "primary", "max_increase", "min_requests", "verdict"), [
    ((10, 100), (0, 1000), 0.0, 50, "fail"),          # 10% vs 0%: a new error class
    ((10, 100), (0, 1000), 0.2, 50, "fail"),
    ((10, 10000), (10, 10000), 0.0, 50, "pass"),      # 0.1% vs 0.1%
    ((2, 30), (0, 30), 0.0, 50, "inconclusive"),      # too little traffic to say
    ((1000, 100000), (1000, 100000), 0.0, 100, "pass"),  # large, equal
    ((5100, 500000), (5000, 500000), 0.0, 100, "pass"),  # 2% relative: within noise
    ((130, 10000), (100, 10000), 0.0, 100, "fail"),   # 1.3% vs 1.0%
    ((110, 10000), (100, 10000), 0.2, 100, "pass"),   # 10% more errors, 20% allowed
    ((300, 10000), (100, 10000), 0.2, 100, "fail"),   # 3x the errors
    ((0, 500), (3, 500), 0.0, 100, "pass"),           # canary better
    ((0, 500), (0, 500), 0.0, 100, "pass"),
])
def test_compare_error_rate(canary: tuple[int, int], primary: tuple[int, int],
                            max_increase: float, min_requests: int, verdict: Verdict) -> None:
    check = CompareCheck("errorRate", max_increase=max_increase)
    decision = judge(check, window(canary[1], canary[0]), window(primary[1], primary[0]),
                     min_requests)
    assert decision.verdict == verdict, decision.reason
    if verdict != "inconclusive":
        assert decision.inputs["canary"]["requests"] == canary[1]
        assert decision.inputs["primary"]["errors_5xx"] == primary[0]
        assert 0 <= decision.inputs["p_value"] <= 1
        assert f"({canary[0]}/{canary[1]})" in decision.reason


def test_error_rate_reason_states_rates_test_and_p_value() -> None:
    decision = judge(CompareCheck("errorRate"), window(100, 10), window(1000, 0), 50)
    assert decision.reason.startswith("errorRate canary 10% (10/100) vs primary 0% (0/1000): "
                                      "significantly higher, p=2.5e-11 < 0.05 (Fisher exact")
    assert decision.inputs["test"] == "Fisher exact"


@pytest.mark.parametrize(("canary", "primary", "max_increase", "verdict"), [
    (lognormal(5000, 150), lognormal(5000, 100), 0.2, "fail"),   # 50% slower
    (lognormal(500, 150), lognormal(500, 100), 0.2, "fail"),
    (lognormal(5000, 100), lognormal(5000, 100), 0.2, "pass"),   # same distribution
    (lognormal(5000, 100), lognormal(5000, 100), 0.0, "pass"),
    (lognormal(5000, 110), lognormal(5000, 100), 0.2, "pass"),   # 10% slower, 20% allowed
    (lognormal(100000, 110), lognormal(100000, 100), 0.2, "pass"),
    (lognormal(5000, 110), lognormal(5000, 100), 0.0, "fail"),   # 10% slower, none allowed
    (lognormal(5000, 70), lognormal(5000, 100), 0.0, "pass"),    # canary faster
    # Same median, 4x the p99: Mann-Whitney compares whole distributions by rank, so a tail
    # that grows while the bulk stays put is not "slower"; a latencyP99 threshold catches it.
    (lognormal(5000, 100, sigma=1.0), lognormal(5000, 100, sigma=0.3), 0.2, "pass"),
])
def test_compare_latency(canary: tuple[tuple[float, int], ...],
                         primary: tuple[tuple[float, int], ...], max_increase: float,
                         verdict: Verdict) -> None:
    n1, n2 = canary[-1][1], primary[-1][1]
    decision = judge(CompareCheck("latency", max_increase=max_increase),
                     window(n1, buckets=canary), window(n2, buckets=primary), min_requests=100)
    assert decision.verdict == verdict, decision.reason
    assert decision.inputs["canary"]["latency_count"] == n1
    assert decision.inputs["scale"] == pytest.approx(1 + max_increase)


def test_latency_reason_states_quantiles_margin_and_test() -> None:
    decision = judge(CompareCheck("latency", max_increase=0.2),
                     window(5000, buckets=lognormal(5000, 150)),
                     window(5000, buckets=lognormal(5000, 100)), 100)
    assert decision.reason.startswith("latency canary p50 ")
    assert ": more than 20% slower, p=" in decision.reason
    assert "(Mann-Whitney U, n=5000/5000, one-sided)" in decision.reason


@pytest.mark.parametrize(("canary", "primary", "reason"), [
    (window(20, buckets=lognormal(20, 100)), window(5000, buckets=lognormal(5000, 100)),
     "latency: canary served 20 requests in 60s, fewer than minRequests 100; holding"),
    (window(5000, buckets=lognormal(5000, 100)), window(20, buckets=lognormal(20, 100)),
     "latency: primary served 20 requests in 60s, fewer than minRequests 100; holding"),
    (window(5000), window(5000, buckets=lognormal(5000, 100)),
     "latency: no latency histogram for the canary"),
    (window(5000, buckets=lognormal(5000, 100)), None,
     "latency: no primary traffic to compare the canary with"),
])
def test_latency_without_enough_data_is_inconclusive(canary: WindowStats,
                                                     primary: WindowStats | None,
                                                     reason: str) -> None:
    decision = judge(CompareCheck("latency", max_increase=0.2), canary, primary, 100)
    assert (decision.verdict, decision.reason) == ("inconclusive", reason)


@pytest.mark.parametrize(("value", "error", "verdict", "reason"), [
    (3.0, None, "pass", "prometheus 3 within min 1 and max 5"),
    (7.5, None, "fail", "prometheus 7.5 > max 5"),
    (0.5, None, "fail", "prometheus 0.5 < min 1"),
    (None, None, "inconclusive", "prometheus query returned no data yet"),
    (float("nan"), None, "inconclusive", "prometheus query returned no data yet"),
    (None, "connection refused", "fail", "prometheus query failed: connection refused"),
])
def test_judge_query(value: float | None, error: str | None, verdict: Verdict,
                     reason: str) -> None:
    decision = judge_query(PrometheusCheck("sum(up)", min=1, max=5), value, error)
    assert (decision.verdict, decision.reason) == (verdict, reason)
    json.dumps(decision.inputs, allow_nan=False)


def test_judge_refuses_prometheus_checks() -> None:
    with pytest.raises(TypeError, match="judge_query"):
        judge(PrometheusCheck("up", min=1), window(1), None, 1)  # type: ignore[arg-type]


def _decision(verdict: Verdict) -> Decision:
    return Decision("c", verdict, "r")


@pytest.mark.parametrize(("verdicts", "combined"), [
    ([], "pass"),
    (["pass"], "pass"),
    (["pass", "pass"], "pass"),
    (["pass", "inconclusive"], "inconclusive"),
    (["inconclusive", "fail"], "fail"),
    (["pass", "fail", "pass"], "fail"),
    (["inconclusive", "inconclusive"], "inconclusive"),
])
def test_combine(verdicts: list[Verdict], combined: Verdict) -> None:
    assert combine(_decision(v) for v in verdicts) == combined


checks = st.one_of(
    st.builds(ThresholdCheck, st.sampled_from(["requestRate", "successRate", "errorRate",
                                               "latencyP50", "latencyP95", "latencyP99"]),
              st.floats(0, 100), st.none()),
    st.builds(ThresholdCheck, st.sampled_from(["latencyP99", "requestRate"]), st.none(),
              st.floats(0, 1000)),
    st.builds(CompareCheck, st.sampled_from(["errorRate", "latency"]), st.floats(0, 2),
              st.floats(0.5, 0.999)),
)


@settings(max_examples=150, deadline=None)
@given(checks, windows(), st.one_of(st.none(), windows()), st.integers(0, 1000))
def test_judge_never_raises_and_records_json_evidence(check: ThresholdCheck | CompareCheck,
                                                      canary: WindowStats,
                                                      primary: WindowStats | None,
                                                      min_requests: int) -> None:
    decision = judge(check, canary, primary, min_requests)
    assert decision.verdict in ("pass", "fail", "inconclusive")
    assert decision.reason and decision.check == check.label
    json.dumps(decision.inputs, allow_nan=False)
    short = canary.requests < max(min_requests, 1) or (
        isinstance(check, CompareCheck) and (primary is None
                                             or primary.requests < max(min_requests, 1)))
    if short:
        assert decision.verdict == "inconclusive"
