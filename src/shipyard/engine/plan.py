"""The pure reconcile decision: desired state, actual state and the time in; what to do next out.

Level-triggered and idempotent: applying the plan and planning again plans nothing new, because
every decision is derived from instance records the executor updates as it acts (a started
instance is recorded `starting` before its process exists; a stopped one `stopping`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace

from shipyard.engine.actions import admit, due, heal_and_trim, retire, stop_order
from shipyard.engine.capacity import Budget
from shipyard.delivery.phases import STARTING
from shipyard.engine.progressive_plan import plan_progressive, wait
from shipyard.engine.release_phase import RELEASING
from shipyard.engine.model import (
    DOWN_STATES,
    Capacity,
    Condition,
    DesiredService,
    Instance,
    Plan,
    Release,
    Rollout,
    State,
)
from shipyard.spec.types import resolve_count


MAX_STARTING_PER_CORE = 4  # new instances starting at once, per core of capacity: no start-up storms


@dataclass(frozen=True)
class World:
    """Everything a pass reads."""

    desired: dict[str, DesiredService]
    instances: tuple[Instance, ...]
    rollouts: dict[str, Rollout]
    capacity: Capacity
    now: float
    revision: str | None = None
    suspended: bool = False
    releases: dict[str, Release] = field(default_factory=dict)   # the previous releases of progressive rollouts


def plan(world: World) -> Plan:
    """Decide one step for every service; new instances are admitted against the machine's capacity."""
    result = Plan()
    by_service: dict[str, list[Instance]] = defaultdict(list)
    for instance in world.instances:
        by_service[instance.service].append(instance)
    budget = Budget.of(world.capacity, _reserved(world))
    starting = sum(i.state is State.STARTING for i in world.instances)
    budget.start_slots = max(0, int(MAX_STARTING_PER_CORE * max(world.capacity.cpu, 1.0)) - starting)
    for name in sorted(set(by_service) - set(world.desired)):
        _prune(by_service[name], result)
    for name in sorted(world.desired):
        _plan_service(world, world.desired[name], by_service.get(name, []), budget, result)
    result.held = (round(world.capacity.cpu - budget.cpu, 6), world.capacity.memory - budget.memory)
    return result


def _reserved(world: World) -> list[tuple[float, int]]:
    # Every record but a stopped one holds its share; down instances keep theirs for their restart.
    reserved = []
    for instance in world.instances:
        desired = world.desired.get(instance.service)
        if desired is not None and instance.release == desired.release.id:
            reserved.append((desired.release.cpu, desired.release.memory))
        elif instance.handle and "limits" in instance.handle:
            limits = instance.handle["limits"]
            reserved.append((limits.get("cpu") or 0.0, limits.get("memory") or 0))
    return reserved


def _prune(instances: list[Instance], result: Plan) -> None:
    for instance in instances:
        if instance.live:
            result.stop.append((instance.id, "service removed from the environment"))
        elif instance.state in DOWN_STATES:
            result.forget.append(instance.id)


def _plan_service(world: World, desired: DesiredService, instances: list[Instance], budget: Budget,
                  result: Plan) -> None:
    rollout = _current_rollout(world, desired, instances, result)
    if rollout.progressive:
        previous = world.releases.get(rollout.previous) if rollout.previous else None
        plan_progressive(desired, rollout, instances, previous, budget, world.now, result)
        _availability(desired, instances, result)
        return
    target = desired.release.id
    current = [i for i in instances if i.release == target and i.state is not State.STOPPING]
    old = [i for i in instances if i.release != target and i.state is not State.STOPPING]
    stopping = [i for i in instances if i.state is State.STOPPING]
    before = len(result.conditions)
    if rollout.status in ("failed", RELEASING):
        # Stopped where it was (or waiting for the release phase): keep healing whatever runs, start and stop
        # nothing else.
        result.restart.extend(i.id for i in current + old if due(i, world.now))
    elif desired.strategy == "recreate":
        _recreate(world, desired, current, old, stopping, budget, result)
    else:
        _rolling(world, desired, current, old, stopping, budget, result)
    rollout = _say_why(world, rollout, result.conditions[before:], result)
    _finish_rollout(world, desired, rollout, instances, result)
    _availability(desired, instances, result)


def _current_rollout(world: World, desired: DesiredService, instances: list[Instance], result: Plan) -> Rollout:
    existing = world.rollouts.get(desired.name)
    target = desired.release.id
    if existing is not None and existing.target == target:
        return existing
    serving = [i.release for i in instances if i.release != target and i.live]
    previous = max(set(serving), key=serving.count) if serving else (existing.target if existing else None)
    if existing is not None and existing.status == "progressing":
        result.rollouts.append(replace(existing, status="superseded", reason="Superseded",
                                       message=f"superseded by release {target}", updated_at=world.now))
    progressive = desired.progressive is not None and previous is not None and any(
        i.release == previous and i.state is State.READY for i in instances)
    rollout = Rollout(service=desired.name, target=target, started_at=world.now, strategy=desired.strategy,
                      previous=previous, updated_at=world.now, revision=world.revision,
                      phase=STARTING if progressive else "",
                      message=f"rolling out release {target}" if previous else f"deploying release {target}")
    result.rollouts.append(rollout)
    return rollout


def _rolling(world: World, desired: DesiredService, current: list[Instance], old: list[Instance],
             stopping: list[Instance], budget: Budget, result: Plan) -> None:
    replicas, now = desired.replicas, world.now
    surge = resolve_count(desired.rolling.max_surge, replicas, round_up=True)
    unavailable = resolve_count(desired.rolling.max_unavailable, replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        surge = 1  # at least one instance moves at a time
    if not old:
        surge = max(surge, replicas)  # nothing to replace: no reason to hold back
    heal_and_trim(current, replicas, now, result)
    total = len(current) + len(old) + len(stopping)  # stopping instances count against the surge budget
    wanted = min(replicas - len(current), replicas + surge - total)
    admit(desired, wanted, budget, result)
    if not old:
        return
    available = sum(i.available(now, desired.rolling.min_ready) for i in current)
    available += sum(i.state is State.READY for i in old)
    spare = available - (replicas - unavailable)
    if len(current) >= replicas and available >= replicas and all(
            i.available(now, desired.rolling.min_ready) for i in current):
        spare = len(old)  # the new release is fully available: retire the rest
    replaced = f"replaced by release {desired.release.id}"
    for instance in sorted(old, key=stop_order):
        if instance.state is not State.READY:
            retire(instance, result, replaced)
        elif spare > 0:
            retire(instance, result, replaced)
            spare -= 1


def _recreate(world: World, desired: DesiredService, current: list[Instance], old: list[Instance],
              stopping: list[Instance], budget: Budget, result: Plan) -> None:
    for instance in old:
        retire(instance, result, f"replaced by release {desired.release.id}")
    if old or any(i.release != desired.release.id for i in stopping):
        return  # all old instances must be gone before the first new one starts
    heal_and_trim(current, desired.replicas, world.now, result)
    admit(desired, desired.replicas - len(current), budget, result)


def _say_why(world: World, rollout: Rollout, conditions: list[Condition], result: Plan) -> Rollout:
    """A rolling or recreate rollout that cannot start what it needs says so on its record."""
    if rollout.status != "progressing":
        return rollout
    shortfall = next((c for c in conditions if c.type == "Schedulable"), None)
    updated = wait(rollout, f"no room for new instances: {shortfall.message}" if shortfall else "", world.now,
                   say=shortfall is not None)
    if updated != rollout:
        result.rollouts.append(updated)
    return updated


def _finish_rollout(world: World, desired: DesiredService, rollout: Rollout, instances: list[Instance],
                    result: Plan) -> None:
    if rollout.status != "progressing":
        return
    now, target = world.now, desired.release.id
    ready = [i for i in instances if i.release == target and i.available(now, desired.rolling.min_ready)]
    others = [i for i in instances if i.release != target]
    if len(ready) >= desired.replicas and not others:
        result.rollouts.append(replace(rollout, status="complete", reason="RolloutComplete", updated_at=now,
                                       message=f"{len(ready)}/{desired.replicas} instances of release {target} ready"))
    elif now - rollout.started_at > desired.rolling.progress_deadline:
        result.rollouts.append(replace(rollout, status="failed", reason="ProgressDeadlineExceeded", updated_at=now,
                                       message=f"release {target} not available after "
                                               f"{desired.rolling.progress_deadline:g}s: {len(ready)}/"
                                               f"{desired.replicas} ready; the previous release keeps serving"))


def _availability(desired: DesiredService, instances: list[Instance], result: Plan) -> None:
    ready = sum(i.state is State.READY for i in instances)
    if ready >= desired.replicas:
        return
    down = [i for i in instances if i.state in DOWN_STATES]
    reason = "InstancesCrashing" if down else "InstancesNotReady"
    result.conditions.append(Condition("Available", "False", reason,
                                       f"{desired.name}: {ready}/{desired.replicas} instances ready", desired.name))
