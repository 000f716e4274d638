"""The plan's primitive moves on instances, shared by every strategy (pure: they only append to a Plan)."""

from __future__ import annotations

from shipyard.engine.backoff import MAX_DELAY
from shipyard.engine.capacity import Budget
from shipyard.engine.model import DOWN_STATES, DesiredService, Instance, Plan, State


def heal_and_trim(current: list[Instance], replicas: int, now: float, result: Plan) -> None:
    """Restart down instances when due; scale down the surplus, least useful first."""
    ordered = sorted(current, key=stop_order)
    surplus = len(current) - replicas
    for instance in ordered:
        if surplus > 0:
            retire(instance, result)
            surplus -= 1
        elif due(instance, now):
            result.restart.append(instance.id)


def admit(desired: DesiredService, wanted: int, budget: Budget, result: Plan) -> None:
    if wanted <= 0:
        return
    fits, condition = budget.admit(desired.name, wanted, desired.release.cpu, desired.release.memory)
    result.start.extend([(desired.name, desired.release.id)] * fits)
    if condition is not None:
        result.conditions.append(condition)


def retire(instance: Instance, result: Plan, reason: str | None = None) -> None:
    if instance.state in DOWN_STATES:
        result.forget.append(instance.id)
    else:
        result.stop.append((instance.id, reason or "scaled down"))


def stop_order(instance: Instance) -> tuple[int, float]:
    """Down first, then starting, unready, and ready last; among equals the newest first."""
    rank = {State.EXITED: 0, State.FAILED: 0, State.STARTING: 1, State.UNREADY: 2, State.READY: 3}
    return rank.get(instance.state, 4), -instance.created_at


def due(instance: Instance, now: float) -> bool:
    """A down instance's restart is due at `next_attempt_at` — or now, if that lies further ahead than
    any back-off can (the wall clock jumped back: waiting for it would keep the instance down for as long)."""
    if instance.state not in DOWN_STATES:
        return False
    at = instance.next_attempt_at or 0.0
    return at <= now or at - now > MAX_DELAY
