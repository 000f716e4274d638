"""The traffic history: windows as differences of timestamped cumulative scrapes."""

from __future__ import annotations

import math

from shipyard.proxy.admin import ClusterStats
from shipyard.proxy.traffic import TrafficHistory

INF = math.inf


def stats(requests: int, errors: int, fast: int | None = None) -> ClusterStats:
    fast = requests if fast is None else fast
    return ClusterStats(requests, errors, ((10.0, fast), (100.0, requests), (INF, requests)))


def test_no_window_before_two_scrapes() -> None:
    history = TrafficHistory()
    assert history.window("a.r1", 0) is None
    history.add(100.0, {"a.r1": stats(5, 0)})
    assert history.window("a.r1", 0) is None


def test_window_starts_at_the_newest_scrape_at_or_before_since() -> None:
    history = TrafficHistory()
    for at, total in ((100.0, 10), (110.0, 30), (120.0, 70), (130.0, 150)):
        history.add(at, {"a.r1": stats(total, total // 10)})
    window = history.window("a.r1", 115.0)
    assert window is not None
    assert (window.requests, window.errors_5xx, window.seconds) == (120, 12, 20.0)
    assert window.request_rate == 6.0 and window.latency_count == 120


def test_a_young_history_answers_with_what_it_has() -> None:
    history = TrafficHistory()
    history.add(100.0, {"a.r1": stats(10, 0)})
    history.add(101.0, {"a.r1": stats(15, 1)})
    window = history.window("a.r1", 0.0)
    assert window is not None and (window.requests, window.errors_5xx, window.seconds) == (5, 1, 1.0)


def test_a_cluster_that_appears_counts_from_zero_and_an_absent_one_is_empty() -> None:
    history = TrafficHistory()
    history.add(100.0, {})
    history.add(105.0, {"a.r2": stats(8, 2)})
    assert history.window("a.r2", 100.0).requests == 8
    assert history.window("gone.r1", 100.0).requests == 0


def test_counters_going_down_mean_envoy_restarted() -> None:
    history = TrafficHistory()
    history.add(100.0, {"a.r1": stats(500, 5)})
    history.add(105.0, {"a.r1": stats(20, 1)})
    window = history.window("a.r1", 100.0)
    assert (window.requests, window.errors_5xx) == (20, 1)


def test_old_scrapes_are_dropped_but_one_base_is_kept() -> None:
    history = TrafficHistory(keep_s=10.0)
    for at in range(100, 131):
        history.add(float(at), {"a.r1": stats(at, 0)})
    assert history.window("a.r1", 0.0).seconds <= 11.0
    assert history.window("a.r1", 125.0).requests == 5


def test_out_of_order_scrapes_are_ignored_and_cumulative_is_the_newest() -> None:
    history = TrafficHistory()
    history.add(100.0, {"a.r1": stats(10, 0)})
    history.add(99.0, {"a.r1": stats(1000, 0)})
    assert history.cumulative("a.r1").requests == 10
    assert history.cumulative("other").requests == 0


def test_a_window_stays_cumulative_when_envoys_approximate_buckets_dip() -> None:
    history = TrafficHistory()
    history.add(100.0, {"a.r1": ClusterStats(10, 0, ((1.0, 4), (10.0, 10), (INF, 10)))})
    history.add(105.0, {"a.r1": ClusterStats(240, 0, ((1.0, 230), (10.0, 234), (INF, 240)))})
    window = history.window("a.r1", 100.0)
    assert window is not None and window.latency_buckets == ((1.0, 226), (10.0, 226), (INF, 230))


def test_an_interval_in_which_a_cluster_update_restarted_the_histogram_counts_for_nothing() -> None:
    history = TrafficHistory()
    history.add(95.0, {"a.r1": stats(400, 4)})
    history.add(100.0, {"a.r1": stats(500, 5)})
    history.add(105.0, {"a.r1": ClusterStats(560, 6, ((10.0, 40), (100.0, 50), (INF, 50)))})
    history.add(110.0, {"a.r1": ClusterStats(600, 9, ((10.0, 70), (100.0, 90), (INF, 90)))})
    window = history.window("a.r1", 95.0)
    # The update may have restarted the 5xx counter too: only the intervals before and after it count.
    assert (window.requests, window.errors_5xx, window.latency_count, window.seconds) == (140, 4, 140, 10.0)


def test_a_5xx_counter_restarted_by_a_cluster_update_does_not_make_a_failing_canary_look_healthy() -> None:
    # The scrapes of an observed wrong promotion (tests/faults/test_rollout_sequence.py): the canary's third
    # instance became ready mid-step, Envoy made a new cluster, and its 5xx counter started again (8 → 1)
    # while the requests went on (40 → 113). The window said 113 requests, 1 error: 99.1 %, a pass.
    history = TrafficHistory()
    history.add(1795671487.641, {"alpha.primary": stats(900, 0)})
    history.add(1795671488.657, {"alpha.primary": stats(1000, 0), "alpha.canary": stats(40, 8)})
    history.add(1795671489.664, {"alpha.primary": stats(1100, 0), "alpha.canary": ClusterStats(113, 1)})
    window = history.window("alpha.canary", 1795671488.116)
    assert window is not None and (window.requests, window.errors_5xx) == (40, 8)
    assert window.success_rate == 80.0
    assert history.window("alpha.primary", 1795671488.116).requests == 200  # nothing happened to the primary
    steps = history.increments("alpha.canary", 1795671488.116)
    assert [(w.requests, w.errors_5xx) for w in steps] == [(40, 8), (0, 0)]


def test_a_5xx_counter_gone_from_the_scrape_after_an_update_counts_as_one() -> None:
    history = TrafficHistory()
    history.add(100.0, {"a.r1": ClusterStats(31, 10)})
    history.add(101.0, {"a.r1": ClusterStats(92, 0)})  # `usedonly`: the new cluster served no 5xx yet
    history.add(102.0, {"a.r1": ClusterStats(150, 12)})
    assert (history.window("a.r1", 100.0).requests, history.window("a.r1", 100.0).errors_5xx) == (58, 12)


def test_an_update_the_counters_cannot_show_is_told_by_the_router() -> None:
    # After the update the new 5xx counter caught up with the old one before the next scrape (10 → 10):
    # nothing went down, only the router knows the cluster changed.
    history = TrafficHistory()
    history.add(100.0, {"a.r1": ClusterStats(0, 0)})
    history.add(101.0, {"a.r1": ClusterStats(50, 10)})
    history.updated("a.r1", 101.2, 101.3)
    history.add(102.0, {"a.r1": ClusterStats(100, 10)})
    history.add(103.0, {"a.r1": ClusterStats(150, 10)})  # within SETTLE_S of the update: the old cluster may live on
    history.add(104.5, {"a.r1": ClusterStats(200, 20)})
    window = history.window("a.r1", 100.0)
    assert (window.requests, window.errors_5xx, window.seconds) == (100, 20, 2.5)
    assert history.window("other.r1", 100.0).seconds == 4.5  # an update of one cluster is its own


def test_what_a_release_served_counts_every_request_across_an_update() -> None:
    # `status` and `/metrics` (judged=False): right after `up`, the router's updates overlap the scrapes
    # holding the first requests; a judged window drops them (0 of 40), what was served must not.
    history = TrafficHistory()
    history.add(100.0, {"a.r1": ClusterStats(0, 0)})
    history.updated("a.r1", 100.1, 100.2)
    history.add(101.0, {"a.r1": ClusterStats(40, 10)})
    history.add(102.0, {"a.r1": ClusterStats(40, 10)})
    assert history.window("a.r1", 100.0).requests == 0
    served = history.window("a.r1", 100.0, judged=False)
    assert (served.requests, served.errors_5xx, served.seconds) == (40, 10, 2.0)
    # across an update that restarted the 5xx counter, the errors since the update are what is known
    history.add(103.0, {"a.r1": ClusterStats(100, 3)})
    served = history.window("a.r1", 100.0, judged=False)
    assert (served.requests, served.errors_5xx) == (100, 13)


def test_an_update_inside_a_thinned_interval_still_counts_for_nothing() -> None:
    history = TrafficHistory(keep_s=900.0, fine_s=5.0, coarse_s=10.0)
    history.add(0.0, {"a.r1": ClusterStats(0, 0)})
    history.add(1.0, {"a.r1": ClusterStats(10, 5)})
    history.add(2.0, {"a.r1": ClusterStats(20, 1)})    # the update, seen
    history.add(3.0, {"a.r1": ClusterStats(30, 6)})
    for at in range(4, 20):
        history.add(float(at), {"a.r1": ClusterStats(30 + 10 * (at - 3), 6 + 5 * (at - 3))})
    times = [sample.at for sample in history._samples]
    assert 2.0 not in times and 1.0 not in times  # thinned
    window = history.window("a.r1", 0.0)
    assert window.errors_5xx * 2 == window.requests  # every interval counted is half errors


def test_older_scrapes_are_thinned_and_unchanged_clusters_share_their_value() -> None:
    history = TrafficHistory(keep_s=900.0, fine_s=120.0, coarse_s=10.0)
    for at in range(0, 600):
        history.add(float(at), {"busy.r1": stats(at, 0), "idle.r1": stats(7, 0)})
    times = [sample.at for sample in history._samples]
    fine = [t for t in times if t >= 599 - 120]
    coarse = [t for t in times if t < 599 - 120]
    assert len(fine) == 121 and all(b - a >= 10 for a, b in zip(coarse, coarse[1:]))
    assert len(times) < 200
    window = history.window("busy.r1", 300.0)
    assert window is not None and 299 <= window.seconds < 310  # based on a coarse scrape at or before 300
    assert window.requests == window.seconds and window.request_rate == 1.0
    assert history._samples[0].clusters["idle.r1"] is history._samples[-1].clusters["idle.r1"]


def test_increments_are_the_traffic_between_consecutive_scrapes_from_since() -> None:
    history = TrafficHistory()
    for at, total in ((100.0, 10), (101.0, 30), (102.0, 70), (103.0, 75)):
        history.add(at, {"a.r1": stats(total, total // 10), "a.r2": stats(2 * total, 0)})
    steps = history.increments("a.r1", 101.5)
    assert [(w.requests, w.errors_5xx, w.seconds) for w in steps] == [(40, 4, 1.0), (5, 0, 1.0)]
    assert [w.requests for w in history.increments("a.r2", 101.5)] == [80, 10]  # the same scrapes
    assert len(history.increments("a.r1", 0.0)) == 3 and history.increments("a.r1", 200.0) == []
