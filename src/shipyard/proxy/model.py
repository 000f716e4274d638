"""The desired data plane as pure values: endpoints, clusters, routes and ingress rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

# Names become parts of Envoy resource and stat names. Dots are allowed (as in "catalog.r3f2a1b9c")
# and are mapped to "_" for Envoy, so "_" itself is excluded to keep that mapping reversible.
_NAME = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)


def check_name(kind: str, name: str) -> None:
    """Raise ValueError unless `name` is a valid service or cluster name (DNS-like labels)."""
    if not _NAME.match(name) or len(name) > 120:
        raise ValueError(
            f"invalid {kind} name {name!r}: use letters, digits and '-', in labels separated by '.'"
        )


def envoy_name(name: str) -> str:
    """The Envoy name of a cluster or service: dots would be split off by Envoy's stat tags."""
    return name.replace(".", "_")


def cluster_name(release_id: str) -> str:
    """`catalog-3f2a1b9c0d` → `catalog.3f2a1b9c0d`: one Envoy cluster per release, so stats are per release."""
    service, _, digest = release_id.rpartition("-")
    return f"{service}.{digest}"


def model_name(name: str) -> str:
    """The inverse of `envoy_name` (model names never contain '_')."""
    return name.replace("_", ".")


def check_port(port: int, zero_ok: bool = False) -> None:
    """Raise ValueError unless `port` is a TCP port number."""
    if not (0 if zero_ok else 1) <= port < 65536:
        raise ValueError(f"invalid port {port}: must be 1..65535")


@dataclass(frozen=True, order=True)
class Endpoint:
    """One ready instance. `host` must be an IP address: Envoy does not resolve names for EDS."""

    host: str
    port: int

    def __post_init__(self) -> None:
        check_port(self.port)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Cluster:
    """The ready instances of one (service, release).

    `idle_timeout_s` closes pooled upstream connections idle that long; it must be shorter than
    the backends' keep-alive timeout, or a request can race the backend closing the connection.
    """

    name: str
    endpoints: tuple[Endpoint, ...]
    idle_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        check_name("cluster", self.name)
        if self.idle_timeout_s <= 0:
            raise ValueError(f"cluster {self.name}: idle_timeout_s must be > 0")


HeaderMatchKind = Literal["exact", "prefix", "regex"]
HEADER_MATCH_KINDS: tuple[HeaderMatchKind, ...] = get_args(HeaderMatchKind)

# An HTTP header name (RFC 9110 token), or a pseudo-header such as ":authority".
_HEADER_NAME = re.compile(r"^:?[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Python's re accepts these but Envoy's RE2 rejects them, which would fail a whole publish.
_NOT_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]|\(\?P=")


@dataclass(frozen=True)
class HeaderMatch:
    """Requests whose header `name` equals `value` (`exact`), starts with it (`prefix`), or
    matches it as a whole (`regex`, RE2 syntax: Envoy anchors it at both ends)."""

    name: str
    value: str
    kind: HeaderMatchKind = "exact"

    def __post_init__(self) -> None:
        if not _HEADER_NAME.match(self.name):
            raise ValueError(f"header match: invalid header name {self.name!r}")
        if self.kind not in HEADER_MATCH_KINDS:
            raise ValueError(f"header match {self.name}: unknown kind {self.kind!r}; "
                             f"expected one of {HEADER_MATCH_KINDS}")
        if self.kind != "exact" and not self.value:
            raise ValueError(f"header match {self.name}: an empty {self.kind} matches nothing "
                             "useful; use an exact match or a non-empty value")
        if self.kind == "regex":
            _check_regex(self.name, self.value)


def _check_regex(name: str, regex: str) -> None:
    """Raise ValueError for a regex that cannot compile, or uses what RE2 lacks.

    Python's re is only a sanity check (RE2 is mostly a subset of it): Envoy has the last word
    when the configuration is published.
    """
    try:
        re.compile(regex)
    except re.error as exc:
        raise ValueError(f"header match {name}: regex {regex!r} does not compile: {exc}") from exc
    if _NOT_RE2.search(regex):
        raise ValueError(f"header match {name}: regex {regex!r} uses a lookaround or "
                         "backreference, which Envoy's RE2 engine does not support")


@dataclass(frozen=True)
class CookieMatch:
    """Requests carrying cookie `name` with exactly `value`."""

    name: str
    value: str


Match = HeaderMatch | CookieMatch


@dataclass(frozen=True)
class Route:
    """A service's stable endpoint: a listener on 127.0.0.1:`port` and how it splits traffic.

    `weights` pairs cluster names with relative weights; no positive weight means every request
    gets 503 "no healthy upstream". Requests matching any of `matches` go to `match_cluster`.
    `mirror_percent` (0..100) of requests are shadowed to `mirror_cluster`. `timeout_s` = 0
    disables the route timeout (long requests, websockets); `idle_timeout_s` bounds a stream
    with no activity. `retries` applies to failures where retrying is safe (see resources).
    """

    service: str
    port: int
    weights: tuple[tuple[str, int], ...]
    match_cluster: str | None = None
    matches: tuple[Match, ...] = ()
    mirror_cluster: str | None = None
    mirror_percent: float = 0
    timeout_s: float = 0
    idle_timeout_s: float = 300
    retries: int = 2
    # A parallel run: `compare_percent` of requests of `compare_methods` copied to the comparator's cluster.
    compare_cluster: str | None = None
    compare_percent: float = 0
    compare_methods: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_name("service", self.service)
        if not 0 <= self.compare_percent <= 100:
            raise ValueError(f"route {self.service}: compare_percent must be within 0..100")
        check_port(self.port)
        if any(w < 0 for _, w in self.weights):
            raise ValueError(f"route {self.service}: weights must be >= 0")
        if not 0 <= self.mirror_percent <= 100:
            raise ValueError(f"route {self.service}: mirror_percent must be within 0..100")
        if self.timeout_s < 0 or self.idle_timeout_s < 0 or self.retries < 0:
            raise ValueError(f"route {self.service}: timeouts and retries must be >= 0")
        if self.matches and self.match_cluster is None:
            raise ValueError(f"route {self.service}: matches given without match_cluster")

    def clusters(self) -> frozenset[str]:
        """Every cluster this route can send a request to."""
        names = {name for name, _ in self.weights}
        names.update(c for c in (self.match_cluster, self.mirror_cluster, self.compare_cluster) if c is not None)
        return frozenset(names)


@dataclass(frozen=True)
class IngressRule:
    """Send requests for `host` (any if None) under `path_prefix` (all if None) to `service`."""

    service: str
    host: str | None = None
    path_prefix: str | None = None

    def __post_init__(self) -> None:
        if self.path_prefix is not None and not self.path_prefix.startswith("/"):
            raise ValueError(f"ingress rule for {self.service}: path_prefix must start with '/'")


@dataclass(frozen=True)
class DataPlane:
    """The whole desired data plane, built by the engine and handed to `publish`.

    A cluster must stay in `clusters` while anything is in flight to it: the engine removes it
    only after `wait_drained` (publish drops clusters that are no longer listed at once).
    """

    routes: tuple[Route, ...]
    clusters: tuple[Cluster, ...]
    ingress_port: int
    ingress: tuple[IngressRule, ...] = ()
    preview_routes: tuple[Route, ...] = ()
    # 0 = no ingress listener. The ingress binds 127.0.0.1 unless told to face the network.
    ingress_address: str = "127.0.0.1"

    def __post_init__(self) -> None:
        check_port(self.ingress_port, zero_ok=True)
        for problem in _problems(self):
            raise ValueError(f"invalid data plane: {problem}")


def _problems(plane: DataPlane) -> list[str]:
    """Every inconsistency between the parts of `plane`, as messages."""
    problems: list[str] = []
    clusters = [c.name for c in plane.clusters]
    if len(set(clusters)) != len(clusters):
        problems.append(f"cluster names repeat: {sorted(clusters)}")
    ports = [r.port for r in plane.routes + plane.preview_routes]
    ports += [plane.ingress_port] if plane.ingress_port else []
    if len(set(ports)) != len(ports):
        problems.append(f"two listeners share a port: {sorted(ports)}")
    for kind, routes in (("route", plane.routes), ("preview route", plane.preview_routes)):
        services = [r.service for r in routes]
        if len(set(services)) != len(services):
            problems.append(f"a service has two {kind}s: {sorted(services)}")
        for route in routes:
            missing = sorted(route.clusters() - set(clusters))
            if missing:
                problems.append(f"{kind} {route.service} uses unknown clusters {missing}")
    routed = {r.service for r in plane.routes}
    for rule in plane.ingress:
        if rule.service not in routed:
            problems.append(f"ingress rule for unknown service {rule.service}")
    return problems
