"""Garbage collection: the pure decision, table by table, and one collection against a real store and state dir."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import SimpleNamespace

from shipyard.engine import gc
from shipyard.engine.gc import KEEP_ROLLOUTS, RECENT, Garbage, Records, decide
from shipyard.engine.model import Instance, Probe, Release, Rollout, State
from shipyard.state.store import Store

NOW = 1_000_000.0
OLD = NOW - RECENT - 1


def release(rid: str, service: str = "svc", snapshot: str | None = None) -> Release:
    probe = Probe("/healthz", 1.0, 1.0, 3)
    return Release(id=rid, service=service, version=rid, snapshot=snapshot or f"snap-{rid}", command=("run",),
                   env=(), cpu=0.1, memory=2**26, readiness=probe, liveness=probe, startup_timeout=10.0)


def rollout(target: str, at: float, previous: str | None = None, service: str = "svc") -> Rollout:
    return Rollout(service=service, target=target, started_at=at, strategy="rolling", status="complete",
                   previous=previous)


def instance(iid: str, rid: str) -> Instance:
    return Instance(id=iid, service="svc", release=rid, port=9000, state=State.READY, created_at=OLD)


def test_old_releases_nothing_refers_to_go_with_their_snapshots():
    records = Records(releases=[(OLD, release("r1")), (OLD, release("r2")), (OLD, release("r3"))],
                      rollouts=[rollout("r2", 1.0), rollout("r3", 2.0, previous="r2")], instances=[],
                      in_use={"r3"}, snapshots={"snap-r1": OLD, "snap-r2": OLD, "snap-r3": OLD})
    assert decide(records, NOW) == Garbage(releases=("r1",), snapshots=("snap-r1",))


def test_recent_releases_and_snapshots_stay_whatever_refers_to_them():
    records = Records(releases=[(NOW - 10, release("fresh")), (OLD, release("old"))], rollouts=[], instances=[],
                      in_use=set(), snapshots={"snap-fresh": NOW - 10, "snap-old": OLD, "unknown": NOW - 5})
    assert decide(records, NOW) == Garbage(releases=("old",), snapshots=("snap-old",))


def test_a_release_built_again_lately_stays_though_recorded_long_ago():
    records = Records(releases=[(OLD, release("revived")), (OLD, release("old"))], rollouts=[], instances=[],
                      in_use=set(), snapshots={"snap-revived": NOW - 5, "snap-old": OLD})
    assert decide(records, NOW) == Garbage(releases=("old",), snapshots=("snap-old",))


def test_rollout_history_keeps_the_newest_per_service_and_what_undo_can_go_back_to():
    history = [rollout(f"r{n}", float(n), previous=f"r{n - 1}" if n else None) for n in range(KEEP_ROLLOUTS + 3)]
    other = [rollout("o1", 1.0, service="other")]
    releases = [(OLD, release(r.target)) for r in history] + [(OLD, release("o1", service="other"))]
    garbage = decide(Records(releases=releases, rollouts=history + other, instances=[], in_use=set()), NOW)
    assert garbage.rollouts == (("svc", 0.0), ("svc", 1.0), ("svc", 2.0))
    # r2 is the previous release of the oldest kept rollout (r3): `rollout undo` may still need it
    assert garbage.releases == ("r0", "r1")


def test_instances_desired_and_pinned_releases_are_kept():
    records = Records(releases=[(OLD, release(r)) for r in ("ran", "desired", "pinned", "gone")], rollouts=[],
                      instances=[instance("svc-1", "ran")], in_use={"desired", "pinned"})
    assert decide(records, NOW).releases == ("gone",)


def test_instance_directories_go_once_their_instance_is_gone_for_a_while():
    records = Records(releases=[], rollouts=[], instances=[instance("live", "r")], in_use=set(),
                      instance_dirs={"live": OLD, "ended-long-ago": OLD, "ended-just-now": NOW - 60})
    assert decide(records, NOW).instance_dirs == ("ended-long-ago",)


def test_a_collection_deletes_rows_and_directories_and_says_so(tmp_path: Path):
    store = Store(tmp_path / "state.db")
    for rid in ("keep", "drop"):
        store.save_release(release(rid))
        snapshot = tmp_path / "snapshots" / f"snap-{rid}"
        (snapshot / "sub").mkdir(parents=True)
        (snapshot / "sub" / "app.py").write_text("print()")
        os.chmod(snapshot / "sub", 0o555)  # a read-only snapshot still goes
        os.utime(snapshot, (OLD, OLD))
    for n in range(KEEP_ROLLOUTS + 1):
        store.save_rollout(rollout("keep", float(n)))
    (tmp_path / "instances" / "svc-old").mkdir(parents=True)
    (tmp_path / "instances" / "svc-old" / "stdout.log").write_text("bye\n")
    os.utime(tmp_path / "instances" / "svc-old", (OLD, OLD))
    store._execute("UPDATE releases SET created_at = ?", (OLD,))
    events: list[tuple[str, ...]] = []
    reconciler = SimpleNamespace(store=store, state_dir=tmp_path, desired=None, declared=None, pins={},
                                 rollouts={}, instances={}, event=lambda *args: events.append(args))
    garbage = asyncio.run(gc.collect(reconciler, now=NOW))  # type: ignore[arg-type]
    assert garbage.releases == ("drop",) and garbage.rollouts == (("svc", 0.0),)
    assert store.release("drop") is None and store.release("keep") is not None
    assert len(store.rollout_history("svc")) == KEEP_ROLLOUTS
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["snap-keep"]
    assert not (tmp_path / "instances" / "svc-old").exists()
    assert events == [("Normal", "environment", "GarbageCollected",
                       "removed 1 releases, 1 rollout records, 1 snapshots and 1 instance directories")]
    assert not asyncio.run(gc.collect(reconciler, now=NOW))  # a second collection finds nothing
