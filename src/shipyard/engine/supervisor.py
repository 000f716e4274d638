"""The control plane's long-running tasks, kept running: one that ends unexpectedly is restarted
with back-off and reported (an event, and a `TasksRunning` condition); `health` is `/healthz`'s verdict.

Like controller-runtime's manager for its runnables, or a process supervisor for asyncio tasks: the
reconcile loop, the data-plane watchdog (which also scrapes Envoy's stats) and the git follower run
under it. asyncio has no supervisor of its own (a TaskGroup cancels everything on the first
failure), hence this small one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Coroutine, Mapping

from shipyard.engine.backoff import restart_delay
from shipyard.engine.model import Condition

log = logging.getLogger("shipyard.supervisor")
TaskFactory = Callable[[], Coroutine[Any, Any, None]]
Report = Callable[[str, str, str], None]          # (kind, reason, message) → an event
HEALTHY_RESET_S = 60.0                            # a task that ran this long starts a new crash count
MIN_STALE_S = 10.0                                # /healthz: a pass this old is never too old


def one_line(exc: BaseException) -> str:
    """`ValueError: invalid data plane: …` — the first line of an exception, with its type."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def health(now: float, last_pass: float, timer: float, down: Mapping[str, str],
           failure: str | None = None) -> tuple[bool, str]:
    """`/healthz`: unhealthy while a supervised task is down, or when no reconcile pass has completed
    for longer than max(10 s, 3 × the loop's timer) (`last_pass`: when one last did, or when the loop
    started). Returns (healthy, reason)."""
    if down:
        return False, "; ".join(f"{name} is down ({error})" for name, error in sorted(down.items()))
    limit = max(MIN_STALE_S, 3 * timer)
    age = now - last_pass
    if age > limit:
        why = f": last pass failed with {failure}" if failure else ""
        return False, f"no reconcile pass completed for {age:.0f}s (limit {limit:g}s){why}"
    return True, "ok"


@dataclass
class _Supervised:
    name: str
    factory: TaskFactory
    task: "asyncio.Task[None] | None" = None
    restarts: int = 0
    crashes: int = 0
    last_error: str = ""
    down: bool = False


class Supervisor:
    """Runs named tasks until `stop`/`close`; restarts any that ends or raises, after `restart_delay`."""

    def __init__(self, report: Report, on_change: Callable[[list[Condition]], None] = lambda _: None) -> None:
        self._report, self._on_change = report, on_change
        self._tasks: dict[str, _Supervised] = {}

    def start(self, name: str, factory: TaskFactory) -> None:
        entry = self._tasks.get(name)
        if entry is not None and entry.task is not None and not entry.task.done():
            return
        entry = _Supervised(name, factory)
        self._tasks[name] = entry
        entry.task = asyncio.create_task(self._keep(entry), name=f"supervised:{name}")

    async def stop(self, name: str) -> None:
        """Cancel a task on purpose (no restart, no report)."""
        entry = self._tasks.pop(name, None)
        if entry is not None and entry.task is not None:
            entry.task.cancel()
            await asyncio.gather(entry.task, return_exceptions=True)
        self._changed()

    async def close(self) -> None:
        for name in list(self._tasks):
            await self.stop(name)

    def down(self) -> dict[str, str]:
        """Tasks not running now (waiting for their restart), with why they ended."""
        return {e.name: e.last_error for e in self._tasks.values() if e.down}

    def running(self) -> list[str]:
        return sorted(e.name for e in self._tasks.values() if not e.down)

    def conditions(self) -> list[Condition]:
        down = [e for e in self._tasks.values() if e.down]
        if down:
            return [Condition("TasksRunning", "False", "TaskFailed", "; ".join(
                f"{e.name} ended ({e.last_error}); restarting" for e in down))]
        restarted = [e for e in self._tasks.values() if e.restarts]
        if restarted:
            return [Condition("TasksRunning", "True", "TaskRestarted", "; ".join(
                f"{e.name} restarted {e.restarts} time(s), last after {e.last_error}" for e in restarted))]
        return []

    async def _keep(self, entry: _Supervised) -> None:
        while True:
            started = time.monotonic()
            try:
                await entry.factory()
                error = "returned without being stopped"
            except asyncio.CancelledError as exc:
                current = asyncio.current_task()
                if current is None or current.cancelling():
                    raise   # stopped on purpose
                error = f"cancelled from within ({exc or 'CancelledError'})"
            except Exception as exc:  # noqa: BLE001 - that is the point: whatever ends a task, it is restarted
                log.exception("supervised task %s failed", entry.name)
                error = one_line(exc)
            if time.monotonic() - started >= HEALTHY_RESET_S:
                entry.crashes = 0
            entry.crashes += 1
            delay = restart_delay(entry.crashes)
            entry.down, entry.last_error = True, error
            self._report("Warning", "TaskFailed", f"{entry.name} ended: {error}; restarting in {delay:g}s")
            self._changed()
            await asyncio.sleep(delay)
            entry.down, entry.restarts = False, entry.restarts + 1
            self._report("Normal", "TaskRestarted", f"{entry.name} restarted (restart {entry.restarts})")
            self._changed()

    def _changed(self) -> None:
        self._on_change(self.conditions())
