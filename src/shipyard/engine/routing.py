"""The pure mapping from desired state and instance records to the data plane Envoy should serve."""

from __future__ import annotations

from typing import Iterable

from shipyard.engine.desired import DesiredState
from shipyard.engine.model import Instance, State
from shipyard.proxy.model import Cluster, DataPlane, Endpoint, IngressRule, Route


def cluster_name(release_id: str) -> str:
    """`catalog-3f2a1b9c0d` → `catalog.3f2a1b9c0d`: one Envoy cluster per release, so stats are per release."""
    service, _, digest = release_id.rpartition("-")
    return f"{service}.{digest}"


def data_plane(desired: DesiredState, instances: Iterable[Instance], ingress_port: int,
               lingering: frozenset[str] = frozenset()) -> DataPlane:
    """Each service's listener splits traffic over its releases in proportion to their ready instances.

    A release keeps its cluster while any of its instances exists (starting ones so a route never
    names a missing cluster; stopping ones so in-flight requests finish), with only ready, non-stopping
    instances as endpoints.
    """
    by_release: dict[str, list[Instance]] = {}
    for instance in instances:
        by_release.setdefault(instance.release, []).append(instance)
    clusters = [Cluster(cluster_name(release), _ready_endpoints(group, lingering))
                for release, group in sorted(by_release.items())]
    routes: list[Route] = []
    for name in sorted(desired.services):
        service, spec = desired.services[name], desired.specs[name]
        if service.endpoint_port is None:
            continue
        weights = tuple((cluster_name(release), len(_ready_endpoints(group)))
                        for release, group in sorted(by_release.items()) if group[0].service == name)
        routes.append(Route(service=name, port=service.endpoint_port, weights=weights,
                            timeout_s=spec.routing.timeout, idle_timeout_s=spec.routing.idle_timeout,
                            retries=spec.routing.retries))
    ingress = tuple(IngressRule(name, spec.ingress.host, spec.ingress.path)
                    for name, spec in sorted(desired.specs.items()) if spec.ingress is not None)
    return DataPlane(routes=tuple(routes), clusters=tuple(clusters), ingress_port=ingress_port, ingress=ingress)


def _ready_endpoints(group: list[Instance], lingering: frozenset[str] = frozenset()) -> tuple[Endpoint, ...]:
    return tuple(sorted(Endpoint("127.0.0.1", i.port) for i in group
                        if i.state is State.READY or i.id in lingering))
