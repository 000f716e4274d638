"""The plan's side of a canary or blue-green rollout: how many instances of each release, and the
phase moves that only depend on instances being ready (pure)."""

from __future__ import annotations

from dataclasses import replace

from shipyard.delivery import phases
from shipyard.engine.actions import admit, heal_and_trim, retire
from shipyard.engine.capacity import Budget
from shipyard.engine.model import Condition, DesiredService, Instance, Plan, Release, Rollout, State


def plan_progressive(desired: DesiredService, rollout: Rollout, instances: list[Instance], previous: Release | None,
                     budget: Budget, now: float, result: Plan) -> None:
    """One pass of a progressive rollout: the new release (canary / green) beside the previous one.

    The previous release keeps all its replicas until the new one has taken all traffic (a canary
    promoted, green switched plus `scaleDownDelay`), so rolling back is one routing change.
    """
    config = desired.progressive
    assert config is not None and rollout.progressive
    target, primary_id, replicas = desired.release.id, rollout.previous, desired.replicas
    live = [i for i in instances if i.state is not State.STOPPING]
    new = [i for i in live if i.release == target]
    primary = [i for i in live if i.release == primary_id]
    for leftover in (i for i in live if i.release not in (target, primary_id)):
        retire(leftover, result, "left over from an earlier rollout")
    updated = rollout
    if rollout.status == "failed":
        for instance in new:
            retire(instance, result, f"rolled back: {rollout.reason}")
        _keep(desired, primary, previous, budget, now, result)
        result.conditions.append(Condition(
            "InSync", "False", "RolledBack",
            f"{desired.name} runs release {primary_id} while the spec asks for {target} ({rollout.message}); "
            f"`shipyard rollout retry {desired.name}` tries again, a new commit replaces it", desired.name))
        return
    ready = sum(i.state is State.READY for i in new)
    if desired.strategy == "canary":
        if rollout.phase == phases.STARTING and ready >= phases.canary_instances(replicas, rollout, config.steps):
            updated = phases.after_canary_ready(rollout, config, now)
        elif rollout.phase == phases.PROMOTING and ready >= replicas:
            updated = rollout.evolve(phase=phases.PROMOTED, weight=100, updated_at=now,
                                     message=f"promoted: all traffic on {target}")
        wanted = phases.canary_instances(replicas, updated, config.steps)
        retire_primary = updated.phase == phases.PROMOTED
    else:
        if rollout.phase == phases.STARTING and ready >= replicas:
            updated = phases.after_green_ready(rollout, config, now)
        wanted = replicas
        retire_primary = updated.phase == phases.SWITCHED and now >= (updated.switched_at or now) + config.scale_down_delay
    heal_and_trim(new, wanted, now, result)
    shortfall = _admit_new(desired, updated, new, wanted, budget, result)
    if retire_primary:
        for instance in primary:
            retire(instance, result, f"replaced by {target}")
        primary = []
    else:
        _keep(desired, primary, previous, budget, now, result)
    if updated.phase not in (phases.PROMOTED, phases.SWITCHED) and ready < wanted:
        why = shortfall.message if shortfall is not None else "starting"
        updated = wait(updated, f"{ready}/{wanted} instances of {target} ready, traffic stays at "
                                f"{updated.weight}%: {why}", now, shortfall is not None)
    else:
        updated = wait(updated, "", now)
    if updated.phase in (phases.PROMOTED, phases.SWITCHED) and ready >= replicas and not primary and len(live) == len(new):
        updated = updated.evolve(status="complete", reason="RolloutComplete", updated_at=now,
                                 message=f"{ready}/{replicas} instances of release {target} serve all traffic")
    elif _overdue(desired, rollout, updated, now):
        waited = f" ({updated.waiting})" if updated.waiting else ""
        updated = phases.rollback(updated, "ProgressDeadlineExceeded",
                                  f"{ready}/{wanted} instances of {target} ready after "
                                  f"{desired.rolling.progress_deadline:g}s{waited}", now).evolve(waiting="",
                                                                                                waiting_since=None)
    if updated != rollout:
        result.rollouts.append(updated)


def _admit_new(desired: DesiredService, rollout: Rollout, new: list[Instance], wanted: int, budget: Budget,
               result: Plan) -> Condition | None:
    """Start the new release's instances this phase needs, and set aside the rest the rollout will need.

    The whole rollout must fit before it begins: a canary that could reach 10 % but never 100 %
    would only expose users to a release it cannot promote. Until it fits it waits in `starting`,
    with nothing started and a Schedulable condition naming the whole need.
    """
    release = desired.release
    peak = max(0, desired.replicas - len(new))  # new instances still to come before the new release serves all
    if budget.reserve(desired.name, peak, release.cpu, release.memory) is None:
        budget.cpu += peak * release.cpu    # the reservation was only a check: admit hands out the part due now
        budget.memory += peak * release.memory
        admit(desired, wanted - len(new), budget, result)
        budget.reserve(desired.name, peak - max(0, wanted - len(new)), release.cpu, release.memory)
        return None
    what = "its canary" if desired.strategy == "canary" else "its green side"
    shortfall = budget.reserve(desired.name, peak, release.cpu, release.memory, what)
    assert shortfall is not None
    result.conditions.append(shortfall)
    if rollout.phase != phases.STARTING:
        # Mid-rollout (the machine shrank under it): start what fits of this step's need, and hold.
        fits, _ = budget.admit(desired.name, max(0, wanted - len(new)), release.cpu, release.memory)
        result.start.extend([(desired.name, release.id)] * fits)
    return shortfall


def wait(rollout: Rollout, why: str, now: float, say: bool = False) -> Rollout:
    """Record why the rollout cannot move on ("" once it can); `say` also makes it the rollout's message."""
    if why == rollout.waiting:
        return rollout
    if not why:
        return rollout.evolve(waiting="", waiting_since=None)
    changed = rollout.evolve(waiting=why, waiting_since=rollout.waiting_since or now)
    return changed.evolve(message=why) if say else changed


def _overdue(desired: DesiredService, rollout: Rollout, updated: Rollout, now: float) -> bool:
    """Past the progress deadline: starting or promoting too long, or waiting too long at a step."""
    deadline = desired.rolling.progress_deadline
    if updated.phase in (phases.STARTING, phases.PROMOTING):
        return now - _phase_start(rollout) > deadline
    return updated.phase in phases.ANALYSIS_PHASES and updated.waiting_since is not None \
        and now - updated.waiting_since > deadline


def _keep(desired: DesiredService, primary: list[Instance], previous: Release | None, budget: Budget, now: float,
          result: Plan) -> None:
    """The previous release keeps serving at full strength (healed, and topped up after a rollback)."""
    heal_and_trim(primary, desired.replicas, now, result)
    if previous is not None:
        admit(replace(desired, release=previous), desired.replicas - len(primary), budget, result)


def _phase_start(rollout: Rollout) -> float:
    # Starting counts from the rollout's start; promoting from when the promotion began (its last update).
    return rollout.started_at if rollout.phase == phases.STARTING else rollout.updated_at
