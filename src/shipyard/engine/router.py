"""The engine's view of the data plane: publish who serves each service, and wait for an instance to drain."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Mapping, Protocol

from shipyard.engine.model import Instance, Rollout

if TYPE_CHECKING:
    from shipyard.engine.desired import DesiredState
    from shipyard.proxy.traffic import TrafficHistory


class Router(Protocol):
    """What the reconciler needs from a data plane; Envoy is one implementation, NoRouter the other."""

    traffic: "TrafficHistory | None"   # recent scrapes of per-release traffic, if the data plane counts it

    async def sync(self, desired: "DesiredState", instances: Iterable[Instance],
                   lingering: frozenset[str] = frozenset(), rollouts: Mapping[str, Rollout] | None = None,
                   previews: Mapping[str, int] | None = None) -> None:
        """Route each service to exactly its ready, non-stopping instances (split as progressive
        rollouts say, new releases also on their preview ports); return once applied."""

    async def drain(self, instance: Instance, timeout: float) -> None:
        """Return once nothing is in flight to `instance` any more (at most `timeout` seconds)."""

    def endpoint(self, service: str) -> str | None:
        """The service's stable URL, if the data plane gives it one."""

    def ingress(self) -> str | None:
        """The ingress URL, if any."""

    async def check(self) -> None:
        """Keep the data plane itself running (restart it if it died)."""

    def describe(self) -> dict[str, object]:
        """Facts for `status`: the proxy's pid, admin address, config version, problems."""

    async def shutdown(self) -> None:
        """Stop the data plane itself (`shipyard down`)."""


class NoRouter:
    """No data plane: instances are reached on their own ports, and nothing needs draining."""

    traffic = None

    async def sync(self, desired: "DesiredState", instances: Iterable[Instance],
                   lingering: frozenset[str] = frozenset(), rollouts: Mapping[str, Rollout] | None = None,
                   previews: Mapping[str, int] | None = None) -> None:
        return None

    async def drain(self, instance: Instance, timeout: float) -> None:
        return None

    def endpoint(self, service: str) -> str | None:
        return None

    def ingress(self) -> str | None:
        return None

    async def check(self) -> None:
        return None

    def describe(self) -> dict[str, object]:
        return {"proxy": None}

    async def shutdown(self) -> None:
        return None
