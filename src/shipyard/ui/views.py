"""What each dashboard page shows, computed from the API's documents (pure: no I/O, `now` passed in).

The pages (ui/pages.py) fetch the status document (engine/status.py), events, history and rollout
records and hand them here; these functions only sort, filter, page and summarise them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PAGE_SIZE = 50


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    number: int
    pages: int
    total: int


def attention(service: dict[str, Any]) -> int:
    """0 needs attention now (failed rollout, fewer ready than desired), 1 is moving, 2 is fine."""
    rollout = service.get("rollout") or {}
    if rollout.get("status") == "failed" or service["ready_replicas"] < service["desired_replicas"]:
        return 0
    if rollout.get("status") == "progressing":
        return 1
    return 2


def service_row(service: dict[str, Any]) -> dict[str, Any]:
    rollout = service.get("rollout") or {}
    traffic = (service.get("traffic") or {}).get("releases") or []
    rate = sum(r["request_rate"] or 0 for r in traffic) if traffic else None
    requests = sum(r["requests"] or 0 for r in traffic)
    errors = sum(r["errors_5xx"] or 0 for r in traffic)
    level = attention(service)
    return {"name": service["name"], "version": service["version"], "ready": service["ready_replicas"],
            "desired": service["desired_replicas"], "endpoint": service["endpoint"],
            "health": ("degraded" if level == 0 else "healthy"),
            "rollout": _rollout_label(rollout), "rollout_status": rollout.get("status") or "",
            "request_rate": rate, "success_rate": 100 * (1 - errors / requests) if requests else None,
            "attention": level}


def overview(status: dict[str, Any], query: str = "", page: int = 1, size: int = PAGE_SIZE) -> Page:
    """Services matching QUERY, those needing attention first, then by name; one page of SIZE."""
    rows = [service_row(s) for s in status["services"] if query.lower() in s["name"].lower()]
    rows.sort(key=lambda r: (r["attention"], r["name"]))
    pages = max(1, -(-len(rows) // size))
    number = min(max(1, page), pages)
    return Page(rows[(number - 1) * size:number * size], number, pages, len(rows))


def conditions(status: dict[str, Any]) -> list[dict[str, Any]]:
    """The environment's conditions, the unhealthy ones first (False status, or a True RolloutFailed)."""
    def bad(c: dict[str, Any]) -> bool:
        return c["status"] == "False" or (c["type"] == "RolloutFailed" and c["status"] == "True")
    return sorted(status["conditions"], key=lambda c: (not bad(c),))


def timeline(steps: tuple[int, ...] | list[int], rollout: dict[str, Any]) -> list[dict[str, Any]]:
    """Each canary step with its weight and whether it is done, current or to come."""
    current = rollout.get("step", -1)
    done_all = rollout.get("status") == "complete"
    return [{"index": i, "weight": w,
             "state": "done" if done_all or i < current else ("current" if i == current else "pending")}
            for i, w in enumerate(steps)]


def chart_series(decisions: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Canary vs primary success rate (%) and p99 latency (ms) at each analysis, for the chart."""
    series: dict[str, list[Any]] = {"at": [], "canary_success": [], "primary_success": [], "canary_p99": [],
                                    "primary_p99": []}
    for decision in decisions:
        window = decision.get("window")
        if decision.get("kind") != "analysis" or not window:
            continue
        canary, primary = window.get("canary") or {}, window.get("primary") or {}
        series["at"].append(decision.get("at"))
        series["canary_success"].append(canary.get("success_rate"))  # already percentages (proxy/window.py)
        series["primary_success"].append(primary.get("success_rate"))
        series["canary_p99"].append(canary.get("p99_ms"))
        series["primary_p99"].append(primary.get("p99_ms"))
    return series


def filter_events(events: list[dict[str, Any]], service: str = "", reason: str = "", type_: str = "") -> list[dict[str, Any]]:
    """Newest first, those whose object names SERVICE (or an instance of it), with that reason and type."""
    def keep(e: dict[str, Any]) -> bool:
        obj = e["object"]
        return ((not service or obj == service or obj.startswith(service + "-") or obj.startswith(service + "/"))
                and (not reason or e["reason"] == reason) and (not type_ or e["type"] == type_))
    return [e for e in reversed(events) if keep(e)]


def history_changes(entries: list[dict[str, Any]]) -> list[list[str]]:
    """For each history entry (newest first), how its services differ from the applied one before it ([] if rejected)."""
    changes: list[list[str]] = []
    for index, entry in enumerate(entries):
        if entry["result"] != "applied":
            changes.append([])  # nothing changed: the revision was rejected
            continue
        before = next((e.get("services") or {} for e in entries[index + 1:] if e["result"] == "applied"), {})
        after = entry.get("services") or {}
        lines = []
        for name in sorted(set(before) | set(after)):
            old, new = before.get(name), after.get(name)
            if old is None:
                lines.append(f"+ {name} {_shape(new)}")
            elif new is None:
                lines.append(f"- {name} {_shape(old)}")
            elif _shape(old) != _shape(new):
                lines.append(f"~ {name} {_shape(old)} → {_shape(new)}")
        changes.append(lines)
    return changes


def _shape(service: Any) -> str:
    return f"{service.get('version')}×{service.get('replicas')}" if isinstance(service, dict) else str(service)


def search_lines(lines: list[str], query: str) -> list[str]:
    return [line for line in lines if query.lower() in line.lower()] if query else lines


def _rollout_label(rollout: dict[str, Any]) -> str:
    if not rollout:
        return ""
    if rollout.get("phase") and rollout.get("status") == "progressing":
        return f"{rollout['strategy']} {rollout['phase']} step {rollout['step'] + 1} at {rollout['weight']}%"
    return f"{rollout.get('strategy', '')} {rollout.get('status', '')}".strip()
