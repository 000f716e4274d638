"""The machine-wide capacity ledger: real files, real locks, real processes for liveness."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shipyard.engine.capacity import after_others
from shipyard.engine.model import Capacity
from shipyard.errors import StateError
from shipyard.runtime import procfs
from shipyard.state.ledger import LEDGER_ENV, Ledger, ledger_path


def ledger(path: Path, name: str, pid: int | None = None) -> Ledger:
    pid = pid or os.getpid()
    return Ledger(path, path.parent / name, name, pid, procfs.start_time(pid), procfs.is_running)


def test_each_environment_sees_what_the_others_hold(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    dev, prod = ledger(path, "dev"), ledger(path, "prod")
    with dev.transaction() as others:
        assert others == []
        dev.hold(0.3, 192 * 2**20)
    with prod.transaction() as others:
        assert [(o.environment, o.cpu, o.memory) for o in others] == [("dev", 0.3, 192 * 2**20)]
        assert after_others(Capacity(2.0, 2**30), others) == Capacity(1.7, 2**30 - 192 * 2**20)
        prod.hold(1.1, 2**29)
    with dev.transaction() as others:
        assert [(o.environment, o.cpu) for o in others] == [("prod", 1.1)]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    prod.forget()
    with dev.transaction() as others:
        assert others == []


def test_entries_of_dead_control_planes_are_ignored_and_dropped(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = Ledger(path, tmp_path / "old", "old", gone.pid, 1, procfs.is_running)
    with stale.transaction():
        stale.hold(1.5, 2**30)
    # a live pid whose start time differs is another process: stale as well
    reused = Ledger(path, tmp_path / "reused", "reused", os.getpid(), 1, procfs.is_running)
    with reused.transaction():
        reused.hold(0.5, 2**20)
    dev = ledger(path, "dev")
    with dev.transaction() as others:
        assert others == []
        dev.hold(0.1, 2**20)
    assert set(json.loads(path.read_text())["entries"]) == {str((tmp_path / "dev").resolve())}


def _hold_and_count(path: str, name: str, queue: "multiprocessing.Queue[int]", barrier: Any) -> None:
    # Each process takes what is left of 1 core in 0.1 steps, planning under the lock as a pass does.
    # Both run at once and stay alive until both are done: the entry of a process that has exited is
    # (rightly) ignored as stale, which would let the other take the whole machine.
    own = ledger(Path(path), name)
    total = 0.0
    barrier.wait(30)
    for _ in range(20):
        with own.transaction() as others:
            free = after_others(Capacity(1.0, 2**30), others).cpu - total
            if free >= 0.1 - 1e-9:
                total += 0.1
            own.hold(round(total, 6), 0)
    queue.put(round(total * 10))
    barrier.wait(30)


def test_two_control_planes_planning_at_once_never_overcommit_the_machine(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    queue: "multiprocessing.Queue[int]" = context.Queue()
    barrier = context.Barrier(2)
    workers = [context.Process(target=_hold_and_count, args=(str(tmp_path / "ledger.json"), name, queue, barrier))
               for name in ("dev", "prod")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert sum(queue.get(timeout=5) for _ in workers) == 10  # exactly the machine, never more


def test_the_path_comes_from_the_environment_or_the_home_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LEDGER_ENV, "/tmp/x/ledger.json")
    assert ledger_path() == Path("/tmp/x/ledger.json")
    monkeypatch.delenv(LEDGER_ENV)
    assert ledger_path() == Path.home() / ".shipyard" / "ledger.json"


def test_a_damaged_ledger_is_rebuilt_and_an_unwritable_one_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    path.write_text("{not json")
    dev = ledger(path, "dev")
    with dev.transaction() as others:
        assert others == []
        dev.hold(0.2, 0)
    assert json.loads(path.read_text())["entries"]
    blocked = ledger(tmp_path / "file" / "ledger.json", "dev")
    (tmp_path / "file").write_text("a file where a directory should be")
    with pytest.raises(StateError, match="cannot open the capacity ledger"):
        with blocked.transaction():
            pass
