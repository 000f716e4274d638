"""Tests of the pure DataPlane -> Envoy files translation: files, versions, names, clusters,
listeners, bootstrap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.proxy import resources
from shipyard.proxy.model import Cluster, DataPlane, Endpoint, IngressRule, Route, model_name

CONFIG = Path("/srv/proxy")


def two_releases(weights: tuple[int, int], **route: Any) -> DataPlane:
    split = (("catalog.r1", weights[0]), ("catalog.r2", weights[1]))
    return DataPlane(
        routes=(Route("catalog", 8001, split, **route),),
        clusters=(
            Cluster("catalog.r1", (Endpoint("127.0.0.1", 9002), Endpoint("127.0.0.1", 9001))),
            Cluster("catalog.r2", (Endpoint("127.0.0.1", 9003),)),
        ),
        ingress_port=8000,
        ingress=(IngressRule("catalog", None, "/catalog"),),
    )


def test_output_is_deterministic_and_versioned_by_content() -> None:
    a = resources.render(two_releases((100, 0)), CONFIG)
    b = resources.render(two_releases((100, 0)), CONFIG)
    assert [resources.serialize(f) for f in a.values()] == [
        resources.serialize(f) for f in b.values()
    ]
    assert sorted(a) == [
        "cds/clusters.json",
        "lds/listeners.json",
        "rds/ingress.json",
        "rds/svc_catalog.json",
    ]
    c = resources.render(two_releases((0, 100)), CONFIG)
    # A weight change touches only the route files: listeners and clusters keep their version.
    changed = sorted(p for p in a if a[p]["version_info"] != c[p]["version_info"])
    assert changed == ["rds/ingress.json", "rds/svc_catalog.json"]


def test_names_are_envoy_safe_and_reversible() -> None:
    files = resources.render(two_releases((100, 0)), CONFIG)
    names = [c["name"] for c in files[resources.CDS_FILE]["resources"]]
    assert names == ["catalog_r1", "catalog_r2"]
    assert [model_name(n) for n in names] == ["catalog.r1", "catalog.r2"]


def test_clusters_have_static_sorted_endpoints_and_the_safety_nets() -> None:
    files = resources.render(two_releases((100, 0)), CONFIG)
    cluster = files[resources.CDS_FILE]["resources"][0]
    lb_endpoints = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    ports = [e["endpoint"]["address"]["socket_address"]["port_value"] for e in lb_endpoints]
    assert (cluster["type"], ports) == ("STATIC", [9001, 9002])
    breakers = cluster["circuit_breakers"]["thresholds"][0]
    assert breakers["max_retries"] == resources.MAX_CONCURRENT_RETRIES
    outlier = cluster["outlier_detection"]
    assert outlier["consecutive_local_origin_failure"] == 2
    assert outlier["split_external_local_origin_errors"] is True
    assert outlier["enforcing_consecutive_5xx"] == 0  # application 5xx are for analysis to judge
    options = cluster["typed_extension_protocol_options"]
    http = options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert http["common_http_protocol_options"] == {"idle_timeout": "30s"}


def test_a_cluster_without_endpoints_is_valid_and_empty() -> None:
    plane = DataPlane(
        routes=(Route("catalog", 8001, (("catalog.r1", 1),)),),
        clusters=(Cluster("catalog.r1", (), idle_timeout_s=4),),
        ingress_port=0,
    )
    files = resources.render(plane, CONFIG)
    cluster = files[resources.CDS_FILE]["resources"][0]
    assert cluster["load_assignment"] == {"cluster_name": "catalog_r1", "endpoints": []}
    assert sorted(files) == ["cds/clusters.json", "lds/listeners.json", "rds/svc_catalog.json"]


def test_listeners_use_rds_from_their_own_file() -> None:
    files = resources.render(two_releases((100, 0)), CONFIG)
    listeners = {x["name"]: x for x in files[resources.LDS_FILE]["resources"]}
    assert sorted(listeners) == ["ingress", "svc_catalog"]
    address = listeners["svc_catalog"]["address"]["socket_address"]
    assert address == {"address": "127.0.0.1", "port_value": 8001}
    hcm = listeners["svc_catalog"]["filter_chains"][0]["filters"][0]["typed_config"]
    source = hcm["rds"]["config_source"]["path_config_source"]
    assert source == {
        "path": "/srv/proxy/rds/svc_catalog.json",
        "watched_directory": {"path": "/srv/proxy/rds"},
    }
    assert [f["name"] for f in hcm["http_filters"]] == ["envoy.filters.http.router"]
    assert "access_log" not in hcm


def test_preview_routes_get_listeners_of_their_own() -> None:
    plane = two_releases((100, 0))
    preview = Route("catalog", 8101, (("catalog.r2", 1),))
    files = resources.render(
        DataPlane(plane.routes, plane.clusters, 0, preview_routes=(preview,)), CONFIG
    )
    listeners = [x["name"] for x in files[resources.LDS_FILE]["resources"]]
    assert listeners == ["preview_catalog", "svc_catalog"]
    assert resources.rds_file("preview_catalog") in files


def test_merge_clusters_keeps_old_ones_and_takes_new_definitions() -> None:
    old = resources.discovery_file([{"name": "a", "v": 1}, {"name": "b", "v": 1}])
    new = resources.discovery_file([{"name": "b", "v": 2}, {"name": "c", "v": 2}])
    merged = resources.merge_clusters(old, new)
    assert merged["resources"] == [
        {"name": "a", "v": 1},
        {"name": "b", "v": 2},
        {"name": "c", "v": 2},
    ]
    assert resources.merge_clusters(None, new) == new


def test_bootstrap_admin_on_loopback_with_fine_buckets() -> None:
    boot = resources.bootstrap(CONFIG, 9901)
    admin = boot["admin"]["address"]["socket_address"]
    assert admin == {"address": "127.0.0.1", "port_value": 9901}
    assert boot["stats_flush_interval"] == "1s"
    buckets = boot["stats_config"]["histogram_bucket_settings"][0]["buckets"]
    assert buckets == sorted(buckets) and len(buckets) > 30
    cds = boot["dynamic_resources"]["cds_config"]["path_config_source"]
    assert cds == {
        "path": "/srv/proxy/cds/clusters.json",
        "watched_directory": {"path": "/srv/proxy/cds"},
    }
