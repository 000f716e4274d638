"""A canary strategy's `analysis` entries judged over one window: the verdict of an interval."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from shipyard.delivery import prometheus
from shipyard.delivery.checks import CompareCheck, PrometheusCheck, ThresholdCheck
from shipyard.errors import NoData, ProviderError
from shipyard.delivery.judge import Decision, Verdict, combine, judge, judge_query
from shipyard.proxy.window import WindowStats
from shipyard.proxy.model import cluster_name
from shipyard.proxy.model import envoy_name
from shipyard.spec.models import CompareAnalysis, PrometheusAnalysis, ThresholdAnalysis

AnalysisEntry = ThresholdAnalysis | CompareAnalysis | PrometheusAnalysis

PROMETHEUS_URL_ENV = "SHIPYARD_PROMETHEUS_URL"
"""The control plane's default Prometheus, for entries without an `address` (read by the caller)."""

NO_PROMETHEUS = (f"no Prometheus server configured (set `address` on the analysis entry, or "
                 f"${PROMETHEUS_URL_ENV} for the control plane)")


@dataclass(frozen=True)
class Evaluation:
    """The combined verdict of one interval, each check's decision, and a one-line summary."""

    verdict: Verdict
    decisions: tuple[Decision, ...]
    summary: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable evidence: every decision's check, verdict, reason and inputs."""
        return {"verdict": self.verdict, "summary": self.summary,
                "decisions": [asdict(decision) for decision in self.decisions]}


async def evaluate(entries: Sequence[AnalysisEntry], canary: WindowStats,
                   primary: WindowStats | None, *, min_requests: int, service: str, release: str,
                   prometheus_url: str | None, judged: Sequence[Decision] = ()) -> Evaluation:
    """Judge `entries` over the canary's (and primary's) window; one decision per entry.

    While the canary served fewer than `min_requests` requests the evaluation holds
    (inconclusive) with a single decision saying so, whatever the entries: nothing is learnt
    from so little traffic, and no Prometheus query is made. With enough traffic and no entries
    it passes. A Prometheus entry queries its own `address`, else `prometheus_url`; with
    neither it fails, as does an entry the checks refuse (a release is not promoted blind).
    `judged` are decisions made elsewhere (the sequential compare entries) that count with them,
    and are shown while holding too.
    """
    if canary.requests < min_requests:
        return _finish((_holding(canary, min_requests), *judged))
    if not entries and judged:
        return _finish(tuple(judged))
    if not entries:
        return Evaluation("pass", (), f"pass: no analysis entries; the canary served "
                          f"{canary.requests} requests (minRequests {min_requests})")
    decisions = await asyncio.gather(*(
        _decide(entry, canary, primary, min_requests, service, release, prometheus_url)
        for entry in entries))
    return _finish((*decisions, *judged))


def _finish(decisions: tuple[Decision, ...]) -> Evaluation:
    verdict = combine(decisions)
    return Evaluation(verdict, decisions,
                      f"{verdict}: " + "; ".join(decision.reason for decision in decisions))


def _holding(canary: WindowStats, min_requests: int) -> Decision:
    reason = (f"canary served {canary.requests} requests in {canary.seconds:g}s, fewer than "
              f"minRequests {min_requests}; holding")
    return Decision(f"minRequests {min_requests}", "inconclusive", reason,
                    {"requests": canary.requests, "seconds": canary.seconds,
                     "min_requests": min_requests})


async def _decide(entry: AnalysisEntry, canary: WindowStats, primary: WindowStats | None,
                  min_requests: int, service: str, release: str,
                  prometheus_url: str | None) -> Decision:
    try:
        check = to_check(entry, service=service, release=release)
    except ValueError as exc:
        return Decision(_entry_label(entry), "fail", f"invalid analysis entry: {exc}",
                        {"entry": entry.model_dump(mode="json", by_alias=True)})
    if isinstance(check, PrometheusCheck):
        assert isinstance(entry, PrometheusAnalysis)  # the only entry to_check makes a query of
        return await _query(check, entry.address or prometheus_url)
    return judge(check, canary, primary, min_requests)


def to_check(entry: AnalysisEntry, *, service: str,
             release: str) -> ThresholdCheck | CompareCheck | PrometheusCheck:
    """The analysis check of a spec entry; a query gets `{service}` and `{release}` filled in.

    Raises ValueError for an entry the spec accepts but no check can judge (no bound at all,
    a confidence below 50%).
    """
    if isinstance(entry, ThresholdAnalysis):
        return ThresholdCheck(entry.metric, entry.min, entry.max)
    if isinstance(entry, CompareAnalysis):
        return CompareCheck(entry.compare, entry.max_increase, entry.confidence)
    # Plain replacement, not str.format: PromQL is full of braces ({job="x"}).
    query = (entry.query.replace("{service}", service).replace("{release}", release)
             .replace("{cluster}", envoy_name(cluster_name(release))))
    return PrometheusCheck(query, entry.min, entry.max)


async def _query(check: PrometheusCheck, address: str | None) -> Decision:
    """Run the check's query and judge its value; a provider failure fails the check."""
    if address is None:
        return Decision(check.label, "fail", NO_PROMETHEUS,
                        {"query": check.query, "value": None, "min": check.min, "max": check.max,
                         "error": NO_PROMETHEUS, "address": None})
    try:
        decision = judge_query(check, await prometheus.query(address, check.query))
    except NoData:
        decision = judge_query(check, None)
    except ProviderError as exc:
        decision = judge_query(check, None, error=str(exc))
    return Decision(decision.check, decision.verdict, decision.reason,
                    {**decision.inputs, "address": address})


def _entry_label(entry: AnalysisEntry) -> str:
    if isinstance(entry, CompareAnalysis):
        return f"compare {entry.compare}"
    if isinstance(entry, PrometheusAnalysis):
        return f"prometheus {entry.query!r}"
    return entry.metric
