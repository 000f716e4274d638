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
