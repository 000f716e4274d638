"""Tests of the pure Route/IngressRule -> Envoy route configuration translation."""

from __future__ import annotations

import re
from typing import Any

import pytest

from shipyard.proxy import routes
from shipyard.proxy.model import Cluster, CookieMatch, DataPlane, HeaderMatch, IngressRule, Route


def entries(weights: tuple[int, int], **route: Any) -> list[dict[str, Any]]:
    split = (("catalog.r1", weights[0]), ("catalog.r2", weights[1]))
    config = routes.service_routes("svc_catalog", Route("catalog", 8001, split, **route))
    assert config["validate_clusters"] is True
    return [r for vh in config["virtual_hosts"] for r in vh["routes"]]


def test_zero_weights_are_left_out_and_a_single_cluster_is_routed_directly() -> None:
    assert all(r["route"]["cluster"] == "catalog_r1" for r in entries((100, 0)))
    assert entries((90, 10))[0]["route"]["weighted_clusters"]["clusters"] == [
        {"name": "catalog_r1", "weight": 90},
        {"name": "catalog_r2", "weight": 10},
    ]


def test_no_positive_weight_answers_503() -> None:
    found = entries((0, 0))
    assert found and all(r["direct_response"]["status"] == 503 for r in found)


def test_idempotent_methods_retry_on_reset_and_others_only_before_the_request() -> None:
    idempotent, others = entries((100, 0))
    method = idempotent["match"]["headers"][0]
    assert method["name"] == ":method"
    regex = method["string_match"]["safe_regex"]["regex"]
    assert re.fullmatch(regex, "GET") and not re.fullmatch(regex, "POST")
    policy = idempotent["route"]["retry_policy"]
    assert policy["retry_on"] == "connect-failure,refused-stream,reset"
    assert policy["retry_host_predicate"][0]["name"].endswith("previous_hosts")
    assert "headers" not in others["match"]
    retry_on = others["route"]["retry_policy"]["retry_on"]
    assert retry_on == "connect-failure,refused-stream,reset-before-request"


def test_without_retries_there_is_one_route_and_no_policy() -> None:
    found = entries((100, 0), retries=0)
    assert len(found) == 1 and "retry_policy" not in found[0]["route"]


def test_timeouts_default_to_none_for_long_requests() -> None:
    route = entries((100, 0))[0]["route"]
    assert (route["timeout"], route["idle_timeout"]) == ("0s", "300s")
    assert entries((100, 0), timeout_s=2.5)[0]["route"]["timeout"] == "2.5s"


def test_matches_route_to_the_match_cluster_before_the_split() -> None:
    matches = (HeaderMatch("X-Canary", "always"), CookieMatch("group", "b"))
    header, cookie, default = entries(
        (100, 0), match_cluster="catalog.r2", matches=matches, retries=0
    )
    assert header["match"]["headers"] == [{"name": "x-canary", "string_match": {"exact": "always"}}]
    assert header["route"]["cluster"] == cookie["route"]["cluster"] == "catalog_r2"
    regex = cookie["match"]["headers"][0]["string_match"]["safe_regex"]["regex"]
    assert re.fullmatch(regex, "a=1; group=b; c=2") and re.fullmatch(regex, "group=b")
    assert not re.fullmatch(regex, "group=bb") and not re.fullmatch(regex, "xgroup=b")
    assert default["route"]["cluster"] == "catalog_r1"


def test_header_prefix_and_regex_become_envoy_string_matchers() -> None:
    matches = (
        HeaderMatch("X-Beta", "team-", "prefix"),
        HeaderMatch("x-user", r"user-\d+", "regex"),
    )
    prefix, regex, _ = entries((100, 0), match_cluster="catalog.r2", matches=matches, retries=0)
    assert prefix["match"]["headers"] == [{"name": "x-beta", "string_match": {"prefix": "team-"}}]
    assert regex["match"]["headers"] == [
        {"name": "x-user", "string_match": {"safe_regex": {"regex": r"user-\d+"}}}
    ]
    assert prefix["route"]["cluster"] == regex["route"]["cluster"] == "catalog_r2"


def test_mirror_is_a_fraction_per_million() -> None:
    route = entries((100, 0), mirror_cluster="catalog.r2", mirror_percent=12.5)[0]["route"]
    assert route["request_mirror_policies"] == [
        {
            "cluster": "catalog_r2",
            "runtime_fraction": {"default_value": {"numerator": 125000, "denominator": "MILLION"}},
        }
    ]


def test_ingress_orders_longest_prefix_first_and_applies_wildcard_rules_to_every_host() -> None:
    services = ["a", "b", "c"]
    plane = DataPlane(
        routes=tuple(
            Route(s, 8001 + i, ((f"{s}.r1", 1),), retries=0) for i, s in enumerate(services)
        ),
        clusters=tuple(Cluster(f"{s}.r1", ()) for s in services),
        ingress_port=8000,
        ingress=(
            IngressRule("a", "Shop.test", "/api/"),
            IngressRule("b", "shop.test", None),
            IngressRule("c", None, "/static"),
        ),
    )
    config = routes.ingress_routes(plane, "ingress")
    hosts = {vh["name"]: vh for vh in config["virtual_hosts"]}
    assert hosts["shop.test"]["domains"] == ["shop.test"]
    shop = [(r["match"], r["route"]["cluster"]) for r in hosts["shop.test"]["routes"]]
    assert shop == [
        ({"path_separated_prefix": "/static"}, "c_r1"),
        ({"path_separated_prefix": "/api"}, "a_r1"),
        ({"prefix": "/"}, "b_r1"),
    ]
    assert [r["route"]["cluster"] for r in hosts["any"]["routes"]] == ["c_r1"]


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (30, "30s"), (0.25, "0.25s"), (1.5, "1.5s")])
def test_duration(seconds: float, text: str) -> None:
    assert routes.duration(seconds) == text


def test_a_parallel_run_copies_only_its_listed_methods_to_the_comparator() -> None:
    found = entries((100, 0), compare_cluster="catalog.parallel-run", compare_percent=10,
                    compare_methods=("GET", "POST"))
    copying = [e for e in found if "request_mirror_policies" in e["route"]]
    methods = [e["match"]["headers"][0]["string_match"]["safe_regex"]["regex"] for e in copying]
    assert methods == ["GET", "POST"]  # first, each with its own retry rule
    assert [e["route"]["retry_policy"]["retry_on"] for e in copying] == [
        routes.RETRY_ON_IDEMPOTENT, routes.RETRY_ON_OTHERS]
    assert copying[0]["route"]["request_mirror_policies"] == [
        {"cluster": "catalog_parallel-run",
         "runtime_fraction": {"default_value": {"numerator": 100000, "denominator": "MILLION"}}}]
    assert found[: len(copying)] == copying and len(found) == len(copying) + 2
    assert all("request_mirror_policies" not in e["route"] for e in found[len(copying):])


def test_without_listed_methods_nothing_is_copied() -> None:
    found = entries((100, 0), compare_cluster="catalog.parallel-run", compare_percent=10)
    assert len(found) == 2 and all("request_mirror_policies" not in e["route"] for e in found)
