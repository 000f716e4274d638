"""The pure mapping from desired state and instance records to the data plane Envoy should serve."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from shipyard.engine.desired import DesiredState
from shipyard.delivery import phases
from shipyard.engine.model import DesiredService, Instance, Rollout, State
from shipyard.proxy.model import Cluster, DataPlane, Endpoint, IngressRule, Route, cluster_name


def data_plane(desired: DesiredState, instances: Iterable[Instance], ingress_port: int,
               lingering: frozenset[str] = frozenset(), rollouts: Mapping[str, Rollout] | None = None,
               previews: Mapping[str, int] | None = None) -> DataPlane:
    """Each service's listener splits traffic over its releases in proportion to their ready instances,
    unless a canary or blue-green rollout decides the split (see `split`).

    A release keeps its cluster while any of its instances exists (starting ones so a route never
    names a missing cluster; stopping ones so in-flight requests finish), with only ready, non-stopping
    instances as endpoints. A progressive rollout's new release is also reachable on the service's
    preview port, whatever its share of the main traffic.
    """
    rollouts, previews = rollouts or {}, previews or {}
    by_release: dict[str, list[Instance]] = {}
    for instance in instances:
        by_release.setdefault(instance.release, []).append(instance)
    clusters = [Cluster(cluster_name(release), _ready_endpoints(group, lingering))
                for release, group in sorted(by_release.items())]
    routes: list[Route] = []
    for name in sorted(desired.services):
        service = desired.services[name]
        if service.endpoint_port is None:
            continue
        ready = {release: len(_ready_endpoints(group)) for release, group in sorted(by_release.items())
                 if group[0].service == name}
        timeouts = {"timeout_s": service.routing.timeout, "idle_timeout_s": service.routing.idle_timeout,
                    "retries": service.routing.retries}
        routes.append(Route(service=name, port=service.endpoint_port,
                            **split(service, rollouts.get(name), ready), **timeouts))
        rollout = rollouts.get(name)
        if name in previews and rollout is not None and rollout.progressive and rollout.target in by_release:
            routes.append(Route(service=f"{name}.preview", port=previews[name],
                                weights=((cluster_name(rollout.target), 1),), **timeouts))
    ingress = tuple(IngressRule(name, service.ingress.host, service.ingress.path)
                    for name, service in sorted(desired.services.items()) if service.ingress is not None)
    return DataPlane(routes=tuple(routes), clusters=tuple(clusters), ingress_port=ingress_port, ingress=ingress)


def split(service: DesiredService, rollout: Rollout | None, ready: Mapping[str, int]) -> dict[str, Any]:
    """Weights (and A/B matches and mirroring) of one service's route.

    Outside a progressive rollout, or when neither of its releases has a ready instance, each
    release weighs its ready instances. A canary gets `rollout.weight` percent while it has a ready
    instance; blue-green sends everything to one side; a rolled-back rollout sends everything to
    the previous release at once. Only releases in `ready` (those with instances, hence a cluster)
    are ever named, whatever the rollout record says.
    """
    by_count = {"weights": tuple((cluster_name(r), n) for r, n in ready.items())}
    if rollout is None or not rollout.progressive or rollout.target != service.release.id:
        return by_count
    new, old = rollout.target, rollout.previous or ""
    new_ready, old_ready = ready.get(new, 0) > 0, ready.get(old, 0) > 0
    if not (new_ready or old_ready):
        return by_count
    if rollout.status == "failed" or not new_ready:
        return {"weights": ((cluster_name(old), 1),)} if old_ready else by_count
    if service.strategy == "blue-green":
        switched = rollout.phase == phases.SWITCHED or not old_ready
        return {"weights": ((cluster_name(new if switched else old), 1),)}
    weight = rollout.weight if old_ready else 100
    # The previous release is named only while the picture still has its cluster: once a promoted
    # canary's primary is gone, a zero weight on it would name a cluster that no longer exists.
    shares = ((old, 100 - weight), (new, weight))
    result: dict[str, Any] = {"weights": tuple((cluster_name(r), w) for r, w in shares if r in ready)}
    canary = service.progressive
    if canary is None:
        return result
    if canary.matches and rollout.phase not in (phases.STARTING, phases.PRE_ROLLOUT):
        result.update(match_cluster=cluster_name(new), matches=canary.matches)
    if rollout.phase == phases.MIRROR and canary.mirror > 0:
        result.update(mirror_cluster=cluster_name(new), mirror_percent=canary.mirror)
    return result


def _ready_endpoints(group: list[Instance], lingering: frozenset[str] = frozenset()) -> tuple[Endpoint, ...]:
    return tuple(sorted(Endpoint("127.0.0.1", i.port) for i in group
                        if i.state is State.READY or i.id in lingering))
