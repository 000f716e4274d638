"""Publish → serving in prod with promotion (issue 12): the time a new version takes from `pipeline run`
publishing it to prod's canary completing, split into its stages, read from the two control planes' events.

Real everything: a git repository as the config repo, dev and prod control planes following it every
second, the embedded artifact store, a short soak (2 s) and a URL verify check. Stages:
detect (publish → automation commit), dev fetch+rollout (commit → dev rollout complete), soak+verify
(→ Verified), commit (→ Promoted), prod fetch (→ prod applies the commit), prod canary (→ complete).

    .venv/bin/python bench/promotion.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.controlplane import wait_for  # noqa: E402
from tests.promotion import test_flow as flow  # noqa: E402


def events(env: Any) -> list[dict[str, Any]]:
    return list(json.loads(env.cli("events", "-o", "json").stdout))


def first(items: list[dict[str, Any]], reason: str, text: str, after: float) -> float:
    found = [e["time"] for e in items if e["reason"] == reason and text in e["message"] and e["time"] >= after]
    return min(found) if found else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("promotion: publish → serving in prod, per stage (seconds)")
    stages: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        with flow.running_flow(Path(tmp)) as (source, store, origin, dev, prod):
            wait_for(lambda: dev.serving() == "1.0.0" and prod.serving() == "1.0.0", timeout=90, what="both up")
            for round_ in range(1, args.rounds + 1):
                version = f"1.{round_}.0"
                (source / "message.txt").write_text(version)
                started = time.time()
                flow.run_cli("pipeline", "run", str(source), "--version", version, "--store", str(store))
                published = time.time()
                wait_for(lambda: prod.serving() == version and prod.service()["rollout"]["status"] == "complete",
                         timeout=180, what=f"{version} in prod")
                done = time.time()
                dev_events, prod_events = events(dev), events(prod)
                # The store has the version before `pipeline run` returns (it prints after publishing), so
                # the stages count from the automation's commit; `pipeline` is the whole CLI run.
                committed = first(dev_events, "AutomationCommitted", f"→ {version}", started)
                marks = [committed,
                         first(dev_events, "RolloutComplete", "", committed),
                         first(dev_events, "Verified", version, committed),
                         first(dev_events, "Promoted", version, committed),
                         first(prod_events, "Applied", f"promote app {version}", committed),
                         done]
                names = ["dev fetch + rollout", "soak + verify", "commit", "prod fetch", "prod canary"]
                row = {"pipeline": published - started, "detect": committed - started}
                row.update({name: b - a for name, a, b in zip(names, marks, marks[1:])})
                row["publish → prod"] = done - min(published, committed)
                for name, value in row.items():
                    stages.setdefault(name, []).append(value)
                print(f"  {version}: " + "  ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
    print("median: " + "  ".join(f"{k} {statistics.median(v):.2f}" for k, v in stages.items()))


if __name__ == "__main__":
    main()
