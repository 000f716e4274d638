"""Turning a rendered environment into the engine's desired services: endpoints, snapshots, releases."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.artifacts.stores import ArtifactStore, open_store, store_location
from shipyard.engine.images import collect_garbage, pinned_digest, prepare_image
from shipyard.data.databases import provide
from shipyard.data.errors import DatabaseError
from shipyard.engine.model import DesiredService
from shipyard.engine.releases import build_release, desired_service, secret_refs
from shipyard.errors import Problem, SpecError
from shipyard.secrets.errors import SecretsError
from shipyard.secrets.release import SecretResolver
from shipyard.engine.snapshot import ensure_snapshot, tree_hash
from shipyard.proxy.ports import free_port
from shipyard.spec.models import Service
from shipyard.spec.render import DesiredEnvironment
from shipyard.state.store import Store

if TYPE_CHECKING:
    from shipyard.flags.evaluate import FlagSet


@dataclass(frozen=True)
class DesiredState:
    environment: str
    project: str
    revision: str
    services: dict[str, DesiredService]
    specs: dict[str, Service]
    flags: "FlagSet | None" = None  # served over OFREP; not part of any release, so changing them restarts nothing
    ofrep_url: str | None = None     # given to every instance as $SHIPYARD_OFREP_URL


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
    artifacts: ArtifactStore | None = None
    resolver = SecretResolver(rendered.root, rendered.environment, state_dir)
    try:
        credentials = provide(state_dir, rendered.services)  # the environment's PostgreSQL, roles and databases
    except DatabaseError as exc:  # the revision cannot run here: reject it with the reason, change nothing
        raise SpecError([Problem("services", 1, 1, "databases", str(exc))]) from None
    for name, service in sorted(rendered.services.items()):
        image = None
        if service.artifact.image is not None:
            artifacts = artifacts or open_store(store_location(None, rendered.store, rendered.root))
            resolved = rendered.digests.get(name) or artifacts.resolve(service.artifact.image, service.version)
            digest = pinned_digest(store, artifacts.location, service.artifact.image, service.version, resolved)
            snapshot, image = prepare_image(artifacts, service.artifact.image, digest, state_dir)
        else:
            source = rendered.root / (service.artifact.path or ".")
            snapshot = tree_hash(source)
            ensure_snapshot(source, state_dir / "snapshots", snapshot)
        try:
            secrets = resolver.resolve(secret_refs(service))
        except SecretsError as exc:  # a tampered file or a missing key rejects the revision like invalid YAML
            relative = f"secrets/{rendered.environment}.yaml"
            message = str(exc).removeprefix(f"{relative}: ")
            raise SpecError([Problem(relative, 1, 1, "", message)]) from None
        release = build_release(service, snapshot, endpoints, image, secrets, credentials.get(name, ""))
        if secrets is not None:
            resolver.save(release.id, secrets, datetime.datetime.now(datetime.timezone.utc))
        store.save_release(release)
        services[name] = desired_service(service, release, endpoints.get(name))
    if artifacts is not None or (state_dir / "artifacts").is_dir():
        collect_garbage(store, state_dir, [s.release for s in services.values()])
    return DesiredState(rendered.environment, rendered.project, revision, services, dict(rendered.services),
                        rendered.flags)
