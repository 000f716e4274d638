"""Pure translation of routes and ingress rules into Envoy route configurations (RDS)."""

from __future__ import annotations

from typing import Any

from shipyard.proxy.model import (
    CookieMatch,
    DataPlane,
    HeaderMatch,
    IngressRule,
    Match,
    Route,
    envoy_name,
)

Json = dict[str, Any]

_ROUTES = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
_PREVIOUS_HOSTS = (
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
)

# Methods whose requests may be replayed after a reset: the backend may already have processed
# them, so only these get `reset`; every other method only retries when nothing was sent.
IDEMPOTENT_METHODS = "GET|HEAD|OPTIONS|TRACE|PUT|DELETE"
RETRY_ON_IDEMPOTENT = "connect-failure,refused-stream,reset"
RETRY_ON_OTHERS = "connect-failure,refused-stream,reset-before-request"
NO_UPSTREAM_BODY = "no healthy upstream"


def duration(seconds: float) -> str:
    """A protobuf Duration in JSON form ("1.5s")."""
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{text}s"


def service_routes(name: str, route: Route) -> Json:
    """The route configuration of a service endpoint (listener `name`)."""
    return {
        "@type": _ROUTES,
        "name": name,
        # A route naming a cluster Envoy does not have is rejected instead of answering 503.
        "validate_clusters": True,
        "virtual_hosts": [
            {
                "name": envoy_name(route.service),
                "domains": ["*"],
                "routes": route_entries(route, None),
            }
        ],
    }


def ingress_routes(plane: DataPlane, name: str) -> Json:
    """The ingress route configuration: a virtual host per host named by a rule, plus any host."""
    by_service = {r.service: r for r in plane.routes}
    hosts = sorted({r.host.lower() for r in plane.ingress if r.host is not None})
    # Rules without a host apply to every host, so each host also gets them as fallbacks.
    virtual_hosts = [
        _ingress_host(
            h, [h], [r for r in plane.ingress if r.host is None or r.host.lower() == h], by_service
        )
        for h in hosts
    ]
    any_host = [r for r in plane.ingress if r.host is None]
    virtual_hosts.append(_ingress_host("any", ["*"], any_host, by_service))
    return {
        "@type": _ROUTES,
        "name": name,
        "validate_clusters": True,
        "virtual_hosts": virtual_hosts,
    }


def _ingress_host(
    name: str, domains: list[str], rules: list[IngressRule], by_service: dict[str, Route]
) -> Json:
    def order(rule: IngressRule) -> tuple[int, int, str]:
        # Longest prefix first; at equal length a rule naming the host beats a wildcard one.
        prefix = _prefix(rule.path_prefix)
        return (-len(prefix), rule.host is None, rule.service)

    routes: list[Json] = []
    for rule in sorted(rules, key=order):
        routes += route_entries(by_service[rule.service], rule.path_prefix)
    return {"name": name, "domains": domains, "routes": routes}


def _prefix(path_prefix: str | None) -> str:
    return (path_prefix or "/").rstrip("/")


def route_entries(route: Route, path_prefix: str | None) -> list[Json]:
    """The Envoy routes of one service: A/B matches first, then the weighted split.

    With retries, idempotent methods get their own copy retrying on `reset`; the rest retry only
    when the request never reached a backend (`reset-before-request`).
    """
    classes: list[tuple[str | None, str, bool]] = [(None, RETRY_ON_OTHERS, False)]
    if route.retries:
        classes.insert(0, (IDEMPOTENT_METHODS, RETRY_ON_IDEMPOTENT, False))
    classes[:0] = _compared_classes(route)
    entries: list[Json] = []
    for methods, retry_on, compared in classes:
        for m in route.matches:
            assert route.match_cluster is not None  # checked by Route
            action = _action(route, ((route.match_cluster, 1),), retry_on, compared)
            entries.append({"match": _match(path_prefix, methods, m), **action})
        entries.append(
            {"match": _match(path_prefix, methods, None), **_action(route, route.weights, retry_on, compared)}
        )
    return entries


def _compared_classes(route: Route) -> list[tuple[str | None, str, bool]]:
    """A parallel run's methods first, with the copy to the comparator: only the listed methods are
    ever copied (a non-idempotent one only when listed), each keeping its own retry rule."""
    if route.compare_cluster is None or route.compare_percent <= 0 or not route.compare_methods:
        return []
    idempotent = set(IDEMPOTENT_METHODS.split("|"))
    methods = sorted({m.upper() for m in route.compare_methods})
    safe, others = [m for m in methods if m in idempotent], [m for m in methods if m not in idempotent]
    classes: list[tuple[str | None, str, bool]] = []
    if safe:
        classes.append(("|".join(safe), RETRY_ON_IDEMPOTENT if route.retries else RETRY_ON_OTHERS, True))
    if others:
        classes.append(("|".join(others), RETRY_ON_OTHERS, True))
    return classes


def _match(path_prefix: str | None, methods: str | None, match: Match | None) -> Json:
    prefix = _prefix(path_prefix)
    # path_separated_prefix: "/api" matches "/api" and "/api/x" but not "/apix".
    result: Json = {"path_separated_prefix": prefix} if prefix else {"prefix": "/"}
    headers: list[Json] = []
    if methods is not None:
        headers.append({"name": ":method", "string_match": {"safe_regex": {"regex": methods}}})
    if isinstance(match, HeaderMatch):
        headers.append({"name": match.name.lower(), "string_match": _string_match(match)})
    elif isinstance(match, CookieMatch):
        cookie = f"{_re2_escape(match.name)}={_re2_escape(match.value)}"
        regex = rf"(.*;\s*)?{cookie}(\s*;.*)?"
        headers.append({"name": "cookie", "string_match": {"safe_regex": {"regex": regex}}})
    if headers:
        result["headers"] = headers
    return result


def _string_match(match: HeaderMatch) -> Json:
    """Envoy's StringMatcher for a header match; `safe_regex` must match the whole value."""
    if match.kind == "regex":
        return {"safe_regex": {"regex": match.value}}
    return {match.kind: match.value}


def _re2_escape(text: str) -> str:
    return "".join(c if c.isalnum() else "\\" + c for c in text)


def _action(route: Route, weights: tuple[tuple[str, int], ...], retry_on: str, compared: bool = False) -> Json:
    totals: dict[str, int] = {}
    for cluster, weight in weights:
        if weight > 0:
            totals[cluster] = totals.get(cluster, 0) + weight
    if not totals:
        return {"direct_response": {"status": 503, "body": {"inline_string": NO_UPSTREAM_BODY}}}
    action: Json = {
        "timeout": duration(route.timeout_s),
        "idle_timeout": duration(route.idle_timeout_s),
    }
    if len(totals) == 1:
        action["cluster"] = envoy_name(next(iter(totals)))
    else:
        action["weighted_clusters"] = {
            "clusters": [{"name": envoy_name(c), "weight": w} for c, w in sorted(totals.items())]
        }
    if route.retries:
        action["retry_policy"] = _retry_policy(route.retries, retry_on)
    mirrors = []
    if route.mirror_cluster is not None and route.mirror_percent > 0:
        mirrors.append(_mirror(route.mirror_cluster, route.mirror_percent))
    if compared and route.compare_cluster is not None:
        mirrors.append(_mirror(route.compare_cluster, route.compare_percent))
    if mirrors:
        action["request_mirror_policies"] = mirrors
    return {"route": action}


def _mirror(cluster: str, percent: float) -> Json:
    """A copy of `percent` % of requests to `cluster`: Envoy discards its answer, the user never waits for it."""
    return {
        "cluster": envoy_name(cluster),
        "runtime_fraction": {
            "default_value": {"numerator": round(percent * 10_000), "denominator": "MILLION"}
        },
    }


def _retry_policy(retries: int, retry_on: str) -> Json:
    return {
        "retry_on": retry_on,
        "num_retries": retries,
        # Retry on another instance than the one that just failed.
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {"@type": _PREVIOUS_HOSTS},
            }
        ],
        "host_selection_retry_max_attempts": 3,
        "retry_back_off": {"base_interval": "0.01s", "max_interval": "0.1s"},
    }
