"""Races between starting and stopping: a `down` while an instance's process is being spawned, or while it
is still starting up, leaves no process running and no record behind; `/apply` changes the reconciler's
state on its event loop only."""

from __future__ import annotations

import pytest

import sqlite3
import threading
import time
from typing import Any

from shipyard.runtime.base import Handle, InstanceSpec
from tests.controlplane import pid_alive, wait_for
from tests.projects import probe_service, write_project


# The in-process control plane's listening socket may be collected after its thread ends (a ResourceWarning
# pytest reports on an unrelated test); the process-level tests check that nothing is left running.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


class SlowSpawner:
    """The real driver, whose `start` takes `delay` seconds before spawning (a slow sandbox set-up)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.delay = inner, 0.0
        self.spawning = threading.Event()
        self.spawned: list[int] = []

    def start(self, spec: InstanceSpec) -> Handle:
        if self.delay:
            self.spawning.set()
            time.sleep(self.delay)
        handle: Handle = self.inner.start(spec)
        self.spawned.append(handle.pid)
        return handle

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def stored_instances(plane: Any) -> list[str]:
    with sqlite3.connect(str(plane.state_dir / "state.db")) as db:
        return [row[0] for row in db.execute("SELECT id FROM instances")]


def test_down_while_a_process_is_being_spawned_leaves_nothing_running(in_process):
    plane = in_process([probe_service("alpha")])
    driver = SlowSpawner(plane.reconciler.driver)
    plane.reconciler.driver = driver
    plane.start()
    wait_for(lambda: plane.ready("alpha", 1), timeout=30, what="alpha ready")
    driver.delay = 1.5
    plane.post("/scale", {"service": "alpha", "replicas": 2})
    assert driver.spawning.wait(20), "the second instance's spawn never began"
    plane.post("/down")      # arrives while the spawn is under way
    # the spawn finished (and was recorded) before the stops began (more: a restart on a loaded machine) …
    assert len(driver.spawned) >= 2
    wait_for(lambda: not any(pid_alive(p) for p in driver.spawned), timeout=10, what="every process gone")
    assert stored_instances(plane) == []   # … and nothing was resurrected afterwards


def test_down_while_an_instance_is_still_starting_up_stops_it(in_process):
    plane = in_process([probe_service("alpha")])
    plane.start()
    wait_for(lambda: plane.ready("alpha", 1), timeout=30, what="alpha ready")
    write_project(plane.project, [probe_service("alpha", version="2.0.0", env={"STARTUP_DELAY": "30"})])
    plane.post("/apply")
    starting = wait_for(lambda: [i for i in plane.status()["services"][0]["instances"]
                                 if i["state"] == "starting" and i["pid"]], timeout=20, what="a starting instance")
    pids = [i["pid"] for i in plane.status()["services"][0]["instances"]]
    plane.post("/down")
    assert starting[0]["pid"] in pids and not any(pid_alive(p) for p in pids)
    assert stored_instances(plane) == []


def test_apply_installs_the_desired_state_on_the_event_loop(in_process):
    plane = in_process([probe_service("alpha")])
    installed_on: list[threading.Thread] = []
    real = plane.reconciler.set_desired

    def set_desired(desired: Any) -> None:
        installed_on.append(threading.current_thread())
        real(desired)

    plane.reconciler.set_desired = set_desired  # type: ignore[method-assign]
    plane.start()
    loop_thread = plane.on_loop(threading.current_thread)
    write_project(plane.project, [probe_service("alpha", replicas=2)])
    plane.post("/apply")
    assert installed_on and set(installed_on) == {loop_thread}
    wait_for(lambda: plane.ready("alpha", 2), timeout=30, what="the applied replicas")
