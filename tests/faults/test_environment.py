"""Faults in a real control plane's surroundings: its proxy directory read-only or full, its SQLite
database locked by another process. Each test asserts that the loop keeps running, that `status` says
what is wrong, and that the environment recovers by itself once the fault ends."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_data_plane import endpoint_port, plane  # noqa: F401 - the fixture
from tests.controlplane import ControlPlane, http_get, wait_for
from tests.projects import probe_service


# The in-process control plane's listening socket may be collected after its thread ends (a ResourceWarning
# pytest reports on an unrelated test); the process-level tests check that nothing is left running.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def condition(cp: ControlPlane, *reasons: str) -> dict[str, Any] | None:
    return next((c for c in cp.status()["conditions"] if c["reason"] in reasons), None)


def served_by(cp: ControlPlane, service: str, requests: int = 20) -> set[str]:
    port = endpoint_port(cp, service)
    return {json.loads(http_get(f"http://127.0.0.1:{port}/")[2])["instance"] for _ in range(requests)}


def mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here (needs CAP_SYS_ADMIN): {result.stderr.strip()}")


def read_only(directory: Path) -> None:
    mount("--bind", str(directory), str(directory))
    mount("-o", "remount,ro,bind", str(directory))


def full(directory: Path) -> None:
    """A tiny tmpfs over the directory, holding a copy of its files and nothing more fits."""
    copy = directory.parent / "proxy-copy"
    shutil.copytree(directory, copy, symlinks=True)
    mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(directory))
    shutil.copytree(copy, directory, symlinks=True, dirs_exist_ok=True)
    with open(directory / "filler", "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
        except OSError:
            pass


@pytest.mark.parametrize("fault, says", [(read_only, "Read-only file system"), (full, "No space left")])
def test_a_proxy_directory_that_refuses_writes_is_reported_and_the_data_plane_catches_up(plane, fault, says):
    cp = plane([probe_service("alpha")])
    cp.up()
    proxy = cp.state_dir / "proxy"
    fault(proxy)
    try:
        cp.cli("scale", "alpha", "2")
        problem = wait_for(lambda: condition(cp, "ReconcileFailed", "PublishFailed"), timeout=20,
                           what="the publish failure in status")
        assert says in problem["message"]
        ready = next(c for c in cp.status()["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "False"
        cp.wait_ready("alpha", 2)   # the loop goes on: instances are healed even while nothing can be published
        assert len(served_by(cp, "alpha")) == 1
    finally:
        subprocess.run(["umount", str(proxy)], check=False)
    wait_for(lambda: condition(cp, "ReconcileFailed", "PublishFailed") is None, timeout=30,
             what="the condition cleared")
    wait_for(lambda: len(served_by(cp, "alpha")) == 2, timeout=10, what="both instances routed")


def test_a_database_locked_by_another_process_is_reported_and_nothing_is_lost(plane):
    cp = plane([probe_service("alpha")])
    cp.up()
    victim = cp.wait_ready("alpha", 1)[0]
    locker = sqlite3.connect(str(cp.state_dir / "state.db"), isolation_level=None, timeout=1)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        os.kill(victim["pid"], signal.SIGKILL)
        problem = wait_for(lambda: condition(cp, "ReconcileFailed"), timeout=30, what="ReconcileFailed")
        assert "database is locked" in problem["message"]
        # Memory stays the truth: the instance is replaced while its record cannot be written.
        replaced = cp.wait_ready("alpha", 1, timeout=30)[0]
        assert replaced["pid"] != victim["pid"]
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    wait_for(lambda: condition(cp, "ReconcileFailed") is None, timeout=30, what="the condition cleared")
    # What the store holds now is what runs: a restarted control plane would adopt the replacement.
    with sqlite3.connect(str(cp.state_dir / "state.db")) as reader:
        stored = [json.loads(row[0]) for row in reader.execute("SELECT data FROM instances")]
    assert [(i["pid"], i["state"]) for i in stored] == [(replaced["pid"], "ready")]
