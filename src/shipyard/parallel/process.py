"""The comparator as its own process, so comparing copies never takes CPU time from the control plane's loop.

    python -m shipyard.parallel.process --port PORT --settings JSON --targets FILE --report FILE

It serves copies on 127.0.0.1:PORT (see comparator.py), reads the three target URLs from the targets file
whenever it changes (the control plane rewrites it as instances come and go), and writes its report to the
report file (temp file + rename) every REPORT_EVERY_S and when it exits. A report file already there is
loaded first: a restarted comparator goes on from what its predecessor learnt. It asks the kernel for a
SIGTERM when its parent (the control plane) dies, so a comparator never outlives the control plane that
supervises it.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from shipyard.parallel.comparator import Comparator
from shipyard.parallel.compare import Settings

REPORT_EVERY_S = 0.25
PR_SET_PDEATHSIG = 1


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json(path: Path, value: Any) -> None:
    """Atomically: a reader sees the old or the new document, never half of one."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value), encoding="utf-8")
    os.replace(temporary, path)


async def serve(port: int, settings: Settings, targets: Path, report: Path) -> None:
    import uvicorn

    comparator = Comparator("", "", "", settings)
    previous = read_json(report)
    if isinstance(previous, dict):
        comparator.restore(previous)
    server = uvicorn.Server(uvicorn.Config(comparator.app(), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", access_log=False))

    async def follow() -> None:
        seen: float | None = None
        while not server.should_exit:
            try:
                changed = targets.stat().st_mtime_ns
            except OSError:
                changed = None
            if changed != seen:
                seen, found = changed, read_json(targets)
                if isinstance(found, list) and len(found) == 3:
                    comparator.targets = tuple(str(t).rstrip("/") for t in found)  # type: ignore[assignment]
            write_json(report, comparator.summary())
            await asyncio.sleep(REPORT_EVERY_S)

    follower = asyncio.create_task(follow())
    try:
        await server.serve()
    finally:
        follower.cancel()
        await comparator.close()
        write_json(report, comparator.summary())
    if not server.started:
        sys.exit(3)  # could not listen (port taken): the supervisor starts another on a new port


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="shipyard.parallel.process", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--settings", required=True, help="JSON: percent, methods, ignore_headers, ignore_json, "
                                                          "max_differences")
    parser.add_argument("--targets", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args(argv)
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() == 1:
            sys.exit(0)  # the parent died before the request above
    raw = json.loads(args.settings)
    settings = Settings(percent=float(raw["percent"]), methods=tuple(raw["methods"]),
                        ignore_headers=tuple(raw["ignore_headers"]), ignore_json=tuple(raw["ignore_json"]),
                        max_differences=raw["max_differences"])
    asyncio.run(serve(args.port, settings, args.targets, args.report))


if __name__ == "__main__":
    main()
