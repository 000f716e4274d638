"""Supervised tasks are restarted and reported; `/healthz`'s verdict as a table."""

from __future__ import annotations

import asyncio

import pytest

from shipyard.engine.supervisor import Supervisor, health, one_line


@pytest.mark.parametrize("now, last_pass, timer, down, healthy, says", [
    (100.0, 95.0, 5.0, {}, True, "ok"),
    (100.0, 86.0, 5.0, {}, True, "ok"),                      # 14 s: within 3 × 5 s
    (100.0, 84.0, 5.0, {}, False, "no reconcile pass completed for 16s (limit 15s)"),
    (100.0, 89.0, 1.0, {}, False, "limit 10s"),              # never less than 10 s
    (100.0, 99.0, 5.0, {"watchdog": "OSError: boom"}, False, "watchdog is down (OSError: boom)"),
])
def test_health_is_503_when_passes_stall_or_a_task_is_down(now, last_pass, timer, down, healthy, says):
    verdict = health(now, last_pass, timer, down)
    assert verdict[0] is healthy and says in verdict[1]


def test_a_stale_loop_names_the_error_of_its_last_pass():
    assert health(100.0, 50.0, 5.0, {}, "ValueError: bad")[1].endswith("last pass failed with ValueError: bad")


def test_one_line_keeps_the_type_and_the_first_line():
    assert one_line(ValueError("invalid data plane: x\nmore")) == "ValueError: invalid data plane: x"
    assert one_line(KeyError()) == "KeyError"


def test_a_task_that_raises_or_returns_is_restarted_and_reported():
    events: list[tuple[str, str, str]] = []
    conditions: list[list] = []

    async def scenario() -> list[str]:
        runs: list[str] = []
        done = asyncio.Event()

        async def flaky() -> None:
            runs.append("run")
            if len(runs) == 1:
                raise RuntimeError("scrape exploded")
            if len(runs) == 2:
                return
            done.set()
            await asyncio.Event().wait()

        supervisor = Supervisor(lambda *event: events.append(event), conditions.append)
        supervisor.start("scraper", flaky)
        await asyncio.wait_for(done.wait(), timeout=10)
        assert supervisor.down() == {} and supervisor.running() == ["scraper"]
        final = supervisor.conditions()
        await supervisor.close()
        assert (final[0].status, final[0].reason) == ("True", "TaskRestarted")
        return runs

    assert asyncio.run(scenario()) == ["run"] * 3
    reasons = [(kind, reason) for kind, reason, _ in events]
    assert reasons == [("Warning", "TaskFailed"), ("Normal", "TaskRestarted")] * 2
    assert "scraper ended: RuntimeError: scrape exploded" in events[0][2]
    assert "returned without being stopped" in events[2][2]
    failed = conditions[0][0]
    assert (failed.type, failed.status, failed.reason) == ("TasksRunning", "False", "TaskFailed")


def test_a_task_stopped_on_purpose_is_not_restarted():
    events: list[tuple[str, str, str]] = []

    async def scenario() -> None:
        supervisor = Supervisor(lambda *event: events.append(event))
        supervisor.start("follower", lambda: asyncio.Event().wait())  # type: ignore[arg-type,return-value]
        await asyncio.sleep(0)
        await supervisor.stop("follower")
        assert supervisor.running() == [] and supervisor.down() == {}

    asyncio.run(scenario())
    assert events == []
