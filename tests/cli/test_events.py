"""`shipyard events` against a real control plane: counted repeats, and `-f` through a burst."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.controlplane import SHIPYARD, ControlPlane
from tests.projects import probe_service, write_project
from shipyard.state.store import Store


@pytest.fixture
def cp(tmp_path: Path):
    created = ControlPlane(write_project(tmp_path / "project", [probe_service("alpha")]), tmp_path / "state")
    created.up()
    yield created
    created.teardown()


def _reader(process: subprocess.Popen[str]) -> "queue.Queue[str]":
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_follow_prints_every_event_of_a_burst_larger_than_a_page_in_order_once(cp):
    follower = subprocess.Popen([*SHIPYARD, "events", "-f", "--state-dir", str(cp.state_dir)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = _reader(follower)
        lines.get(timeout=30)  # following: the history it printed first has arrived
        store = Store(cp.state_dir / "state.db")
        try:
            for n in range(1200):  # more than two of the follower's pages
                store.add_event("Normal", "burst", "Burst", f"burst event {n:04d}")
        finally:
            store.close()
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while len(seen) < 1200 and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if "burst event" in line:
                seen.append(line.rsplit("burst event ", 1)[1])
        assert seen == [f"{n:04d}" for n in range(1200)]
    finally:
        follower.kill()
        follower.wait()
        assert follower.stdout is not None
        follower.stdout.close()


def test_a_repeated_event_shows_its_count_in_json_and_in_the_table(cp):
    store = Store(cp.state_dir / "state.db")
    try:
        for _ in range(3):
            store.add_event("Warning", "data-plane", "PublishFailed", "envoy rejected the config")
    finally:
        store.close()
    events = json.loads(cp.cli("events", "-o", "json").stdout)
    repeated = [e for e in events if e["reason"] == "PublishFailed"]
    assert len(repeated) == 1 and repeated[0]["count"] == 3
    assert repeated[0]["first_seen"] <= repeated[0]["last_seen"] == repeated[0]["time"]
    line = next(line for line in cp.cli("events").stdout.splitlines() if "PublishFailed" in line)
    assert " x3 " in line
