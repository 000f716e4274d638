"""Turning a rendered environment into the engine's desired services: endpoints, snapshots, releases."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shipyard.engine.model import DesiredService
from shipyard.engine.releases import build_release, desired_service
from shipyard.engine.snapshot import ensure_snapshot, tree_hash
from shipyard.proxy.ports import free_port
from shipyard.spec.render import DesiredEnvironment
from shipyard.state.store import Store


@dataclass(frozen=True)
class DesiredState:
    environment: str
    project: str
    revision: str
    services: dict[str, DesiredService]   # the engine's own model: no raw spec models beyond this point


def assign_endpoints(rendered: DesiredEnvironment, store: Store, reserved: set[int]) -> dict[str, int]:
    """Every service's stable port: the declared one, else the one assigned before, else a new free one."""
    known = store.endpoints()
    result: dict[str, int] = {}
    declared = {name: s.endpoint.port for name, s in rendered.services.items() if s.endpoint.port is not None}
    taken = set(declared.values()) | reserved
    for name in sorted(rendered.services):
        port = declared.get(name)
        if port is None:
            port = known.get(name)
            if port is None or port in taken:
                port = free_port_except(taken)
        taken.add(port)
        result[name] = port
    for name in set(known) - set(result):
        store.forget_endpoint(name)
    for name, port in result.items():
        if known.get(name) != port:
            store.set_endpoint(name, port)
    return result


def free_port_except(taken: set[int]) -> int:
    """A free loopback port that is none of `taken` (ports promised to endpoints or instances)."""
    while True:
        port = free_port()
        if port not in taken:
            return port


def build_desired(rendered: DesiredEnvironment, store: Store, state_dir: Path, revision: str,
                  endpoints: dict[str, int]) -> DesiredState:
    """Snapshot each artifact, record each release, and describe what should run."""
    services = {}
    for name, service in sorted(rendered.services.items()):
        source = rendered.root / service.artifact.path
        snapshot = tree_hash(source)
        ensure_snapshot(source, state_dir / "snapshots", snapshot)
        release = build_release(service, snapshot, endpoints)
        store.save_release(release)
        services[name] = desired_service(service, release, endpoints.get(name))
    return DesiredState(rendered.environment, rendered.project, revision, services)
