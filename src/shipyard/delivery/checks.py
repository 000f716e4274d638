"""The analysis checks a canary is judged by: thresholds, comparisons with the primary, queries."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

Metric = Literal["requestRate", "successRate", "errorRate",
                 "latencyP50", "latencyP95", "latencyP99"]
Comparison = Literal["errorRate", "latency"]

METRIC_UNITS: dict[str, str] = {
    "requestRate": "/s",
    "successRate": "%",
    "errorRate": "%",
    "latencyP50": "ms",
    "latencyP95": "ms",
    "latencyP99": "ms",
}


def _check_bounds(owner: str, low: float | None, high: float | None) -> None:
    """Raise ValueError unless at least one finite bound is given and min <= max."""
    if low is None and high is None:
        raise ValueError(f"{owner}: set min, max or both")
    for name, value in (("min", low), ("max", high)):
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{owner}: {name} must be a finite number, got {value}")
    if low is not None and high is not None and low > high:
        raise ValueError(f"{owner}: min {low} is greater than max {high}")


def _bounds_label(low: float | None, high: float | None, unit: str) -> str:
    parts = [f"{name} {value:g}{unit}" for name, value in (("min", low), ("max", high))
             if value is not None]
    return " ".join(parts)


@dataclass(frozen=True)
class ThresholdCheck:
    """The canary's own metric must stay within [min, max]; latency in ms, rates in % or req/s."""

    metric: Metric
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if self.metric not in get_args(Metric):
            raise ValueError(f"unknown metric {self.metric!r}; expected one of {get_args(Metric)}")
        _check_bounds(f"check {self.metric}", self.min, self.max)

    @property
    def label(self) -> str:
        return f"{self.metric} {_bounds_label(self.min, self.max, METRIC_UNITS[self.metric])}"


@dataclass(frozen=True)
class CompareCheck:
    """The canary must not be worse than the primary by more than `max_increase` (a fraction).

    Decided by a one-sided test at `confidence`; see `shipyard.delivery.stats`.
    """

    compare: Comparison
    max_increase: float = 0.0
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.compare not in get_args(Comparison):
            raise ValueError(f"unknown comparison {self.compare!r}; expected one of "
                             f"{get_args(Comparison)}")
        if not (math.isfinite(self.max_increase) and self.max_increase >= 0):
            raise ValueError(f"compare {self.compare}: maxIncrease must be a fraction >= 0 "
                             f"(0.2 for 20%), got {self.max_increase}")
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"compare {self.compare}: confidence must be in [0.5, 1), "
                             f"got {self.confidence}")

    @property
    def label(self) -> str:
        increase = f" maxIncrease {self.max_increase * 100:g}%" if self.max_increase else ""
        return f"compare {self.compare}{increase}"


@dataclass(frozen=True)
class PrometheusCheck:
    """The value of a PromQL query must stay within [min, max]."""

    query: str
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if not self.query.strip():
            raise ValueError("prometheus check: query is empty")
        _check_bounds("prometheus check", self.min, self.max)

    @property
    def label(self) -> str:
        query = " ".join(self.query.split())
        if len(query) > 60:
            query = query[:57] + "..."
        return f"prometheus {query!r} {_bounds_label(self.min, self.max, '')}"


Check = ThresholdCheck | CompareCheck | PrometheusCheck
