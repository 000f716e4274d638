"""Tests of the check values: validation and the labels decisions carry."""

from __future__ import annotations

import math

import pytest

from shipyard.delivery.checks import CompareCheck, PrometheusCheck, ThresholdCheck


@pytest.mark.parametrize(("check", "label"), [
    (ThresholdCheck("successRate", min=99), "successRate min 99%"),
    (ThresholdCheck("latencyP99", max=500), "latencyP99 max 500ms"),
    (ThresholdCheck("requestRate", min=1, max=100), "requestRate min 1/s max 100/s"),
    (CompareCheck("errorRate"), "compare errorRate"),
    (CompareCheck("latency", max_increase=0.2), "compare latency maxIncrease 20%"),
    (PrometheusCheck('sum(rate(x{a="b"}[1m]))', max=5),
     "prometheus 'sum(rate(x{a=\"b\"}[1m]))' max 5"),
])
def test_labels(check: ThresholdCheck | CompareCheck | PrometheusCheck, label: str) -> None:
    assert check.label == label


def test_long_queries_are_shortened_in_labels() -> None:
    label = PrometheusCheck("sum(" + "x" * 200 + ")", min=0).label
    assert len(label) < 90 and "..." in label


@pytest.mark.parametrize(("build", "match"), [
    (lambda: ThresholdCheck("successRate"), "min, max or both"),
    (lambda: ThresholdCheck("latencyP90", max=1), "unknown metric"),  # type: ignore[arg-type]
    (lambda: ThresholdCheck("successRate", min=99, max=90), "greater than max"),
    (lambda: ThresholdCheck("latencyP50", max=math.nan), "finite"),
    (lambda: CompareCheck("latencyP99"), "unknown comparison"),  # type: ignore[arg-type]
    (lambda: CompareCheck("latency", max_increase=-0.1), "maxIncrease"),
    (lambda: CompareCheck("latency", confidence=1.0), "confidence"),
    (lambda: PrometheusCheck("  ", max=1), "query is empty"),
    (lambda: PrometheusCheck("up"), "min, max or both"),
])
def test_invalid_checks_are_rejected(build: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()  # type: ignore[operator]


def test_checks_are_frozen_values() -> None:
    check = CompareCheck("errorRate")
    assert check == CompareCheck("errorRate", max_increase=0.0, confidence=0.95)
    with pytest.raises(AttributeError):
        check.confidence = 0.9  # type: ignore[misc]
