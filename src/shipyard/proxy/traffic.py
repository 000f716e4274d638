"""What each release served over a recent window: timestamped scrapes of Envoy's cumulative stats.

Envoy only keeps cumulative counters and histograms; a window is the sum of the differences between
consecutive scrapes from the newest scrape at or before the window's start to the newest one. The
history is a bounded in-memory ring: metrics are about the last minutes, and a restarted control
plane simply starts a new history (Envoy's counters themselves survive it).

Envoy's counters do not all go on together. `upstream_rq_completed` is declared by every cluster and
carried over when the cluster is updated (an endpoint added or removed is a CDS update here), but the
response-code counters (`upstream_rq_5xx`) and the latency histogram are made on first use: an update
drops them with the old cluster, and they count again from zero, at a moment the scrapes cannot see
(envoyproxy/envoy#43984). The difference of two scrapes across such an update would set the 5xx
since the update against the requests of the whole interval, so a failing canary could look healthy.
An interval in which a cluster was updated (its 5xx counter or histogram went down, or the router
said it changed the cluster) therefore counts for nothing in that cluster's windows; an interval in
which the requests went down (Envoy restarted, or the cluster was re-created) counts from zero.

That is for judging (`judged=True`, analysis and soak checks): errors and requests must cover the same
time. What a release served (`judged=False`, `status` and `/metrics`) counts every request, whose counter
carries over; its 5xx and latency across an update count from the update (a lower bound).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from shipyard.proxy.window import WindowStats
from shipyard.proxy.admin import ClusterStats

KEEP_S = 900.0  # longest window anyone asks for (analysis intervals, `status`), plus slack
FINE_S = 120.0  # scrapes younger than this are all kept; older ones are thinned out …
COARSE_S = 10.0  # … to one every ten seconds, which keeps a busy environment's history small
SETTLE_S = 1.0  # after a cluster update is confirmed, how long the old cluster may still count (in-flight requests)


@dataclass(frozen=True)
class Sample:
    at: float                                  # time.time() of the scrape
    clusters: dict[str, ClusterStats]          # cumulative, by model cluster name
    # Since the previous sample kept: clusters whose counters all started again from zero (Envoy restarted,
    # the cluster was re-created), and clusters that were updated (their lazily made stats may have restarted).
    restarted: frozenset[str] = field(default=frozenset())
    updated: frozenset[str] = field(default=frozenset())


class TrafficHistory:
    """Scrapes in time order, at most `keep_s` seconds old; windows are computed from them."""

    def __init__(self, keep_s: float = KEEP_S, fine_s: float = FINE_S, coarse_s: float = COARSE_S) -> None:
        self.keep_s, self.fine_s, self.coarse_s = keep_s, fine_s, coarse_s
        self._samples: list[Sample] = []
        self._updates: dict[str, list[tuple[float, float]]] = {}  # cluster → (from, to) of each update

    def add(self, at: float, clusters: dict[str, ClusterStats]) -> None:
        if self._samples and at <= self._samples[-1].at:
            return  # out of order (two scrapes racing): the newer one is already there
        restarted: frozenset[str] = frozenset()
        updated: frozenset[str] = frozenset()
        if self._samples:
            # A cluster without traffic since the last scrape shares that scrape's value: idle costs nothing.
            previous = self._samples[-1].clusters
            clusters = {name: previous[name] if previous.get(name) == stats else stats
                        for name, stats in clusters.items()}
            restarted, updated = _changes(previous, clusters)
        self._samples.append(Sample(at, clusters, restarted, updated))
        # Samples age into the coarse region one at a time: keep its newest only if far enough from the one before.
        coarse = bisect.bisect_left([s.at for s in self._samples], at - self.fine_s)
        if coarse >= 2 and self._samples[coarse - 1].at - self._samples[coarse - 2].at < self.coarse_s:
            gone, after = self._samples[coarse - 1], self._samples[coarse]
            # The interval after the dropped scrape now starts where its interval did: it inherits what happened there.
            self._samples[coarse] = Sample(after.at, after.clusters, after.restarted | gone.restarted,
                                           after.updated | gone.updated)
            del self._samples[coarse - 1]
        while len(self._samples) > 2 and self._samples[1].at < at - self.keep_s:
            del self._samples[0]  # keep one sample older than `keep_s` as the base of the longest window
        oldest = self._samples[0].at
        self._updates = {name: kept for name, spans in self._updates.items()
                         if (kept := [span for span in spans if span[1] >= oldest])}

    def updated(self, cluster: str, started: float, confirmed: float) -> None:
        """The router changed `cluster` between `started` and `confirmed` (Envoy made a new cluster of it):
        the scrape intervals around that time do not count in its windows (see the module docstring)."""
        self._updates.setdefault(cluster, []).append((started, confirmed + SETTLE_S))

    @property
    def latest(self) -> Sample | None:
        return self._samples[-1] if self._samples else None

    def window(self, cluster: str, since: float, judged: bool = True) -> WindowStats | None:
        """Traffic of `cluster` from `since` to the newest scrape; None before two scrapes span it.

        The base is the newest scrape at or before `since` (or the oldest kept one, so a young
        history still answers with what it saw). Intervals in which the cluster was updated count
        for nothing (not even their seconds); requests that went down (Envoy restarted) count from
        zero at that restart. See the module docstring.
        """
        if len(self._samples) < 2:
            return None
        times = [s.at for s in self._samples]
        index = min(max(0, bisect.bisect_right(times, since) - 1), len(self._samples) - 2)
        updates = self._updates.get(cluster, [])
        return _sum(_interval(earlier, later, cluster, updates, judged)
                    for earlier, later in zip(self._samples[index:], self._samples[index + 1:]))

    def increments(self, cluster: str, since: float) -> list[WindowStats]:
        """Traffic of `cluster` between each pair of consecutive scrapes from `since` on, oldest first.

        The first pair starts at the newest scrape at or before `since`; every call with the same
        `since` on the same history gives the same pairs, whatever the cluster (so two releases'
        increments line up scrape by scrape). Older scrapes are thinned out (see `add`): their
        increments then span ten seconds instead of one. An interval in which the cluster was
        updated is empty (0 requests in 0 seconds): it carries no information.
        """
        times = [s.at for s in self._samples]
        start = max(0, bisect.bisect_right(times, since) - 1)
        pairs = zip(self._samples[start:], self._samples[start + 1:])
        updates = self._updates.get(cluster, [])
        return [_sum((_interval(earlier, later, cluster, updates),)) for earlier, later in pairs]

    def cumulative(self, cluster: str) -> ClusterStats:
        """Everything Envoy counted for `cluster` since it (re)started, as of the newest scrape."""
        latest = self.latest
        return latest.clusters.get(cluster, ClusterStats()) if latest else ClusterStats()


def _changes(previous: dict[str, ClusterStats], current: dict[str, ClusterStats]) -> tuple[frozenset[str], frozenset[str]]:
    """Which clusters restarted all their counters (requests went down), and which were updated (their 5xx
    counter or histogram went down while the requests went on) between two consecutive scrapes."""
    restarted, updated = set(), set()
    for name in previous.keys() | current.keys():
        earlier, later = previous.get(name, ClusterStats()), current.get(name, ClusterStats())
        if later.requests < earlier.requests:
            restarted.add(name)
        elif later.errors_5xx < earlier.errors_5xx or _reset(earlier, later):
            updated.add(name)
    return frozenset(restarted), frozenset(updated)


Interval = tuple[ClusterStats, float]
"""What a cluster served between two consecutive scrapes, and over how many seconds."""


def _interval(earlier: Sample, later: Sample, cluster: str, updates: list[tuple[float, float]],
              judged: bool = True) -> Interval:
    """What `cluster` served from scrape `earlier` to the next one kept, `later` (see the module docstring)."""
    after = later.clusters.get(cluster, ClusterStats())
    if cluster in later.restarted:
        return after, later.at - earlier.at  # Envoy restarted: everything counts from zero
    before = earlier.clusters.get(cluster, ClusterStats())
    if cluster in later.updated or any(start < later.at and earlier.at < end for start, end in updates):
        if judged:
            return ClusterStats(), 0.0   # the cluster was updated meanwhile: its 5xx may have restarted unseen
        errors = after.errors_5xx - before.errors_5xx if after.errors_5xx >= before.errors_5xx else after.errors_5xx
        latency = after.latency_buckets if _reset(before, after) else (after - before).latency_buckets
        return ClusterStats(after.requests - before.requests, errors, latency), later.at - earlier.at
    return after - before, later.at - earlier.at


def _sum(intervals: Iterable[Interval]) -> WindowStats:
    """One window from consecutive intervals; latency from the last run of intervals with the same bounds."""
    requests = errors = 0
    seconds = 0.0
    buckets: list[tuple[float, int]] = []
    for stats, length in intervals:
        requests += stats.requests
        errors += min(stats.errors_5xx, stats.requests)
        seconds += length
        if stats.latency_buckets:
            if [b for b, _ in buckets] != [b for b, _ in stats.latency_buckets]:
                buckets = [(b, 0) for b, _ in stats.latency_buckets]
            buckets = [(b, n + m) for (b, n), (_, m) in zip(buckets, stats.latency_buckets)]
    return WindowStats(requests=requests, errors_5xx=min(errors, requests), seconds=max(0.0, seconds),
                       latency_buckets=_cumulative(tuple(buckets)))


def _reset(earlier: ClusterStats, later: ClusterStats) -> bool:
    """Histogram bounds changed or counts shrank: not a continuation of the same counters."""
    if not earlier.latency_buckets:
        return False
    if not later.latency_buckets:
        return True
    if [b for b, _ in earlier.latency_buckets] != [b for b, _ in later.latency_buckets]:
        return True
    return any(n < m for (_, n), (_, m) in zip(later.latency_buckets, earlier.latency_buckets))


def _cumulative(buckets: tuple[tuple[float, int], ...]) -> tuple[tuple[float, int], ...]:
    """Envoy's bucket counts are approximations of its histograms: the difference of two scrapes can
    dip from one bound to the next by a few counts. Keep it cumulative (a running maximum)."""
    result, highest = [], 0
    for bound, count in buckets:
        highest = max(highest, count)
        result.append((bound, highest))
    return tuple(result)


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
