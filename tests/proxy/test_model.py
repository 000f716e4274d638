"""Tests of the data plane model's validation."""

from __future__ import annotations

import pytest

from shipyard.proxy.model import Cluster, DataPlane, Endpoint, HeaderMatch, IngressRule, Route


def plane(**changes: object) -> DataPlane:
    fields: dict[str, object] = {
        "routes": (Route("catalog", 8001, (("catalog.r1", 100),)),),
        "clusters": (Cluster("catalog.r1", (Endpoint("127.0.0.1", 9001),)),),
        "ingress_port": 8000,
        "ingress": (IngressRule("catalog", "shop.test", "/catalog"),),
    }
    fields.update(changes)
    return DataPlane(**fields)  # type: ignore[arg-type]


def test_a_consistent_plane_is_accepted() -> None:
    assert plane().routes[0].clusters() == {"catalog.r1"}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"routes": (Route("catalog", 8001, (("catalog.r2", 1),)),)}, "unknown clusters"),
        ({"ingress": (IngressRule("orders"),)}, "unknown service orders"),
        ({"ingress_port": 8001}, "share a port"),
        (
            {"clusters": (Cluster("catalog.r1", ()), Cluster("catalog.r1", ()))},
            "cluster names repeat",
        ),
        (
            {"preview_routes": (Route("catalog", 8002, (("nope", 1),)),)},
            "preview route catalog uses unknown",
        ),
    ],
)
def test_inconsistent_planes_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plane(**changes)


@pytest.mark.parametrize("name", ["catalog_r1", "catalog..r1", "-catalog", "catalog.", "", "a b"])
def test_names_that_envoy_stats_would_mangle_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="invalid cluster name"):
        Cluster(name, ())


@pytest.mark.parametrize(
    "route",
    [
        lambda: Route("catalog", 0, ()),
        lambda: Route("catalog", 8001, (("a", -1),)),
        lambda: Route("catalog", 8001, (), mirror_percent=101),
        lambda: Route("catalog", 8001, (), matches=(HeaderMatch("x-canary", "1"),)),
        lambda: Route("catalog", 8001, (), retries=-1),
    ],
)
def test_invalid_routes_are_refused(route: object) -> None:
    with pytest.raises(ValueError):
        route()  # type: ignore[operator]


def test_ingress_path_prefix_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="must start with '/'"):
        IngressRule("catalog", None, "catalog")


@pytest.mark.parametrize(
    "args, message",
    [
        (("x a", "1"), "invalid header name 'x a'"),
        (("x-a", "1", "suffix"), "unknown kind 'suffix'"),
        (("x-a", "", "prefix"), "an empty prefix matches nothing useful"),
        (("x-a", "(unclosed", "regex"), r"regex '\(unclosed' does not compile"),
        (("x-a", r"(?!beta).*", "regex"), "lookaround or backreference"),
        (("x-a", r"(a)\1", "regex"), "lookaround or backreference"),
    ],
)
def test_header_matches_envoy_would_reject_are_refused(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HeaderMatch(*args)  # type: ignore[arg-type]


def test_header_matches_default_to_exact_and_accept_pseudo_headers() -> None:
    assert HeaderMatch("x-canary", "").kind == "exact"
    assert HeaderMatch(":authority", "shop.", "prefix").value == "shop."
