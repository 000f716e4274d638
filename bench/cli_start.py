"""How long the `shipyard` command takes to start: each command imports only its own module.

Run: .venv/bin/python bench/cli_start.py [--runs 15]

Side by side, interleaved, each a fresh interpreter (what a shell, a script or a test's polling loop pays):
  python         `python -c pass`: the floor
  status         `shipyard status` (stops at "no control plane has run", so only start-up is measured)
  status, eager  the same after importing every command module first: what every command cost before
                 the top-level group became lazy
  validate       `shipyard validate examples/shop` (parses, validates and resolves the shop's images)
  help           `shipyard --help`, which lists every command and so imports them all
Prints the median wall time and the median CPU time (user + system) of each, in ms.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from shipyard.cli.main import COMMAND_MODULES  # noqa: E402

EAGER = "; ".join(f"import shipyard.cli.{m}" for m in sorted(set(COMMAND_MODULES.values())))


def variants(state_dir: str) -> dict[str, list[str]]:
    status = ["status", "--state-dir", state_dir]
    return {
        "python": [sys.executable, "-c", "pass"],
        "status": [sys.executable, "-m", "shipyard.cli.main", *status],
        "status, eager": [sys.executable, "-c", f"{EAGER}; from shipyard.cli.main import main; main({status!r})"],
        "validate": [sys.executable, "-m", "shipyard.cli.main", "validate", str(ROOT / "examples/shop")],
        "help": [sys.executable, "-m", "shipyard.cli.main", "--help"],
    }


def timed(command: list[str]) -> tuple[float, float]:
    """(wall s, CPU s of the child) for one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, cwd=ROOT, check=False, timeout=60)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        commands = variants(str(Path(tmp) / "no-state"))
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for name, command in commands.items():  # one warm-up each: the page cache, not Python, is then warm
            timed(command)
        for run in range(args.runs):
            for name, command in commands.items():
                samples[name].append(timed(command))
            print(f"\rrun {run + 1}/{args.runs}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    print(f"{'command':<16}{'wall ms':>10}{'CPU ms':>10}   (median of {args.runs})")
    medians = {}
    for name, values in samples.items():
        wall = statistics.median(v[0] for v in values) * 1000
        cpu = statistics.median(v[1] for v in values) * 1000
        medians[name] = wall
        print(f"{name:<16}{wall:>10.0f}{cpu:>10.0f}")
    print(f"status, eager / status: {medians['status, eager'] / medians['status']:.2f}x wall")


if __name__ == "__main__":
    main()
