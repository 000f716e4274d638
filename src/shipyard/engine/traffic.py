"""Per-release traffic figures as `status` and `/metrics` report them (pure)."""

from __future__ import annotations

from typing import Any

from shipyard.analysis.window import WindowStats

TRAFFIC_WINDOW_S = 60.0  # the window `status` and the /metrics gauges summarise


def traffic_figures(window: WindowStats | None) -> dict[str, Any]:
    """Requests, 5xx, success rate and latency quantiles of one window; None where nothing was seen."""
    if window is None:
        return {"requests": None, "request_rate": None, "errors_5xx": None, "success_rate": None,
                "latency_p50_ms": None, "latency_p95_ms": None, "latency_p99_ms": None}
    return {
        "requests": window.requests,
        "request_rate": _round(window.request_rate),
        "errors_5xx": window.errors_5xx,
        "success_rate": _round(window.success_rate),
        "latency_p50_ms": _round(window.quantile(0.5)),
        "latency_p95_ms": _round(window.quantile(0.95)),
        "latency_p99_ms": _round(window.quantile(0.99)),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
