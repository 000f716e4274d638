"""A/A canaries under load: identical releases, one after the other; none may be rolled back.

Run: .venv/bin/python bench/canary_aa.py [--canaries 10] [--rate 100] [--interval 5] [--analysis all]

The set-up of canary_rollback.py (one service `alpha` of the probe test app, `replicas: 3`, steps
[5, 25, 50, 100], interval 5s, failureThreshold 2, minRequests 50, a paced load of --rate GET/s on the
service endpoint), with the analysis `all`: successRate >= 99, compare errorRate and compare latency.
Each round starts a fresh control plane with 1.0.0 and releases 2.0.0 of the *same* app, its env
differing only in AA_ROUND (which the app ignores; the version label alone does not make a new
release) — an A/A canary: the new release is as good as the old one, so any rollback is a false one. `shipyard apply`,
then `shipyard rollout status alpha` until the rollout ends. Prints per round: exit code, apply ->
full promotion, each judgement's time and verdict, and the compare entries' final evidence (e-value,
samples); then the count of false rollbacks (target 0) and the distribution of promotion times.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _progressive import SERVICE, PacedLoad, ProgressiveBench, print_load_line
from canary_rollback import canary_arguments, canary_strategy


def _ended(bench: ProgressiveBench, release: str, deadline: float) -> dict:
    """The rollout record of `release` once it is no longer progressing, or as it is at the deadline."""
    while True:
        record = bench.cp.service(SERVICE)["rollout"]
        if (record["target"] == release and record["status"] != "progressing") or time.monotonic() > deadline:
            return record
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--canaries", type=int, default=10, help="A/A rounds, one after the other")
    canary_arguments(parser)
    parser.add_argument("--round-timeout", type=float, default=300.0,
                        help="seconds a round may take before it counts as holding and the next one starts")
    parser.set_defaults(analysis="all")
    args = parser.parse_args()
    began = time.perf_counter()
    strategy = canary_strategy(args)
    rounds: list[tuple[str, int, float, dict]] = []
    failed = requests = 0
    print(f"canary strategy: {strategy['canary']}", flush=True)
    for n in range(args.canaries):
        # A fresh control plane per round: in this tree a second apply after a completed canary started
        # no rollout (its log showed the old instances' drain failing: EnvoyRouter.drain() does not
        # take the Router protocol's arguments since e715516); see bench/README.md.
        with ProgressiveBench(args, strategy, "shipyard-bench-canary-aa-") as bench:
            if n == 0:
                print_load_line(bench, args, "1.0.0")
            with PacedLoad(bench.port, args.rate, args.clients) as load:
                time.sleep(args.warmup)
                version = "2.0.0"
                applied = time.monotonic()
                bench.release(version, env={"AA_ROUND": str(n + 1)})  # unused by the app
                release = bench.cp.service(SERVICE)["release"]
                record = _ended(bench, release, applied + args.round_timeout)
                seconds = time.monotonic() - applied
            outcomes = load.between(0, float("inf"))
            bench.report_notes()
        failed += sum(1 for o in outcomes if o.failure)
        requests += len(outcomes)
        code = {"complete": 0, "failed": 1}.get(record["status"], 2)
        rounds.append((version, code, seconds, record))
        print(f"round {n + 1}: {record['status']} ({record['phase']}, {record['weight']} %) after "
              f"{seconds:.1f} s: {record['message'][:160]}", flush=True)
        for d in record["decisions"]:
            if d.get("kind") != "analysis":
                continue
            print(f"    +{d['at'] - record['started_at']:6.2f} s  {d.get('weight')}%  {d.get('verdict')} -> "
                  f"{d.get('action')}")
            for check in d.get("checks") or []:
                inputs = check.get("inputs") or {}
                if "e_value" in inputs:
                    print(f"        {check['check']}: e-value {inputs['e_value']:.3g} (rollback at "
                          f"{inputs['rollback_at']:g}); {check['verdict']}; canary "
                          f"{(inputs.get('canary') or {}).get('requests')} vs primary "
                          f"{(inputs.get('primary') or {}).get('requests')} requests")
        if code == 1:
            print(f"    FALSE ROLLBACK: {record['message']}", flush=True)
        elif code == 2:
            print(f"    STILL HOLDING after {args.round_timeout:g} s", flush=True)

    rolled_back = [r for r in rounds if r[1] == 1]
    holding = [r for r in rounds if r[1] == 2]
    times = [r[2] for r in rounds if r[1] == 0]
    print()
    print(f"{len(rounds)} A/A canaries at {args.rate:g} req/s: {len(rolled_back)} rolled back (target 0: "
          f"{'met' if not rolled_back else 'MISSED'}), {len(holding)} still holding after {args.round_timeout:g} s")
    if times:
        print(f"apply -> full promotion: median {statistics.median(times):.1f} s, min {min(times):.1f} s, "
              f"max {max(times):.1f} s")
    print(f"all rounds' load: {requests} requests, failed {failed}; run time {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
