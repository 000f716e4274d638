"""Blue-green under load: a switch, then `rollout undo` inside scaleDownDelay; failed requests and stray answers.

Run: .venv/bin/python bench/blue_green.py [--rate 100] [--auto-promote] [--scale-down-delay 30] [--undo-after 5]

A real control plane (`shipyard up --detach`, temporary project and state dirs, free ports) runs `alpha`,
the probe test app, with `replicas: 3` and `strategy: {type: blue-green, blueGreen: {autoPromote: false,
scaleDownDelay: 30s}}`; a paced load of --rate GET/s runs on the service endpoint (half keep-alive
clients, half a new connection per request), recording each request's send time, status and
X-Service-Version. Then:

 1. release 2.0.0 (green) is applied; green starts beside blue (1.0.0) and, once ready, waits in
    `awaiting-promotion` (with --auto-promote it switches by itself); the bench checks that the preview
    endpoint answers 2.0.0 and that no load request got 2.0.0 before the switch;
 2. `shipyard rollout promote alpha`: the switch;
 3. --undo-after seconds later (within scaleDownDelay, blue still running): `shipyard rollout undo alpha`,
    then `shipyard rollout status alpha` until the undo (a rolling rollout back to blue) completes.

"Switch completed" is the first moment the status document (`GET /status`, recorded every --poll-ms
by a thread) shows phase `switched`. A blue answer (X-Service-Version 1.0.0) to a request *sent* after
that moment + --grace-ms is counted as served by blue after the switch (target 0); requests sent earlier
may legitimately be in flight on the old route (the engine records the phase, then publishes the route,
which Envoy applies within tens of ms; see config_propagation.py). Likewise "undo completed" is the first
status document in which the rollout is the undo's (target = blue's release) and no green instance is
ready any more (green instances leave routing when they turn `stopping`), and green answers to requests
sent after it + grace are counted (target 0). Without the grace, and the last stray answer's send time
relative to each moment, are printed too. Target for failed requests (non-2xx or connection error, over
the whole load run): 0.
"""

from __future__ import annotations

import argparse
import time
import urllib.request

from _progressive import (print_ending, print_load_line, NEW, OLD, SERVICE, PacedLoad, ProgressiveBench, between, common_arguments, describe,
                          duration, mono, stamp, versions_in)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--auto-promote", action="store_true", help="autoPromote: true (no `rollout promote`)")
    parser.add_argument("--scale-down-delay", type=float, default=30.0, help="seconds blue is kept after the switch")
    parser.add_argument("--hold", type=float, default=2.0,
                        help="seconds green waits in awaiting-promotion under load before `rollout promote`")
    parser.add_argument("--undo-after", type=float, default=5.0, help="seconds after the switch to `rollout undo`")
    parser.add_argument("--grace-ms", type=float, default=100.0,
                        help="in-flight grace after each 'completed' moment (see above)")
    common_arguments(parser)
    args = parser.parse_args()
    if args.undo_after >= args.scale_down_delay:
        parser.error("--undo-after must be shorter than --scale-down-delay (the undo must find blue running)")
    began = time.perf_counter()
    grace = args.grace_ms / 1000
    strategy = {"type": "blue-green", "blueGreen": {"autoPromote": args.auto_promote,
                                                    "scaleDownDelay": duration(args.scale_down_delay)}}
    with ProgressiveBench(args, strategy, "shipyard-bench-blue-green-") as bench:
        print_load_line(bench, args, f"{OLD} (blue)")
        print(f"strategy: {strategy}", flush=True)
        with PacedLoad(bench.port, args.rate, args.clients) as load:
            watcher = bench.watch()
            time.sleep(args.warmup)
            applied = time.monotonic()
            applied_wall = time.time()
            bench.release(NEW)
            service = bench.cp.service(SERVICE)
            green, blue = service["release"], bench.old_release
            print(f"applied {NEW} (green, release {green}); blue is {blue}", flush=True)

            def is_green_rollout(s):  # noqa: ANN001, ANN202
                return s.rollout is not None and s.rollout["target"] == green

            preview_versions: list[str] = []
            promoted = None
            if not args.auto_promote:
                waiting = watcher.wait(lambda s: is_green_rollout(s) and s.phase == "awaiting-promotion",
                                       timeout=60, what="green ready, awaiting promotion", after=applied)
                preview = bench.cp.service(SERVICE)["preview"]
                for _ in range(5):
                    with urllib.request.urlopen(preview + "/", timeout=5) as response:
                        preview_versions.append(response.headers.get("X-Service-Version", ""))
                print(f"green ready (awaiting-promotion) at {stamp(waiting.at, applied)}; preview {preview} answers "
                      f"{sorted(set(preview_versions))}; holding {args.hold:g} s, then `rollout promote`", flush=True)
                time.sleep(args.hold)
                promoted = time.monotonic()
                bench.cp.cli("rollout", "promote", SERVICE)
            switched = watcher.wait(lambda s: is_green_rollout(s) and s.phase == "switched", timeout=60,
                                    what="phase switched", after=applied)
            print(f"status shows switched at {stamp(switched.at, applied)}; `rollout undo` in {args.undo_after:g} s",
                  flush=True)
            time.sleep(max(0.0, switched.at + args.undo_after - time.monotonic()))
            undo_sent = time.monotonic()
            undo_out = bench.cp.cli("rollout", "undo", SERVICE).stdout.strip()
            undo_returned = time.monotonic()
            undone = watcher.wait(lambda s: s.rollout is not None and s.rollout["target"] == blue
                                  and s.rollout.get("reason") in ("Undo", "RolloutComplete")
                                  and not s.versions("ready")[NEW],
                                  timeout=60, what="the undo's rollout with no ready green instance", after=undo_sent)
            code, followed = bench.follow()
            follow_returned = time.monotonic()
            green_gone = watcher.wait(lambda s: not s.versions()[NEW], timeout=60, what="no green instance left",
                                      after=undo_sent)
            time.sleep(args.tail)
        final, events = bench.final()
        bench.report_notes()
        error_log = bench.error_log_lines()

    outcomes = load.between(0, float("inf"))
    print()
    print(f"`rollout undo`: {undo_out}")
    print(f"rollout status after the undo: exit {code}; its last line: {followed.splitlines()[-1]}")
    print(f"final: release {final['release']} (declared {final['declared_release']}), instances "
          f"{sorted((i['version'], i['state']) for i in final['instances'])}")

    # The engine's own switch time: the green rollout's switched_at, from the RolloutPhase event.
    phase_events = [e for e in events if e["object"] == SERVICE and e["reason"] == "RolloutPhase"
                    and "switched" in e["message"]]
    engine_switch = mono(phase_events[-1]["time"]) if phase_events else None

    print(f"\nmilestones (from `shipyard apply` of green):")
    if promoted is not None:
        print(f"  `rollout promote` started         {stamp(promoted, applied)}")
    if engine_switch is not None:
        print(f"  engine recorded the switch        {stamp(engine_switch, applied)}  (RolloutPhase event)")
    print(f"  status shows switched             {stamp(switched.at, applied)}   = switch completed")
    first_green = min((o.started for o in outcomes if o.version == NEW), default=None)
    if first_green is not None:
        print(f"  first request answered by green   {stamp(first_green, applied)} (send time)")
    print(f"  `rollout undo` started            {stamp(undo_sent, applied)}, returned {stamp(undo_returned, applied)}")
    print(f"  status shows undo, no green ready {stamp(undone.at, applied)}   = undo completed")
    print(f"  rollout status (undo) returned {code}  {stamp(follow_returned, applied)}")
    print(f"  no green instance in status       {stamp(green_gone.at, applied)}")

    before_switch = between(outcomes, applied, promoted if promoted is not None else (engine_switch or switched.at))
    green_early = sum(1 for o in before_switch if o.version == NEW)
    print(f"\nbefore the switch (apply -> {'`rollout promote`' if promoted else 'engine switch'}): "
          f"{len(before_switch)} requests, answered by green: {green_early} (expected 0); "
          f"preview endpoint answered {sorted(set(preview_versions)) or 'not checked'}")

    blue_window = between(outcomes, switched.at, undo_sent)
    stray_blue = [o for o in blue_window if o.version == OLD and o.started >= switched.at + grace]
    stray_blue_nograce = [o for o in blue_window if o.version == OLD]
    last_blue = max((o.started for o in outcomes if o.version == OLD and o.started < undo_sent), default=None)
    print(f"after the switch (switch completed -> `rollout undo`, {undo_sent - switched.at:.1f} s, "
          f"{len(blue_window)} requests):")
    print(f"  answered by blue, sent after switch completed + {args.grace_ms:g} ms: {len(stray_blue)} (target 0: "
          f"{'met' if not stray_blue else 'MISSED'}); sent after switch completed (no grace): "
          f"{len(stray_blue_nograce)}")
    if last_blue is not None:
        rel = f"{(last_blue - engine_switch) * 1000:+.0f} ms from the engine's switch, " if engine_switch else ""
        print(f"  last request answered by blue was sent {(last_blue - switched.at) * 1000:+.0f} ms from switch "
              f"completed ({rel}poll every {args.poll_ms:g} ms)")
    print(f"  versions: {versions_in(blue_window)}")

    after_undo = between(outcomes, undone.at, float("inf"))
    stray_green = [o for o in after_undo if o.version == NEW and o.started >= undone.at + grace]
    stray_green_nograce = [o for o in after_undo if o.version == NEW]
    last_green = max((o.started for o in outcomes if o.version == NEW), default=None)
    print(f"after the undo (undo completed -> end, {outcomes[-1].started - undone.at:.1f} s, "
          f"{len(after_undo)} requests):")
    print(f"  answered by green, sent after undo completed + {args.grace_ms:g} ms: {len(stray_green)} (target 0: "
          f"{'met' if not stray_green else 'MISSED'}); sent after undo completed (no grace): "
          f"{len(stray_green_nograce)}")
    if last_green is not None:
        print(f"  last request answered by green was sent {(last_green - undone.at) * 1000:+.0f} ms from undo "
              f"completed, {(last_green - undo_sent) * 1000:+.0f} ms from `rollout undo` started")
    print(f"  versions: {versions_in(after_undo)}")

    failed_total = sum(1 for o in outcomes if o.failure)
    duration_s = outcomes[-1].started - outcomes[0].started if outcomes else 0.0
    print(f"\nwhole load run: {len(outcomes)} requests, failed {failed_total} "
          f"(target 0: {'met' if failed_total == 0 else 'MISSED'}); achieved "
          f"{len(outcomes) / duration_s if duration_s else 0:.0f} req/s over {duration_s:.1f} s; "
          f"versions: {versions_in(outcomes)}")
    for line in describe(outcomes, applied, examples=10):
        print("  " + line)
    for label, start, end in (("apply -> switch completed", applied, switched.at),
                              ("switch completed -> undo completed", switched.at, undone.at),
                              ("undo completed -> end", undone.at, float("inf"))):
        part = between(outcomes, start, end)
        print(f"  {label}: {len(part)} requests, {sum(1 for o in part if o.failure)} failed")

    print_ending(events, error_log, applied_wall, began)


if __name__ == "__main__":
    main()
