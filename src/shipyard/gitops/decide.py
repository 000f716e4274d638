"""The follower's decisions, purely: what to do with a fetched head, and how to describe what happened."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

from shipyard.engine.desired import DesiredState
from shipyard.engine.model import Condition
from shipyard.source.git import Commit


class Action(str, Enum):
    APPLY = "apply"        # a new commit: export, validate, apply or reject it
    REAPPLY = "reapply"    # the applied commit again: undo imperative changes (scale, edited snapshots)
    HOLD = "hold"          # a new commit, but the environment is suspended: report it as pending
    NONE = "none"


def decide(head: str | None, applied: str | None, rejected: str | None, suspended: bool, drifted: bool) -> Action:
    """What to do after a fetch. HEAD is None when the fetch failed; REJECTED is the last commit found invalid.

    A rejected commit is not tried again (it cannot become valid); a suspended environment changes nothing.
    """
    new = head is not None and head not in (applied, rejected)
    if suspended:
        return Action.HOLD if new else Action.NONE
    if new:
        return Action.APPLY
    if applied is not None and (drifted or (rejected is not None and head == applied)):
        return Action.REAPPLY  # drift, or the branch moved back to the applied commit: clear the rejection
    return Action.NONE


def rejection_condition(commit: Commit, errors: list[str]) -> Condition:
    """`Ready False ValidationFailed`, naming the commit and every error (FILE:LINE:COL: error: …)."""
    count = len(errors)
    message = (f"commit {commit.short} ({commit.message}) is invalid, {count} error{'s' if count != 1 else ''}; "
               f"still running the last good revision: " + "; ".join(errors))
    return Condition("Ready", "False", "ValidationFailed", message)


def services_after(desired: DesiredState | None) -> dict[str, dict[str, Any]]:
    """Every service's version, replicas and release in DESIRED (and the digest of a built artifact), for the
    history."""
    if desired is None:
        return {}
    return {name: {"version": s.release.version, "replicas": s.replicas, "release": s.release.id,
                   **({"digest": s.release.digest} if s.release.digest else {})}
            for name, s in sorted(desired.services.items())}


def commit_record(commit: Commit) -> dict[str, Any]:
    return {"sha": commit.sha, "short": commit.short, "author": commit.author, "email": commit.email,
            "date": commit.date.isoformat(), "message": commit.message}


def with_overrides(desired: DesiredState, overrides: dict[str, int]) -> DesiredState:
    """DESIRED with the replicas of `shipyard scale` in place of what the revision says."""
    if not overrides:
        return desired
    services = {name: dataclasses.replace(s, replicas=overrides[name]) if name in overrides else s
                for name, s in desired.services.items()}
    return dataclasses.replace(desired, services=services)


def seconds_until(last_fetch: float | None, delay: float, now: float) -> float:
    """Seconds until the next scheduled fetch (0 when it is due)."""
    return 0.0 if last_fetch is None else max(0.0, last_fetch + delay - now)
