"""The state store's history of applied revisions: newest first, bounded."""

from __future__ import annotations

from pathlib import Path

from shipyard.state import store as store_module
from shipyard.state.store import Store


def test_history_is_newest_first_and_keeps_what_was_recorded(tmp_path: Path):
    store = Store(tmp_path / "state.db")
    store.add_history("a" * 40, "applied", {"commit": {"short": "aaa"}, "services": {"x": {"version": "1"}}}, at=10.0)
    store.add_history("b" * 40, "rejected", {"commit": {"short": "bbb"}, "errors": ["f.yaml:1:1: error: x"]}, at=20.0)
    entries = store.history()
    assert [(e["revision"][0], e["result"], e["applied_at"]) for e in entries] == [("b", "rejected", 20.0),
                                                                                  ("a", "applied", 10.0)]
    assert entries[0]["errors"] == ["f.yaml:1:1: error: x"] and entries[1]["services"] == {"x": {"version": "1"}}
    assert len(store.history(limit=1)) == 1


def test_history_drops_the_oldest_past_its_bound(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(store_module, "MAX_HISTORY", 3)
    store = Store(tmp_path / "state.db")
    for n in range(5):
        store.add_history(str(n), "applied", {})
    assert [e["revision"] for e in store.history()] == ["4", "3", "2"]


def test_a_repeated_event_is_counted_and_moves_to_the_end(tmp_path: Path):
    store = Store(tmp_path / "state.db")
    store.add_event("Warning", "data-plane", "PublishFailed", "envoy rejected the config", at=10.0)
    store.add_event("Normal", "alpha-1", "Ready", "probe ok", at=11.0)
    store.add_event("Warning", "data-plane", "PublishFailed", "envoy rejected the config", {"try": 2}, at=12.0)
    store.add_event("Warning", "data-plane", "PublishFailed", "envoy rejected the config", {"try": 3}, at=13.0)
    events = store.events()
    assert [(e["object"], e["count"]) for e in events] == [("alpha-1", 1), ("data-plane", 3)]
    flapping = events[-1]
    assert (flapping["first_seen"], flapping["last_seen"], flapping["time"]) == (10.0, 13.0, 13.0)
    assert flapping["data"] == {"try": 3}
    store.add_event("Warning", "data-plane", "PublishFailed", "another message", at=14.0)
    assert [e["count"] for e in store.events()] == [1, 3, 1]


def test_events_after_an_id_page_forward_oldest_first_without_a_gap(tmp_path: Path):
    store = Store(tmp_path / "state.db")
    for n in range(25):
        store.add_event("Normal", f"obj-{n}", "Burst", f"event {n}")
    assert [e["message"] for e in store.events(limit=3)] == ["event 22", "event 23", "event 24"]
    seen: list[str] = []
    last = 0
    while page := store.events(after=last, limit=10):
        seen += [e["message"] for e in page]
        last = page[-1]["id"]
    assert seen == [f"event {n}" for n in range(25)]


def test_events_keep_at_most_the_cap_dropping_the_oldest(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(store_module, "MAX_EVENTS", 150)
    store = Store(tmp_path / "state.db")
    for n in range(450):
        store.add_event("Normal", "obj", "Burst", f"event {n}")
    kept = store.events(limit=10_000)
    assert len(kept) <= 150 + 100 and kept[-1]["message"] == "event 449"
    assert kept[0]["message"] == f"event {450 - len(kept)}"


def test_an_events_table_from_an_older_version_gains_the_count(tmp_path: Path):
    import sqlite3

    db = sqlite3.connect(tmp_path / "state.db")
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, type TEXT NOT NULL, "
               "object TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}')")
    db.execute("INSERT INTO events (time, type, object, reason, message) VALUES (5.0, 'Normal', 'x', 'Old', 'm')")
    db.commit()
    db.close()
    store = Store(tmp_path / "state.db")
    store.add_event("Normal", "x", "Old", "m", at=6.0)
    assert [(e["count"], e["first_seen"], e["last_seen"]) for e in store.events()] == [(2, 5.0, 6.0)]
