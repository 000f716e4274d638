"""A supervised task of a real control plane that keeps dying: `/healthz` says 503 and why while it is
down, `status` and events report it, and it is restarted until it stays up."""

from __future__ import annotations

import pytest

import asyncio

from shipyard import daemon
from tests.controlplane import wait_for
from tests.projects import probe_service


# The in-process control plane's listening socket may be collected after its thread ends (a ResourceWarning
# pytest reports on an unrelated test); the process-level tests check that nothing is left running.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def test_a_dying_watchdog_is_restarted_and_healthz_tells_while_it_is_down(in_process, monkeypatch):
    real_watch = daemon._watch_data_plane
    runs = {"count": 0}

    async def dying_watchdog(plane: daemon.ControlPlane) -> None:
        runs["count"] += 1
        if runs["count"] <= 3:   # down for 0 s, then 1 s, then 2 s before each restart
            await asyncio.sleep(0.2)
            raise KeyError("injected watchdog fault")
        await real_watch(plane)

    monkeypatch.setattr(daemon, "_watch_data_plane", dying_watchdog)
    plane = in_process([probe_service("alpha")])
    plane.start()
    code, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(plane.healthz()),
                          timeout=20, what="healthz 503")
    assert "watchdog is down (KeyError: 'injected watchdog fault')" in body
    wait_for(lambda: runs["count"] >= 4 and plane.healthz()[0] == 200, timeout=20,
             what="the watchdog up again")
    wait_for(lambda: plane.ready("alpha", 1), timeout=30, what="alpha ready")
    restarted = next(c for c in plane.status()["conditions"] if c["type"] == "TasksRunning")
    assert (restarted["status"], restarted["reason"]) == ("True", "TaskRestarted")
    assert "watchdog restarted 3 time(s)" in restarted["message"]
    reasons = [e["reason"] for e in plane.get("/events") if e["object"] == "control-plane"]
    assert reasons.count("TaskFailed") == 3 and reasons.count("TaskRestarted") == 3
