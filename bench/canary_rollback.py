"""A failing canary under load: how long until it is rolled back, and how many requests fail meanwhile.

Run: .venv/bin/python bench/canary_rollback.py [--rate 100] [--interval 5] [--fail-rate 0.1] [--analysis both]
     [--new-env LATENCY_MS=50 ...]   (a latency regression: --fail-rate 0 --new-env LATENCY_MS=50 --analysis latency)

A real control plane (`shipyard up --detach`, temporary project and state dirs, free ports) runs `alpha`,
the probe test app, with `replicas: 3` and a canary strategy (default: steps [5, 25, 50, 100] as in the issue, interval
5s, failureThreshold 2, minRequests 50 (the issue's example), analysis [{metric: successRate, min: 99}, {compare: errorRate}]
as in the example shop's prod environment). A paced load of --rate GET/s runs on the service endpoint
(half keep-alive clients, half a new connection per request). Release 2.0.0 sets FAIL_RATE=0.1 in its
env: the probe app answers that share of its requests with HTTP 500. `shipyard apply`, then
`shipyard rollout status alpha` (blocks until the rollout ends; exit 1 when rolled back).

Milestones, all on one clock (the load's time.monotonic(); engine timestamps converted):
  first canary request  the send time of the first request answered with X-Service-Version 2.0.0
  rolled back           the first status document showing the rollout failed / rolled-back
  rollout status exit   when `shipyard rollout status alpha` returned (it polls every 200 ms)
  last canary answer    when the last answer carrying 2.0.0 arrived
  canary stopped        the first status document without any 2.0.0 instance (stopped and forgotten)
Complete rollback = all traffic back on 1.0.0 and the canary's instances stopped = the later of the last
canary answer and canary stopped. Targets (issue): first canary request -> complete rollback <= 30 s;
< 1 % of all requests failed, counted from `shipyard apply` to the complete rollback (the load's
warm-up before and tail after are printed separately, and are all 1.0.0 successes when things work).
"""

from __future__ import annotations

import argparse
import time

from _progressive import (print_ending, print_load_line, NEW, OLD, SERVICE, PacedLoad, ProgressiveBench, between, common_arguments, describe,
                          duration, failures_by_version, mono, print_decisions,
                          print_window_note, stamp, versions_in)

ANALYSES = {
    "successRate": [{"metric": "successRate", "min": 99}],
    "errorRate": [{"compare": "errorRate"}],
    "both": [{"metric": "successRate", "min": 99}, {"compare": "errorRate"}],
    "latency": [{"compare": "latency"}],
    "all": [{"metric": "successRate", "min": 99}, {"compare": "errorRate"}, {"compare": "latency", "maxIncrease": "50%"}],
}


def canary_strategy(args: argparse.Namespace) -> dict:
    return {"type": "canary", "canary": {
        "steps": [int(s) for s in args.steps.split(",")], "interval": duration(args.interval),
        "failureThreshold": args.failure_threshold, "minRequests": args.min_requests,
        "analysis": ANALYSES[args.analysis]}}


def canary_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", default="5,25,50,100", help="canary weights, comma separated")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds at each step before its analysis")
    parser.add_argument("--failure-threshold", type=int, default=2)
    parser.add_argument("--min-requests", type=int, default=50)
    parser.add_argument("--analysis", choices=sorted(ANALYSES), default="both",
                        help="successRate: {metric: successRate, min: 99}; errorRate: {compare: errorRate}; "
                             "both (default, as in examples/shop prod); latency: {compare: latency}; all: the three "
                             "(latency with maxIncrease 50%)")
    common_arguments(parser)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fail-rate", type=float, default=0.1, help="FAIL_RATE of the new release")
    parser.add_argument("--new-env", action="append", default=[], metavar="KEY=VALUE",
                        help="more env of the new release, e.g. LATENCY_MS=50, or SLOW_RATE=0.01 SLOW_MS=200 "
                             "(a tail regression); repeatable")
    canary_arguments(parser)
    args = parser.parse_args()
    began = time.perf_counter()
    strategy = canary_strategy(args)
    with ProgressiveBench(args, strategy, "shipyard-bench-canary-rollback-") as bench:
        print_load_line(bench, args, OLD)
        print(f"canary strategy: {strategy['canary']}", flush=True)
        with PacedLoad(bench.port, args.rate, args.clients) as load:
            watcher = bench.watch()
            time.sleep(args.warmup)
            applied = time.monotonic()
            applied_wall = time.time()
            env = {"FAIL_RATE": f"{args.fail_rate:g}", **dict(kv.split("=", 1) for kv in args.new_env)}
            bench.release(NEW, env=env)
            new_release = bench.cp.service(SERVICE)["release"]
            print(f"applied {NEW} (release {new_release}, env {env}); following the rollout",
                  flush=True)
            code, followed = bench.follow()
            follow_returned = time.monotonic()
            gone = watcher.wait(lambda s: s.rollout is not None and s.rollout["target"] == new_release
                                and s.rollout["status"] != "progressing" and not s.versions()[NEW],
                                timeout=90, what=f"no {NEW} instance left", after=applied)
            time.sleep(args.tail)
        service, events = bench.final()
        rolled_back = watcher.first(lambda s: s.rollout is not None and s.rollout["target"] == new_release
                                    and s.rollout["status"] == "failed", after=applied)
        bench.report_notes()
        error_log = bench.error_log_lines()

    outcomes = load.between(0, float("inf"))
    canary = [o for o in outcomes if o.version == NEW]
    record = service["rollout"]
    print()
    print(f"rollout status alpha: exit {code} (1 = rolled back); its last line: {followed.splitlines()[-1]}")
    print(f"rollout record: status {record['status']}, phase {record['phase']}, reason {record['reason']}: "
          f"{record['message']}")
    if not canary:
        raise SystemExit("no answer carried the canary's version: it never got traffic")
    first = min(o.started for o in canary)
    last_answer = max(o.started + o.latency for o in canary)
    complete = max(last_answer, gone.at)
    print(f"\nmilestones (from the first canary request; `shipyard apply` started at {stamp(applied, first)}):")
    print(f"  first canary request          {stamp(first, first)}")
    if rolled_back is not None:
        engine = f"   (engine's rollback decision: {stamp(mono(record['updated_at']), first)})" \
            if record["phase"] == "rolled-back" else ""
        print(f"  status shows rolled-back      {stamp(rolled_back.at, first)}{engine}")
    print(f"  rollout status returned ({code})  {stamp(follow_returned, first)}")
    print(f"  last canary answer received   {stamp(last_answer, first)}")
    print(f"  no canary instance in status  {stamp(gone.at, first)}")
    seconds = complete - first
    print(f"first canary request -> complete rollback (all traffic on {OLD}, canary stopped): {seconds:.2f} s "
          f"(target <= 30 s: {'met' if seconds <= 30 else 'MISSED'})")

    run = between(outcomes, applied, complete)
    failed = [o for o in run if o.failure]
    share = 100 * len(failed) / len(run) if run else 0.0
    print(f"\nrequests from `shipyard apply` to the complete rollback ({complete - applied:.1f} s): {len(run)}, "
          f"failed {len(failed)} = {share:.2f} % (target < 1 %: {'met' if share < 1 else 'MISSED'})")
    print(f"  failed by version: {failures_by_version(run)}; answers by version: {versions_in(run)}")
    exposure = between(outcomes, first, last_answer)
    exposed_failed = sum(1 for o in exposure if o.failure)
    print(f"  while the canary got traffic ({last_answer - first:.1f} s): {len(exposure)} requests, "
          f"{sum(1 for o in exposure if o.version == NEW)} to the canary "
          f"({100 * sum(1 for o in exposure if o.version == NEW) / max(1, len(exposure)):.1f} %), "
          f"{exposed_failed} failed ({100 * exposed_failed / max(1, len(exposure)):.2f} %)")
    first_step = int(args.steps.split(",")[0])
    expected = first_step * args.fail_rate * (last_answer - first) / (complete - applied)
    print(f"  expected from the strategy alone: {first_step} % of traffic x FAIL_RATE {args.fail_rate:g} = "
          f"{first_step * args.fail_rate:.2f} % while the canary serves, {expected:.2f} % over this window "
          f"(it serves {last_answer - first:.1f} s of {complete - applied:.1f} s); the count is binomial "
          f"(~{len(run) * expected / 100:.0f} +- {(len(run) * expected / 100) ** 0.5:.0f} here)")
    for line in describe(run, first):
        print("  " + line)
    warm, tail = between(outcomes, 0, applied), between(outcomes, complete, float("inf"))
    duration_s = outcomes[-1].started - outcomes[0].started if outcomes else 0.0
    print(f"  warm-up before apply: {len(warm)} requests, {sum(1 for o in warm if o.failure)} failed; "
          f"after the rollback: {len(tail)} requests, {sum(1 for o in tail if o.failure)} failed, "
          f"versions: {versions_in(tail)}")
    print(f"  whole load run: {len(outcomes)} requests, {sum(1 for o in outcomes if o.failure)} failed "
          f"({100 * sum(1 for o in outcomes if o.failure) / max(1, len(outcomes)):.2f} %); "
          f"achieved {len(outcomes) / duration_s if duration_s else 0:.0f} req/s over {duration_s:.1f} s")

    print(f"\ndecisions recorded on the rollout (status -o json services[].rollout.decisions; "
          f"times from `shipyard apply`):")
    mismatches = print_decisions(list(record["decisions"]), applied_wall, outcomes)
    print_window_note(mismatches)
    print_ending(events, error_log, applied_wall, began)


if __name__ == "__main__":
    main()
