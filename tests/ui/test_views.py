"""The dashboard's pure view functions, table-style."""

from __future__ import annotations

from typing import Any

from shipyard.ui import views


def service(name: str, ready: int = 1, desired: int = 1, status: str = "complete", **rollout: Any) -> dict[str, Any]:
    return {"name": name, "version": "1.0.0", "ready_replicas": ready, "desired_replicas": desired,
            "endpoint": None, "traffic": None,
            "rollout": {"strategy": "canary", "status": status, "phase": "", "step": -1, "weight": 0, **rollout}}


def test_overview_puts_what_needs_attention_first_and_pages():
    status = {"services": [service("a"), service("b", status="progressing", phase="step", step=0, weight=10),
                           service("c", status="failed"), service("d", ready=0, desired=2), service("e")]}
    page = views.overview(status, size=2)
    assert [r["name"] for r in page.rows] == ["c", "d"] and (page.number, page.pages, page.total) == (1, 3, 5)
    assert [r["name"] for r in views.overview(status, page=2, size=2).rows] == ["b", "a"]
    assert views.overview(status, page=99, size=2).number == 3  # clamped to the last page
    assert [r["name"] for r in views.overview(status, query="B").rows] == ["b"]
    assert views.overview(status, query="b").rows[0]["rollout"] == "canary step step 1 at 10%"


def test_success_rate_and_request_rate_add_up_over_releases():
    traffic = {"releases": [{"request_rate": 4.0, "requests": 90, "errors_5xx": 0},
                            {"request_rate": 1.0, "requests": 10, "errors_5xx": 5}]}
    row = views.service_row({**service("a"), "traffic": traffic})
    assert row["request_rate"] == 5.0 and row["success_rate"] == 95.0


def test_conditions_unhealthy_first():
    status = {"conditions": [{"type": "Ready", "status": "True"}, {"type": "RolloutFailed", "status": "True"},
                             {"type": "DataPlaneInSync", "status": "False"}]}
    assert [c["type"] for c in views.conditions(status)] == ["RolloutFailed", "DataPlaneInSync", "Ready"]


def test_timeline():
    states = [s["state"] for s in views.timeline((10, 50, 100), {"step": 1, "status": "progressing"})]
    assert states == ["done", "current", "pending"]
    assert {s["state"] for s in views.timeline((10, 100), {"step": 1, "status": "complete"})} == {"done"}


def test_chart_series_from_analysis_decisions():
    decisions = [{"kind": "analysis", "at": 1.0, "window": {"canary": {"success_rate": 99.0, "p99_ms": 5.0},
                                                            "primary": {"success_rate": 100.0, "p99_ms": 4.0}}},
                 {"kind": "command", "at": 2.0},
                 {"kind": "analysis", "at": 3.0, "window": {"canary": {"success_rate": None, "p99_ms": None},
                                                            "primary": None}}]
    assert views.chart_series(decisions) == {"at": [1.0, 3.0], "canary_success": [99.0, None],
                                             "primary_success": [100.0, None], "canary_p99": [5.0, None],
                                             "primary_p99": [4.0, None]}


def test_filter_events_newest_first():
    events = [{"object": "alpha", "reason": "Started", "type": "Normal"},
              {"object": "alpha-1a2b", "reason": "Ready", "type": "Normal"},
              {"object": "alphabet", "reason": "Ready", "type": "Normal"},
              {"object": "alpha", "reason": "RolledBackAborted", "type": "Warning"}]
    assert [e["reason"] for e in views.filter_events(events, service="alpha")] == ["RolledBackAborted", "Ready",
                                                                                 "Started"]
    assert [e["object"] for e in views.filter_events(events, reason="Ready")] == ["alphabet", "alpha-1a2b"]
    assert len(views.filter_events(events, type_="Warning")) == 1


def test_history_changes():
    entries = [{"result": "applied", "services": {"a": {"version": "2", "replicas": 2}, "c": {"version": "1", "replicas": 1}}},
               {"result": "rejected", "services": {}},
               {"result": "applied", "services": {"a": {"version": "1", "replicas": 2}, "b": {"version": "1", "replicas": 1}}}]
    assert views.history_changes(entries) == [["~ a 1×2 → 2×2", "- b 1×1", "+ c 1×1"],
                                              [], ["+ a 1×2", "+ b 1×1"]]


def test_search_lines():
    assert views.search_lines(["GET /", "listening on 80"], "LISTEN") == ["listening on 80"]
    assert views.search_lines(["x"], "") == ["x"]
