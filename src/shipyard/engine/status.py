"""The status document (`shipyard status -o json`), assembled from the reconciler's state."""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from shipyard.engine.model import Condition, State
from shipyard.proxy.model import cluster_name
from shipyard.proxy.traffic import TRAFFIC_WINDOW_S, traffic_figures
from shipyard.runtime.base import Handle

if TYPE_CHECKING:
    from shipyard.engine.reconciler import Reconciler


def status_document(reconciler: "Reconciler", api: str, source: dict[str, Any] | None) -> dict[str, Any]:
    desired = reconciler.desired
    services = []
    names = sorted(set(desired.services if desired else {}) | {i.service for i in reconciler.instances.values()})
    for name in names:
        services.append(_service(reconciler, name))
    conditions = _conditions(reconciler)
    return {
        "environment": reconciler.store.get("environment"),
        "project": reconciler.store.get("project"),
        "revision": desired.revision if desired else None,
        "api": api,
        "ingress": reconciler.router.ingress(),
        "suspended": reconciler.suspended,
        "source": source,
        "data_plane": reconciler.router.describe(),
        "ofrep": reconciler.store.get("ofrep_url"),   # feature flags, read-only (shipyard.flags.service)
        "flags": reconciler.store.get("flags") or [],
        "services": services,
        "rejected": reconciler.store.get("rejected") or [],  # versions rejected here (promotion/service.py)
        "capacity": _capacity(reconciler),
        "conditions": [_condition(c) for c in conditions],
    }


def _capacity(reconciler: "Reconciler") -> dict[str, Any]:
    """The machine as this environment schedules on it: its size, what this and the other environments hold."""
    others = reconciler.ledger.others if reconciler.ledger is not None else []
    total = reconciler.capacity
    held_cpu, held_memory = reconciler.held
    taken_cpu = held_cpu + sum(o.cpu for o in others)
    taken_memory = held_memory + sum(o.memory for o in others)
    return {"cpu": total.cpu, "memory": total.memory, "held": {"cpu": held_cpu, "memory": held_memory},
            "free": {"cpu": round(max(0.0, total.cpu - taken_cpu), 6), "memory": max(0, total.memory - taken_memory)},
            "others": [{"environment": o.environment, "state_dir": o.state_dir, "pid": o.pid, "cpu": o.cpu,
                        "memory": o.memory} for o in others]}


def _service(reconciler: "Reconciler", name: str) -> dict[str, Any]:
    desired = reconciler.desired.services.get(name) if reconciler.desired else None
    declared = reconciler.declared.services.get(name) if reconciler.declared else None
    instances = sorted((i for i in reconciler.instances.values() if i.service == name), key=lambda i: i.created_at)
    rollout = reconciler.rollouts.get(name)
    return {
        "name": name,
        "version": desired.release.version if desired else None,
        "release": desired.release.id if desired else None,
        "digest": desired.release.digest or None if desired else None,
        "artifact": _artifact(desired.release) if desired else None,
        "declared_release": declared.release.id if declared else None,
        "desired_replicas": desired.replicas if desired else 0,
        "ready_replicas": sum(i.state is State.READY for i in instances),
        "endpoint": reconciler.router.endpoint(name),
        "preview": reconciler.router.endpoint(f"{name}.preview") if rollout and rollout.progressive
        and rollout.status == "progressing" else None,
        "strategy": desired.strategy if desired else None,
        "rollout": dataclasses.asdict(rollout) if rollout else None,
        "instances": [_instance(reconciler, i) for i in instances],
        "traffic": _traffic(reconciler, name, instances),
        "release_phase": _release_phase(reconciler, declared.release if declared else None),
        "verified": reconciler.store.get(f"verification/{name}"),  # promotion/service.py keeps it
    }


def _artifact(release: Any) -> dict[str, Any]:
    """Where the release's code comes from: a built image (name, digest, kind) or a local source path."""
    if release.digest:
        return {"source": "image", "image": release.image, "digest": release.digest,
                "kind": "full" if release.rootfs else "app"}
    return {"source": "local", "snapshot": release.snapshot}


def _release_phase(reconciler: "Reconciler", release: Any) -> dict[str, Any] | None:
    """The last run of the declared release's phase: status, exit code, last output lines (no handle)."""
    if release is None or not release.release_command:
        return None
    record = reconciler.store.get(f"release_phase/{release.id}")
    return {k: v for k, v in record.items() if k != "handle"} if record else {"status": "pending"}


def _traffic(reconciler: "Reconciler", name: str, instances: list[Any]) -> dict[str, Any] | None:
    """Per release: what Envoy served over the last TRAFFIC_WINDOW_S seconds."""
    history = reconciler.router.traffic
    if history is None:
        return None
    releases = {i.release for i in instances}
    desired = reconciler.desired.services.get(name) if reconciler.desired else None
    if desired is not None:
        releases.add(desired.release.id)
    now = time.time()
    report = []
    for release_id in sorted(releases):
        window = history.window(cluster_name(release_id), now - TRAFFIC_WINDOW_S, judged=False)
        release = reconciler.store.release(release_id)
        report.append({"release": release_id, "version": release.version if release else None,
                       **traffic_figures(window)})
    return {"window_s": TRAFFIC_WINDOW_S, "releases": report}


def _instance(reconciler: "Reconciler", instance: Any) -> dict[str, Any]:
    release = reconciler.store.release(instance.release)
    isolation: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    if instance.handle is not None and instance.live:
        handle = Handle.from_dict(instance.handle)
        isolation = dataclasses.asdict(reconciler.driver.isolation(handle))
        limits = dataclasses.asdict(reconciler.driver.limits(handle))
    return {
        "id": instance.id,
        "version": release.version if release else None,
        "digest": release.digest or None if release else None,
        "release": instance.release,
        "pid": instance.pid,
        "port": instance.port,
        "state": instance.state.value,
        "restarts": instance.restarts,
        "crashes": instance.crashes,
        "exit_code": instance.exit_code,
        "oom_killed": instance.oom_killed,
        "started_at": instance.started_at,
        "ready_since": instance.ready_since,
        "next_attempt_at": instance.next_attempt_at,
        "message": instance.message,
        "isolation": isolation,
        "limits": limits,
    }


def _conditions(reconciler: "Reconciler") -> list[Condition]:
    # A Ready condition from the source (e.g. ValidationFailed) is the environment's Ready: there is one.
    source_ready = next((c for c in reconciler.source_conditions if c.type == "Ready"), None)
    # The loop's own trouble first: while passes fail, every other condition may be stale.
    reported = [c for conditions in reconciler.reported.values() for c in conditions]
    conditions = [*reconciler.loop_conditions(), *reported,
                  *(c for c in reconciler.source_conditions if c is not source_ready), *reconciler.conditions]
    problem = reconciler.router.describe().get("problem")
    if problem:
        # Envoy refused the newest configuration and keeps serving the one it accepted last.
        conditions.append(Condition("DataPlaneInSync", "False", "ConfigRejected", str(problem)))
    for rollout in reconciler.rollouts.values():
        if rollout.status == "failed":
            conditions.append(Condition("RolloutFailed", "True", rollout.reason, rollout.message, rollout.service))
    not_ready = [c for c in conditions if c.status == "False" or c.type == "RolloutFailed"]
    if source_ready is not None:
        ready = source_ready
    elif reconciler.desired is None:
        ready = Condition("Ready", "False", "NoDesiredState", "no revision applied yet")
    elif not_ready:
        ready = Condition("Ready", "False", not_ready[0].reason, not_ready[0].message)
    else:
        ready = Condition("Ready", "True", "AllServicesAvailable", "every service runs its desired instances")
    return [ready, *conditions]


def _condition(condition: Condition) -> dict[str, Any]:
    return {"type": condition.type, "status": condition.status, "reason": condition.reason,
            "message": condition.message, "object": condition.object}
