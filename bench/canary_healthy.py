"""A healthy canary under load: how long from `shipyard apply` to full promotion, and whether any request fails.

Run: .venv/bin/python bench/canary_healthy.py [--rate 100] [--interval 5] [--analysis both]

The same set-up as canary_rollback.py (one service `alpha` of the probe test app, `replicas: 3`, canary
steps [5, 25, 50, 100], interval 5s, failureThreshold 2, minRequests 50, analysis successRate >= 99 and
compare errorRate; a paced load of --rate GET/s on the service endpoint, half keep-alive clients, half a
new connection per request), but release 2.0.0 is healthy (no FAIL_RATE). `shipyard apply`, then
`shipyard rollout status alpha`, which blocks until the rollout ends (exit 0 = complete: the canary took
all traffic and the previous release's instances are stopped).

Prints apply -> rollout status exit 0 (wall time of both commands), the engine's own figure (rollout record
started_at -> updated_at), the steps with their analysis times, when 1.0.0 last answered, and the failed
requests over the whole load run (target 0). The floor of the figure is the strategy itself: three
intervals (10 %, 25 %, 50 %; the pass at 50 % promotes since the next step is 100) plus start-up and
promotion.
"""

from __future__ import annotations

import argparse
import time

from _progressive import (print_ending, print_load_line, NEW, OLD, SERVICE, EnvoyStatsWatcher, PacedLoad, ProgressiveBench, between, describe, mono,
                          print_decisions, print_window_note, stamp, versions_in)
from canary_rollback import canary_arguments, canary_strategy
from shipyard.proxy.model import cluster_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    canary_arguments(parser)
    parser.add_argument("--envoy-stats-ms", type=float, default=200.0,
                        help="how often Envoy's per-cluster stats are scraped to spot histogram restarts")
    args = parser.parse_args()
    began = time.perf_counter()
    strategy = canary_strategy(args)
    with ProgressiveBench(args, strategy, "shipyard-bench-canary-healthy-") as bench:
        print_load_line(bench, args, OLD)
        print(f"canary strategy: {strategy['canary']}", flush=True)
        admin = bench.cp.status()["data_plane"]["admin"]
        with PacedLoad(bench.port, args.rate, args.clients) as load, \
                EnvoyStatsWatcher(admin, args.envoy_stats_ms / 1000) as envoy_stats:
            watcher = bench.watch()
            time.sleep(args.warmup)
            applied = time.monotonic()
            applied_wall = time.time()
            bench.release(NEW)
            new_release = bench.cp.service(SERVICE)["release"]
            print(f"applied {NEW} (release {new_release}); following the rollout", flush=True)
            code, followed = bench.follow()
            follow_returned = time.monotonic()
            if code != 0:
                raise SystemExit(f"the rollout did not complete (exit {code}):\n{followed}")
            old_gone = watcher.wait(lambda s: not s.versions()[OLD], timeout=30,
                                    what=f"no {OLD} instance left", after=applied)
            time.sleep(args.tail)
        service, events = bench.final()
        bench.report_notes()
        error_log = bench.error_log_lines()

    outcomes = load.between(0, float("inf"))
    record = service["rollout"]
    canary = [o for o in outcomes if o.version == NEW]
    old_answers = [o for o in outcomes if o.version == OLD]
    first_new = min(o.started for o in canary)
    last_old = max(o.started + o.latency for o in old_answers)
    wall = follow_returned - applied
    print()
    print(f"rollout status alpha: exit {code} (0 = complete); its last line: {followed.splitlines()[-1]}")
    print(f"rollout record: status {record['status']}, phase {record['phase']}, weight {record['weight']} %: "
          f"{record['message']}")
    print(f"\nmilestones (from `shipyard apply`):")
    print(f"  first canary request (2.0.0 answer)  {stamp(first_new, applied)}")
    passes = [d for d in record["decisions"] if d.get("kind") == "analysis" and d.get("verdict") == "pass"]
    for d in passes:
        print(f"  analysis passed at {d['weight']:3d} %           {stamp(mono(d['at']), applied)}   ({d['action']})")
    print(f"  last answer from {OLD}              {stamp(last_old, applied)}")
    print(f"  rollout complete (engine)            {stamp(mono(record['updated_at']), applied)}")
    print(f"  rollout status returned ({code})        {stamp(follow_returned, applied)}")
    print(f"  no {OLD} instance in status          {stamp(old_gone.at, applied)}")
    print(f"apply -> full promotion (rollout status exit 0): {wall:.2f} s   "
          f"(engine started -> complete: {record['updated_at'] - record['started_at']:.2f} s; "
          f"the strategy's floor: {len(passes)} intervals of {args.interval:g} s = {len(passes) * args.interval:g} s)")

    failed_total = sum(1 for o in outcomes if o.failure)
    duration_s = outcomes[-1].started - outcomes[0].started if outcomes else 0.0
    rollout_part = between(outcomes, applied, follow_returned)
    print(f"\nduring the rollout ({wall:.1f} s):")
    for line in describe(rollout_part, applied):
        print("  " + line)
    print(f"  answers by version: {versions_in(rollout_part)}")
    print(f"whole load run: {len(outcomes)} requests, failed {failed_total} "
          f"(target 0: {'met' if failed_total == 0 else 'MISSED'}); achieved "
          f"{len(outcomes) / duration_s if duration_s else 0:.0f} req/s over {duration_s:.1f} s")
    if failed_total:
        for line in describe(outcomes, applied, examples=10)[2:]:
            print("  " + line)

    print(f"\ndecisions recorded on the rollout (times from `shipyard apply`):")
    mismatches = print_decisions(list(record["decisions"]), applied_wall, outcomes)
    print_window_note(mismatches)
    canary_cluster, primary_cluster = cluster_name(new_release), cluster_name(bench.old_release)
    print(f"Envoy's own stats, scraped every {args.envoy_stats_ms:g} ms: the latency histogram of a cluster "
          f"went down while its request counter went on (a CDS update of the cluster; the traffic window "
          f"takes it for an Envoy restart when a bucket of its base is above it):")
    for at, cluster, hist_before, hist_after, req_before, req_after in envoy_stats.drops:
        which = "canary" if cluster == canary_cluster else "primary" if cluster == primary_cluster else "other"
        print(f"  {stamp(at, applied)}  {cluster} ({which}): histogram total {hist_before} -> {hist_after}, "
              f"upstream_rq_completed {req_before} -> {req_after}")
    if not envoy_stats.drops:
        print("  (none seen)")
    print_ending(events, error_log, applied_wall, began)


if __name__ == "__main__":
    main()
