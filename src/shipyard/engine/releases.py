"""From a rendered service to the engine's DesiredService: the release id and the instance environment."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from shipyard.delivery.matching import route_matches
from shipyard.engine.model import DesiredService, Ingress, Probe, Progressive, Release, Rolling, Routing
from shipyard.errors import ShipyardError
from shipyard.spec.models import Probe as ProbeSpec
from shipyard.spec.models import Service


def dependency_env(needs: list[str], endpoints: dict[str, int]) -> dict[str, str]:
    """`<NAME>_URL` for each needed service, pointing at its stable endpoint."""
    return {f"{name.upper().replace('-', '_')}_URL": f"http://127.0.0.1:{endpoints[name]}"
            for name in needs if name in endpoints}


def build_release(service: Service, snapshot: str, endpoints: dict[str, int]) -> Release:
    """The release a service's spec asks for; its id hashes everything that defines it."""
    env = {**service.env, **dependency_env(service.needs, endpoints)}
    fields = {
        "version": service.version, "snapshot": snapshot, "command": service.artifact.command,
        "env": dict(sorted(env.items())), "cpu": service.resources.cpu, "memory": service.resources.memory,
        "readiness": service.health.readiness.model_dump(), "liveness": service.health.liveness.model_dump(),
        "startup_timeout": service.health.startup_timeout,
    }
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]
    return Release(
        id=f"{service.name}-{digest}", service=service.name, version=service.version, snapshot=snapshot,
        command=tuple(service.artifact.command), env=tuple(sorted(env.items())), cpu=service.resources.cpu,
        memory=service.resources.memory, readiness=_probe(service.health.readiness),
        liveness=_probe(service.health.liveness), startup_timeout=service.health.startup_timeout,
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
        artifact_path=service.artifact.path,
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
                           matches=matches, analysis=tuple(canary.analysis), min_requests=canary.min_requests,
                           pre_rollout_gates=tuple(canary.pre_rollout),
                           pre_promotion_gates=tuple(canary.pre_promotion))
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
