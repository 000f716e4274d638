"""The judge: turns a check and a window of traffic into a verdict with its evidence (pure)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from shipyard.delivery.checks import METRIC_UNITS, CompareCheck, PrometheusCheck, ThresholdCheck
from shipyard.delivery.stats import error_rate_test, latency_test
from shipyard.proxy.window import WindowStats

Verdict = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class Decision:
    """One check's verdict, a one-sentence reason with the numbers, and the numbers themselves.

    `inputs` is JSON-serialisable (no NaN or infinity) so the store can keep it as evidence.
    """

    check: str
    verdict: Verdict
    reason: str
    inputs: dict[str, Any] = field(default_factory=dict)


def combine(decisions: Iterable[Decision]) -> Verdict:
    """Any fail → fail; else any inconclusive → inconclusive; else (also for none) pass."""
    verdicts = {decision.verdict for decision in decisions}
    if "fail" in verdicts:
        return "fail"
    if "inconclusive" in verdicts:
        return "inconclusive"
    return "pass"


def judge(check: ThresholdCheck | CompareCheck, canary: WindowStats, primary: WindowStats | None,
          min_requests: int) -> Decision:
    """Decide one check over one window; inconclusive while a side has < min_requests requests."""
    if isinstance(check, ThresholdCheck):
        return _judge_threshold(check, canary, min_requests)
    if isinstance(check, CompareCheck):
        if primary is None:
            return Decision(check.label, "inconclusive",
                            f"{check.compare}: no primary traffic to compare the canary with",
                            {"canary": _side(canary), "primary": None})
        if check.compare == "errorRate":
            return _judge_error_rate(check, canary, primary, min_requests)
        return _judge_latency(check, canary, primary, min_requests)
    raise TypeError(f"judge() takes a threshold or compare check, not {type(check).__name__}; "
                    "judge a PrometheusCheck with judge_query()")


def judge_query(check: PrometheusCheck, value: float | None, error: str | None = None) -> Decision:
    """Decide a Prometheus check from its query's value: None is no data yet, `error` a failure.

    A provider error fails the check (as Flagger does): a release is not promoted blind.
    """
    inputs: dict[str, Any] = {"query": check.query, "value": _json_number(value),
                              "min": check.min, "max": check.max, "error": error}
    if error is not None:
        return Decision(check.label, "fail", f"prometheus query failed: {error}", inputs)
    if value is None or math.isnan(value):
        return Decision(check.label, "inconclusive", "prometheus query returned no data yet",
                        inputs)
    verdict, reason = _against_bounds("prometheus", value, check.min, check.max, "")
    return Decision(check.label, verdict, reason, inputs)


def _judge_threshold(check: ThresholdCheck, canary: WindowStats, min_requests: int) -> Decision:
    unit = METRIC_UNITS[check.metric]
    inputs: dict[str, Any] = {"metric": check.metric, "min": check.min, "max": check.max,
                              "min_requests": min_requests, "unit": unit, "canary": _side(canary)}
    short = _too_little_traffic(check.metric, canary, None, min_requests)
    if short:
        return Decision(check.label, "inconclusive", short, {**inputs, "value": None})
    value = _metric_value(check.metric, canary)
    inputs["value"] = _json_number(value)
    if value is None:
        reason = f"{check.metric}: no latency histogram for the canary's {canary.requests} requests"
        return Decision(check.label, "inconclusive", reason, inputs)
    verdict, reason = _against_bounds(check.metric, value, check.min, check.max, unit)
    return Decision(check.label, verdict, f"{reason} (n={canary.requests})", inputs)


def _metric_value(metric: str, window: WindowStats) -> float | None:
    if metric == "requestRate":
        return window.request_rate
    if metric == "successRate":
        return window.success_rate
    if metric == "errorRate":
        return window.error_rate
    return window.quantile(int(metric.removeprefix("latencyP")) / 100)


def _against_bounds(name: str, value: float, low: float | None, high: float | None,
                    unit: str) -> tuple[Verdict, str]:
    """Compare a value with optional bounds; the reason quotes the value and the bound."""
    if low is not None and value < low:
        shown, bound = _numbers(value, low)
        return "fail", f"{name} {shown}{unit} < min {bound}{unit}"
    if high is not None and value > high:
        shown, bound = _numbers(value, high)
        return "fail", f"{name} {shown}{unit} > max {bound}{unit}"
    limits = " and ".join(f"{word} {_numbers(value, limit)[1]}{unit}"
                          for word, limit in (("min", low), ("max", high)) if limit is not None)
    return "pass", f"{name} {_numbers(value, value)[0]}{unit} within {limits}"


def _judge_error_rate(check: CompareCheck, canary: WindowStats, primary: WindowStats,
                      min_requests: int) -> Decision:
    inputs = _compare_inputs(check, canary, primary, min_requests)
    short = _too_little_traffic("errorRate", canary, primary, min_requests)
    if short:
        return Decision(check.label, "inconclusive", short, inputs)
    result = error_rate_test(canary.errors_5xx, canary.requests, primary.errors_5xx,
                             primary.requests, check.max_increase)
    inputs.update(test=result.test, statistic=_json_number(result.statistic),
                  p_value=result.p_value)
    rates = f"errorRate canary {_percent(canary)} vs primary {_percent(primary)}"
    return _significance(check, rates, "higher", result.p_value, result.test, inputs)


def _judge_latency(check: CompareCheck, canary: WindowStats, primary: WindowStats,
                   min_requests: int) -> Decision:
    inputs = _compare_inputs(check, canary, primary, min_requests)
    short = _too_little_traffic("latency", canary, primary, min_requests)
    if not short and (canary.latency_count == 0 or primary.latency_count == 0):
        short = "latency: no latency histogram for " + (
            "the canary" if canary.latency_count == 0 else "the primary")
    if short:
        return Decision(check.label, "inconclusive", short, inputs)
    result = latency_test(canary.latency_buckets, primary.latency_buckets, check.max_increase)
    inputs.update(test=result.test, statistic=_json_number(result.statistic),
                  z=_json_number(result.z),
                  p_value=result.p_value, superiority=result.superiority,
                  scale=1 + check.max_increase)
    summary = f"latency canary {_quantiles(canary)} vs primary {_quantiles(primary)}"
    test = f"{result.test}, n={canary.latency_count}/{primary.latency_count}"
    return _significance(check, summary, "slower", result.p_value, test, inputs)


def _significance(check: CompareCheck, summary: str, worse: str, p_value: float, test: str,
                  inputs: dict[str, Any]) -> Decision:
    """Verdict of a one-sided test: fail when p < 1 - confidence, otherwise pass."""
    alpha = 1 - check.confidence
    inputs["alpha"] = round(alpha, 12)
    margin = f"more than {check.max_increase * 100:g}% {worse}" if check.max_increase \
        else f"significantly {worse}"
    if p_value < alpha:
        return Decision(check.label, "fail",
                        f"{summary}: {margin}, p={p_value:.2g} < {alpha:.2g} ({test}, one-sided)",
                        inputs)
    return Decision(check.label, "pass",
                    f"{summary}: not {margin}, p={p_value:.2g} >= {alpha:.2g} ({test}, one-sided)",
                    inputs)


def _compare_inputs(check: CompareCheck, canary: WindowStats, primary: WindowStats,
                    min_requests: int) -> dict[str, Any]:
    return {"compare": check.compare, "max_increase": check.max_increase,
            "confidence": check.confidence, "min_requests": min_requests,
            "canary": _side(canary), "primary": _side(primary)}


def _side(window: WindowStats) -> dict[str, Any]:
    """The numbers of one release's window that every decision records."""
    quantiles = {f"latency_p{q}": _json_number(window.quantile(q / 100)) for q in (50, 95, 99)}
    return {"requests": window.requests, "errors_5xx": window.errors_5xx,
            "seconds": window.seconds, "request_rate": _json_number(window.request_rate),
            "error_rate": window.error_rate, "latency_count": window.latency_count, **quantiles}


def _too_little_traffic(name: str, canary: WindowStats, primary: WindowStats | None,
                        min_requests: int) -> str | None:
    """The hold reason when a side has fewer than min_requests (and at least 1) requests."""
    needed = max(min_requests, 1)
    for side, window in (("canary", canary), ("primary", primary)):
        if window is not None and window.requests < needed:
            return (f"{name}: {side} served {window.requests} requests in {window.seconds:g}s, "
                    f"fewer than minRequests {needed}; holding")
    return None


def _percent(window: WindowStats) -> str:
    rate = window.error_rate or 0.0
    return f"{_numbers(rate, rate)[0]}% ({window.errors_5xx}/{window.requests})"


def _quantiles(window: WindowStats) -> str:
    values = ((q, window.quantile(q / 100)) for q in (50, 99))
    shown = " ".join(f"p{q} {_numbers(v, v)[0]}ms" for q, v in values if v is not None)
    return shown or "(all in the +inf bucket)"


def _numbers(value: float, other: float) -> tuple[str, str]:
    """Format two numbers with 4 significant digits, more when that would make them look equal."""
    shown, bound = f"{value:.4g}", f"{other:.4g}"
    if shown == bound and value != other:
        shown, bound = f"{value:.10g}", f"{other:.10g}"
    return shown, bound


def _json_number(value: float | None) -> float | None:
    """A float for JSON: None for missing, NaN or infinite values."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)
