"""What each release served over a recent window: timestamped scrapes of Envoy's cumulative stats.

Envoy only keeps cumulative counters and histograms; a window is the difference between the
newest scrape and the newest scrape at or before the window's start. The history is a bounded
in-memory ring: metrics are about the last minutes, and a restarted control plane simply starts
a new history (Envoy's counters themselves survive it).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from shipyard.proxy.window import WindowStats
from shipyard.proxy.admin import ClusterStats

KEEP_S = 900.0  # longest window anyone asks for (analysis intervals, `status`), plus slack
FINE_S = 120.0  # scrapes younger than this are all kept; older ones are thinned out …
COARSE_S = 10.0  # … to one every ten seconds, which keeps a busy environment's history small


@dataclass(frozen=True)
class Sample:
    at: float                                  # time.time() of the scrape
    clusters: dict[str, ClusterStats]          # cumulative, by model cluster name


class TrafficHistory:
    """Scrapes in time order, at most `keep_s` seconds old; windows are computed from them."""

    def __init__(self, keep_s: float = KEEP_S, fine_s: float = FINE_S, coarse_s: float = COARSE_S) -> None:
        self.keep_s, self.fine_s, self.coarse_s = keep_s, fine_s, coarse_s
        self._samples: list[Sample] = []

    def add(self, at: float, clusters: dict[str, ClusterStats]) -> None:
        if self._samples and at <= self._samples[-1].at:
            return  # out of order (two scrapes racing): the newer one is already there
        if self._samples:
            # A cluster without traffic since the last scrape shares that scrape's value: idle costs nothing.
            previous = self._samples[-1].clusters
            clusters = {name: previous[name] if previous.get(name) == stats else stats
                        for name, stats in clusters.items()}
        self._samples.append(Sample(at, clusters))
        # Samples age into the coarse region one at a time: keep its newest only if far enough from the one before.
        coarse = bisect.bisect_left([s.at for s in self._samples], at - self.fine_s)
        if coarse >= 2 and self._samples[coarse - 1].at - self._samples[coarse - 2].at < self.coarse_s:
            del self._samples[coarse - 1]
        while len(self._samples) > 2 and self._samples[1].at < at - self.keep_s:
            del self._samples[0]  # keep one sample older than `keep_s` as the base of the longest window

    @property
    def latest(self) -> Sample | None:
        return self._samples[-1] if self._samples else None

    def window(self, cluster: str, since: float) -> WindowStats | None:
        """Traffic of `cluster` from `since` to the newest scrape; None before two scrapes span it.

        The base is the newest scrape at or before `since` (or the oldest kept one, so a young
        history still answers with what it saw). A counter that went down means Envoy restarted:
        the window then counts from zero at that restart. A histogram that went down alone was
        restarted by a cluster update: latency then counts from that update, requests do not.
        """
        if len(self._samples) < 2:
            return None
        times = [s.at for s in self._samples]
        index = max(0, bisect.bisect_right(times, since) - 1)
        base, last = self._samples[index], self._samples[-1]
        if base is last:
            base = self._samples[-2]
        return _between(base, last, cluster)

    def increments(self, cluster: str, since: float) -> list[WindowStats]:
        """Traffic of `cluster` between each pair of consecutive scrapes from `since` on, oldest first.

        The first pair starts at the newest scrape at or before `since`; every call with the same
        `since` on the same history gives the same pairs, whatever the cluster (so two releases'
        increments line up scrape by scrape). Older scrapes are thinned out (see `add`): their
        increments then span ten seconds instead of one.
        """
        times = [s.at for s in self._samples]
        start = max(0, bisect.bisect_right(times, since) - 1)
        pairs = zip(self._samples[start:], self._samples[start + 1:])
        return [_between(earlier, later, cluster) for earlier, later in pairs]

    def cumulative(self, cluster: str) -> ClusterStats:
        """Everything Envoy counted for `cluster` since it (re)started, as of the newest scrape."""
        latest = self.latest
        return latest.clusters.get(cluster, ClusterStats()) if latest else ClusterStats()


def _between(base: Sample, last: Sample, cluster: str) -> WindowStats:
    """Traffic of `cluster` from scrape `base` to scrape `last` (see `TrafficHistory.window`)."""
    later = last.clusters.get(cluster, ClusterStats())
    earlier = base.clusters.get(cluster, ClusterStats())
    if later.requests < earlier.requests or later.errors_5xx < earlier.errors_5xx:
        earlier = ClusterStats()  # counters went down: Envoy restarted
    elif _reset(earlier, later):
        # Envoy starts a cluster's histogram afresh when the cluster is updated (an endpoint
        # added or removed) while its counters go on: latency counts from that update.
        earlier = ClusterStats(earlier.requests, earlier.errors_5xx, ())
    delta = later - earlier
    return WindowStats(requests=delta.requests, errors_5xx=min(delta.errors_5xx, delta.requests),
                       seconds=max(0.0, last.at - base.at), latency_buckets=_cumulative(delta.latency_buckets))


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
