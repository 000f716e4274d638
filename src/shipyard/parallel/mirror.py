"""Where a parallel run happens, purely: which canaries compare, against which instances, and the data plane
that copies their live requests to the comparator (an Envoy request mirror: the user gets the live answer
and never waits for the copy, whose answer Envoy discards).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.delivery import phases
from shipyard.delivery.evaluate import Evaluation
from shipyard.delivery.judge import Decision, combine
from shipyard.engine.model import Instance, Rollout, State
from shipyard.parallel.compare import Settings
from shipyard.proxy.model import Cluster, DataPlane, Endpoint, check_name
from shipyard.spec.models import ParallelRun

# Phases where the candidate has ready instances and the analysis runs: the copies flow.
COMPARING_PHASES = (phases.MIRROR, phases.STEP, phases.PRE_PROMOTION)


@dataclass(frozen=True)
class Targets:
    """The three addresses each copy goes to: two live instances (one twice if it is alone) and the candidate."""

    primary: str
    secondary: str
    candidate: str


def settings(spec: ParallelRun) -> Settings:
    return Settings(percent=spec.percent, methods=tuple(spec.methods), ignore_headers=tuple(spec.ignore.headers),
                    ignore_json=tuple(spec.ignore.json_), max_differences=spec.max_differences)


def comparing(rollout: Rollout, spec: ParallelRun | None) -> bool:
    """Whether ROLLOUT is a canary that compares its candidate now."""
    return (spec is not None and rollout.progressive and rollout.strategy == "canary"
            and rollout.status == "progressing" and rollout.phase in COMPARING_PHASES and bool(rollout.previous))


def targets(rollout: Rollout, instances: Iterable[Instance]) -> Targets | None:
    """Two ready instances of the live release and one of the candidate; None while either has none."""
    ready = sorted((i for i in instances if i.state is State.READY), key=lambda i: i.id)
    live = [i for i in ready if i.release == rollout.previous]
    new = [i for i in ready if i.release == rollout.target]
    if not live or not new:
        return None
    return Targets(_url(live[0]), _url(live[1 % len(live)]), _url(new[0]))


def comparator_cluster(service: str) -> str:
    """The Envoy cluster of a service's comparator (release clusters are `service.<digest>`)."""
    name = f"{service}.parallel-run"
    check_name("cluster", name)
    return name


def with_comparators(plane: DataPlane, comparators: Mapping[str, tuple[int, Settings]]) -> DataPlane:
    """PLANE with, for each service → (comparator port, settings), a cluster for the comparator and the
    service's route copying `percent` % of the listed methods' requests to it."""
    if not comparators:
        return plane
    routes, clusters = [], list(plane.clusters)
    for route in plane.routes:
        if route.service in comparators:
            port, run = comparators[route.service]
            cluster = comparator_cluster(route.service)
            # Idle connections closed well before uvicorn's 5 s keep-alive ends them (a copy must not race it).
            clusters.append(Cluster(cluster, (Endpoint("127.0.0.1", port),), idle_timeout_s=2.0))
            route = dataclasses.replace(route, compare_cluster=cluster, compare_percent=run.percent,
                                        compare_methods=run.methods)
        routes.append(route)
    return dataclasses.replace(plane, routes=tuple(routes), clusters=tuple(clusters))


def decision(summary: Mapping[str, Any], run: Settings, min_requests: int) -> Decision:
    """The parallel run as an analysis check: fails when unexplained differences exceed `maxDifferences`,
    holds while fewer than MIN_REQUESTS copies were compared, passes otherwise (and always without a max)."""
    differences = list(summary.get("differences", []))
    unexplained = sum(int(d["count"]) for d in differences)
    compared = int(summary.get("compared", 0))
    named = ", ".join(f"{d['route']} {d['field']} ({d['count']})" for d in differences) or "none"
    noise = sorted({f for fields in summary.get("noise", {}).values() for f in fields})
    limit = run.max_differences
    reason = (f"parallel run: {unexplained} unexplained difference(s) in {compared} compared request(s)"
              + (f" (max {limit})" if limit is not None else "") + f": {named}; noise cancelled: "
              + (", ".join(noise) or "none"))
    inputs = {"compared": compared, "unexplained": unexplained, "max_differences": limit,
              "differences": [{k: d[k] for k in ("route", "field", "count")} for d in differences],
              "noise": noise, "failed": int(summary.get("failed", 0))}
    label = f"parallelRun maxDifferences {limit if limit is not None else 'unset'}"
    if limit is not None and unexplained > limit:
        return Decision(label, "fail", reason, inputs)
    if compared < min_requests:
        return Decision(label, "inconclusive", f"{reason}; fewer than minRequests {min_requests}: holding", inputs)
    return Decision(label, "pass", reason, inputs)


def joined(decisions: tuple[Decision, ...]) -> Evaluation:
    """An interval's evaluation from its decisions (the parallel run's among them)."""
    verdict = combine(decisions)
    return Evaluation(verdict, decisions, f"{verdict}: " + "; ".join(d.reason for d in decisions))


def _url(instance: Instance) -> str:
    return f"http://127.0.0.1:{instance.port}"
