"""A plan as text for people (and pull-request comments): one block per environment, one line per change."""

from __future__ import annotations

import json
from typing import Any

from shipyard.preview.diff import MASK, Change, EnvironmentDiff, ServiceDiff
from shipyard.preview.plan import Plan

MARKS = {"added": "+", "removed": "-", "changed": "~"}


def plan_lines(plan: Plan) -> list[str]:
    """The table output of `shipyard plan`."""
    base, target = plan.base, plan.target
    lines = [f"Plan: {base.rev} ({base.commit.short}) → {target.rev} ({target.commit.short})"]
    for name, diff in plan.environments.items():
        lines.append("")
        lines.extend(environment_lines(name, diff))
    diffs = list(plan.environments.values())
    total, touched = sum(len(diff.services) for diff in diffs), sum(1 for diff in diffs if diff.changed)
    lines.append("")
    if plan.changed:
        lines.append(f"{total} service change{'s' if total != 1 else ''} in {touched} of {len(diffs)} "
                     f"environment{'s' if len(diffs) != 1 else ''}.")
    else:
        lines.append("No changes.")
    return lines


def environment_lines(name: str, diff: EnvironmentDiff) -> list[str]:
    """One environment's block: a heading, then `+`, `-` and `~` lines, then what stays as it is."""
    state = "" if diff.existed and diff.exists else " (new environment)" if diff.exists else " (environment removed)"
    lines = [f"{name}{state}"]
    width = max((len(service) for service in diff.services), default=0)
    for service in diff.services.values():
        lines.extend(service_lines(service, width))
    if diff.unchanged:
        prefix = "  unchanged: " if diff.services else "  no changes: "
        lines.append(prefix + ", ".join(diff.unchanged))
    elif not diff.services:
        lines.append("  no services")
    return lines


def service_lines(diff: ServiceDiff, width: int = 0) -> list[str]:
    """`~ catalog  version 1.0.0 → 1.1.0 (canary)`, then one indented line per further change."""
    head = f"  {MARKS[diff.change]} {diff.name.ljust(width)}  "
    if diff.change != "changed":
        version = diff.version.after if diff.change == "added" else diff.version.before  # type: ignore[union-attr]
        replicas = diff.replicas.after if diff.change == "added" else diff.replicas.before  # type: ignore[union-attr]
        return [f"{head}version {version}, replicas {replicas}" + (" (removed)" if diff.change == "removed" else "")]
    details = [f"{item.key}: {_value(item.before)} → {_value(item.after)}" for item in diff.config]
    if diff.version is not None:
        summary = f"version {_arrow(diff.version)}"
        if diff.replicas is not None:
            details.insert(0, f"replicas {_arrow(diff.replicas)}")
    elif diff.replicas is not None and not diff.new_release:
        summary = f"replicas {_arrow(diff.replicas)}"
    else:
        summary = "new release" if diff.new_release else "settings"
        if diff.replicas is not None:
            details.insert(0, f"replicas {_arrow(diff.replicas)}")
    how = "no restart" if diff.rollout == "none" else diff.rollout
    return [f"{head}{summary} ({how})"] + [" " * 6 + detail for detail in details]


def _arrow(change: Change) -> str:
    return f"{change.before} → {change.after}"


def _value(value: Any) -> str:
    if value is None:
        return "(unset)"
    if value == MASK:
        return MASK
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
