"""The table output of a plan: one block per environment, one line per change."""

from __future__ import annotations

from datetime import datetime, timezone

from shipyard.preview.diff import Change, ConfigChange, EnvironmentDiff, ServiceDiff
from shipyard.preview.plan import Plan, Side
from shipyard.preview.report import plan_lines, service_lines
from shipyard.source.git import Commit

WHEN = datetime(2024, 1, 1, tzinfo=timezone.utc)


def commit(sha: str) -> Commit:
    return Commit(sha * 40, "Ada", "ada@example.com", WHEN, "subject", "")


def test_service_lines():
    bump = ServiceDiff("catalog", "changed", Change("1.0.0", "1.1.0"), Change(3, 5),
                       (ConfigChange("env.CATALOG_CURRENCY", "EUR", "USD"), ConfigChange("env.API_TOKEN", None, "***")),
                       "canary", new_release=True)
    assert service_lines(bump) == [
        "  ~ catalog  version 1.0.0 → 1.1.0 (canary)",
        "      replicas 3 → 5",
        '      env.CATALOG_CURRENCY: "EUR" → "USD"',
        "      env.API_TOKEN: (unset) → ***",
    ]
    scale = ServiceDiff("orders", "changed", None, Change(3, 5), (), "scale", new_release=False)
    assert service_lines(scale, width=8) == ["  ~ orders    replicas 3 → 5 (scale)"]
    config = ServiceDiff("orders", "changed", None, Change(3, 4), (ConfigChange("env.A", "1", "2"),), "rolling", True)
    assert service_lines(config) == ["  ~ orders  new release (rolling)", "      replicas 3 → 4", '      env.A: "1" → "2"']
    settings = ServiceDiff("orders", "changed", None, None, (ConfigChange("routing.timeout", 0.0, 5.0),), "none", False)
    assert service_lines(settings) == ["  ~ orders  settings (no restart)", "      routing.timeout: 0.0 → 5.0"]
    added = ServiceDiff("payments", "added", Change(None, "1.0.0"), Change(None, 2), (), "scale", True)
    removed = ServiceDiff("legacy", "removed", Change("0.9.0", None), Change(1, None), (), "scale", False)
    assert service_lines(added) == ["  + payments  version 1.0.0, replicas 2"]
    assert service_lines(removed) == ["  - legacy  version 0.9.0, replicas 1 (removed)"]


def test_plan_lines():
    scale = ServiceDiff("orders", "changed", None, Change(3, 5), (), "scale", new_release=False)
    plan = Plan(Side("main", commit("a")), Side("HEAD", commit("b")), {
        "dev": EnvironmentDiff({}, ("catalog", "orders")),
        "prod": EnvironmentDiff({"orders": scale}, ("catalog",)),
        "qa": EnvironmentDiff({}, (), existed=False, exists=True),
    })
    assert plan_lines(plan) == [
        "Plan: main (aaaaaaaaaaaa) → HEAD (bbbbbbbbbbbb)",
        "",
        "dev",
        "  no changes: catalog, orders",
        "",
        "prod",
        "  ~ orders  replicas 3 → 5 (scale)",
        "  unchanged: catalog",
        "",
        "qa (new environment)",
        "  no services",
        "",
        "1 service change in 2 of 3 environments.",
    ]
