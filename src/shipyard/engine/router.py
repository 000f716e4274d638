"""The engine's view of the data plane: publish who serves each service, and wait for an instance to drain.

Like Flagger's router, the data plane is told a finished picture (`proxy.model.DataPlane`, computed
by `engine.routing`) and never reads the engine's records itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from shipyard.proxy.model import DataPlane, Endpoint

if TYPE_CHECKING:
    from shipyard.proxy.traffic import TrafficHistory


class Router(Protocol):
    """What the reconciler needs from a data plane; Envoy is one implementation, NoRouter the other."""

    traffic: "TrafficHistory | None"   # recent scrapes of per-release traffic, if the data plane counts it
    ingress_port: int                  # where the ingress listens (0: none)

    async def sync(self, plane: DataPlane) -> None:
        """Serve exactly `plane` (listeners, weighted routes, clusters); return once applied."""

    async def drain(self, cluster: str, endpoint: Endpoint, timeout: float) -> None:
        """Return once nothing is in flight to `endpoint` of `cluster` any more (at most `timeout` seconds)."""

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
    ingress_port = 0

    async def sync(self, plane: DataPlane) -> None:
        return None

    async def drain(self, cluster: str, endpoint: Endpoint, timeout: float) -> None:
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
