"""From a rendered service to the engine's DesiredService: the release id and the instance environment."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.data.databases import grants
from shipyard.delivery.matching import route_matches
from shipyard.engine.model import DesiredService, Ingress, Probe, Progressive, Release, Rolling, Routing
from shipyard.errors import ShipyardError
from shipyard.secrets.release import ResolvedSecrets
from shipyard.spec.models import Probe as ProbeSpec
from shipyard.spec.models import SecretRef, Service


def dependency_env(needs: list[str], endpoints: dict[str, int]) -> dict[str, str]:
    """`<NAME>_URL` for each needed service, pointing at its stable endpoint."""
    return {f"{name.upper().replace('-', '_')}_URL": f"http://127.0.0.1:{endpoints[name]}"
            for name in needs if name in endpoints}


@dataclass(frozen=True)
class ImageRun:
    """What a pulled artifact image contributes to a release: its digest, command, env defaults, kind."""

    name: str
    digest: str
    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    rootfs: bool = False
    workdir: str = ""
    user: str = ""          # a full image's `uid:gid` (its config's User, resolved in its root); "" is root


def secret_refs(service: Service) -> dict[str, str]:
    """The service's `{secret: KEY.PATH}` env entries: variable → key path."""
    return {name: value.secret for name, value in service.env.items() if isinstance(value, SecretRef)}


def build_release(service: Service, snapshot: str, endpoints: dict[str, int], image: ImageRun | None = None,
                  secrets: ResolvedSecrets | None = None, databases_digest: str = "") -> Release:
    """The release a service's spec asks for; its id hashes everything that defines it.

    Secret values enter the id only as `secrets.digest`, a keyed hash: the store never sees them.
    """
    plain = {name: value for name, value in service.env.items() if isinstance(value, str)}
    env = {**(image.env if image else {}), **plain, **dependency_env(service.needs, endpoints)}
    command = tuple(service.artifact.command) or (image.command if image else ())
    fields: dict[str, object] = {
        "version": service.version, "snapshot": snapshot, "command": list(command),
        "env": dict(sorted(env.items())), "cpu": service.resources.cpu, "memory": service.resources.memory,
        "readiness": service.health.readiness.model_dump(), "liveness": service.health.liveness.model_dump(),
        "startup_timeout": service.health.startup_timeout,
    }
    if image:
        fields.update(digest=image.digest, rootfs=image.rootfs, workdir=image.workdir)
        if image.user:
            fields["user"] = image.user
    if secrets is not None:
        fields["secrets"] = {"refs": dict(secrets.refs), "digest": secrets.digest}
    databases = tuple((g.variable, g.database) for g in grants(service))
    if databases:
        fields["databases"] = {"urls": [list(pair) for pair in databases], "digest": databases_digest}
    phase = service.release
    if phase is not None:  # a changed migration command is a new release (its timeout alone is not)
        fields["release_command"] = phase.command
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]
    return Release(
        id=f"{service.name}-{digest}", service=service.name, version=service.version, snapshot=snapshot,
        command=command, env=tuple(sorted(env.items())), cpu=service.resources.cpu,
        memory=service.resources.memory, readiness=_probe(service.health.readiness),
        liveness=_probe(service.health.liveness), startup_timeout=service.health.startup_timeout,
        digest=image.digest if image else "", image=image.name if image else "",
        rootfs=image.rootfs if image else False, workdir=image.workdir if image else "",
        user=image.user if image else "",
        secrets=secrets.refs if secrets else (), secrets_digest=secrets.digest if secrets else "",
        release_command=tuple(phase.command) if phase else (), release_timeout=phase.timeout if phase else 0.0,
        rerun_on_rollback=phase.rerun_on_rollback if phase else False,
        databases=databases, databases_digest=databases_digest if databases else "",
    )


def desired_service(service: Service, release: Release, endpoint_port: int | None) -> DesiredService:
    rolling = service.strategy.rolling
    return DesiredService(
        name=service.name, release=release, replicas=service.replicas, strategy=service.strategy.type,
        rolling=Rolling(rolling.max_surge, rolling.max_unavailable, rolling.min_ready, rolling.progress_deadline),
        grace_period=service.stop.grace_period, endpoint_port=endpoint_port,
        progressive=_progressive(service),
        routing=Routing(service.routing.timeout, service.routing.idle_timeout, service.routing.retries),
        ingress=Ingress(service.ingress.host, service.ingress.path) if service.ingress is not None else None,
        artifact_path=service.artifact.path or "",
    )


def _progressive(service: Service) -> Progressive | None:
    strategy = service.strategy
    if strategy.type == "canary":
        canary = strategy.canary
        try:
            matches = route_matches(canary.match)
        except ValueError as exc:
            raise ShipyardError(f"service {service.name}: strategy.canary.match: {exc}") from exc
        return Progressive(steps=tuple(canary.steps), interval=canary.interval,
                           failure_threshold=canary.failure_threshold, mirror=canary.mirror,
                           pre_rollout=bool(canary.pre_rollout), pre_promotion=bool(canary.pre_promotion),
                           parallel_run=canary.parallel_run.percent if canary.parallel_run else 0.0,
                           matches=matches, analysis=tuple(canary.analysis), min_requests=canary.min_requests,
                           pre_rollout_gates=tuple(canary.pre_rollout),
                           pre_promotion_gates=tuple(canary.pre_promotion), parallel_settings=canary.parallel_run)
    if strategy.type == "blue-green":
        blue_green = strategy.blue_green
        return Progressive(pre_promotion=bool(blue_green.pre_promotion), auto_promote=blue_green.auto_promote,
                           scale_down_delay=blue_green.scale_down_delay,
                           pre_promotion_gates=tuple(blue_green.pre_promotion))
    return None


def _probe(spec: ProbeSpec) -> Probe:
    return Probe(spec.path, spec.interval, spec.timeout, spec.failure_threshold)


def snapshot_dir(state_dir: Path, snapshot: str) -> Path:
    return state_dir / "snapshots" / snapshot
