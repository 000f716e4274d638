"""Pure translation of a DataPlane into Envoy's bootstrap and file-based xDS resources."""

from __future__ import annotations

import os

import hashlib
import json
from pathlib import Path
from typing import Any

from shipyard.proxy.model import DataPlane, Endpoint, Route, envoy_name
from shipyard.proxy.routes import Json, duration, ingress_routes, service_routes

# Relative paths under the config dir. Each resource type has its own watched directory because
# Envoy re-reads every file watched in a directory whenever anything is renamed into it.
LDS_FILE = "lds/listeners.json"
CDS_FILE = "cds/clusters.json"
RDS_DIR = "rds"
BOOTSTRAP_FILE = "bootstrap.json"

_LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
_CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
_HCM = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
    "HttpConnectionManager"
)
_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
_HTTP_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

# Envoy allows only 3 concurrent retries per cluster by default; a killed instance under load
# needs more than that or the retries that would hide it are refused.
MAX_CONCURRENT_RETRIES = 1024

# Upstream request time buckets in ms (Envoy's defaults jump 0.5, 1, 5, 10, 25, 50, 100, ...).
# fmt: off
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    0.5, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 125, 150, 200, 250,
    300, 400, 500, 600, 800, 1000, 1500, 2000, 3000, 5000, 10000, 30000, 60000, 300000,
)
# fmt: on


def listener_name(route: Route, preview: bool = False) -> str:
    """The listener, route configuration and stat prefix name of a service endpoint."""
    return ("preview_" if preview else "svc_") + envoy_name(route.service)


INGRESS = "ingress"


def rds_file(name: str) -> str:
    """Relative path of the RDS file of route configuration `name`."""
    return f"{RDS_DIR}/{name}.json"


def version_of(resources: list[Json]) -> str:
    """A content hash, used as version_info so identical content always has the same version."""
    return hashlib.sha256(serialize(resources).encode()).hexdigest()[:16]


def serialize(content: Any) -> str:
    """Deterministic JSON text: the same value always gives the same bytes."""
    return json.dumps(content, sort_keys=True, indent=1) + "\n"


def discovery_file(resources: list[Json]) -> Json:
    """One xDS file: the resources and their content hash as version_info."""
    return {"version_info": version_of(resources), "resources": resources}


def _path_source(config_dir: Path, relative: str) -> Json:
    path = config_dir / relative
    return {
        "path_config_source": {"path": str(path), "watched_directory": {"path": str(path.parent)}},
        "resource_api_version": "V3",
    }


def bootstrap(config_dir: Path, admin_port: int) -> Json:
    """The bootstrap: admin on loopback only, 1 s stats flush, fine latency buckets, file xDS."""
    return {
        "node": {"id": "shipyard", "cluster": "shipyard"},
        "admin": {"address": _socket("127.0.0.1", admin_port)},
        # Histograms only reach the admin endpoints at a flush: 5 s by default is too coarse.
        "stats_flush_interval": "1s",
        "stats_config": {
            "histogram_bucket_settings": [
                {"match": {"suffix": "upstream_rq_time"}, "buckets": list(LATENCY_BUCKETS_MS)}
            ]
        },
        "dynamic_resources": {
            "lds_config": _path_source(config_dir, LDS_FILE),
            "cds_config": _path_source(config_dir, CDS_FILE),
        },
    }


def _socket(address: str, port: int) -> Json:
    return {"socket_address": {"address": address, "port_value": port}}


def render(plane: DataPlane, config_dir: Path) -> dict[str, Json]:
    """Every xDS file of `plane`, by path relative to `config_dir`."""
    files: dict[str, Json] = {CDS_FILE: discovery_file(clusters(plane))}
    listeners: list[Json] = []
    endpoints = [(r, listener_name(r)) for r in plane.routes]
    endpoints += [(r, listener_name(r, preview=True)) for r in plane.preview_routes]
    for route, name in endpoints:
        listeners.append(_listener(name, "127.0.0.1", route.port, config_dir, ingress=False))
        files[rds_file(name)] = discovery_file([service_routes(name, route)])
    if plane.ingress_port:
        listeners.append(
            _listener(INGRESS, plane.ingress_address, plane.ingress_port, config_dir, ingress=True)
        )
        files[rds_file(INGRESS)] = discovery_file([ingress_routes(plane, INGRESS)])
    files[LDS_FILE] = discovery_file(sorted(listeners, key=lambda x: x["name"]))
    return files


def clusters(plane: DataPlane) -> list[Json]:
    """The CDS resources. Endpoints are static in the cluster, see _cluster."""
    return [
        _cluster(c.name, c.endpoints, c.idle_timeout_s)
        for c in sorted(plane.clusters, key=lambda c: c.name)
    ]


def _cluster(name: str, endpoints: tuple[Endpoint, ...], idle_timeout_s: float) -> Json:
    # Static endpoints in CDS rather than EDS: Envoy holds one inotify instance per watched
    # subscription (128 per user by default), and a changed cluster drains its old connections
    # gracefully just like an EDS host removal does.
    lb_endpoints = [
        {"endpoint": {"address": _socket(e.host, e.port)}} for e in sorted(set(endpoints))
    ]
    return {
        "@type": _CLUSTER,
        "name": envoy_name(name),
        "type": "STATIC",
        "connect_timeout": "1s",
        "lb_policy": "LEAST_REQUEST",
        "load_assignment": {
            "cluster_name": envoy_name(name),
            "endpoints": [{"lb_endpoints": lb_endpoints}] if lb_endpoints else [],
        },
        "circuit_breakers": {
            "thresholds": [{"priority": "DEFAULT", "max_retries": MAX_CONCURRENT_RETRIES}]
        },
        "outlier_detection": _outlier_detection(),
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": _HTTP_OPTIONS,
                "explicit_http_config": {"http_protocol_options": {}},
                # Shorter than the backends' keep-alive, so Envoy (not the backend) closes an
                # idle connection and never sends a request on one the backend is closing.
                "common_http_protocol_options": {"idle_timeout": duration(idle_timeout_s)},
            }
        },
    }


def _outlier_detection() -> Json:
    # Eject an instance after 2 consecutive local-origin failures (refused/reset connections,
    # timeouts): a killed instance leaves rotation within milliseconds. HTTP 5xx answers do not
    # eject: they are the application's, and canary analysis must see them.
    return {
        "split_external_local_origin_errors": True,
        "consecutive_local_origin_failure": 2,
        "enforcing_consecutive_local_origin_failure": 100,
        "enforcing_local_origin_success_rate": 0,
        "enforcing_consecutive_5xx": 0,
        "enforcing_success_rate": 0,
        "enforcing_consecutive_gateway_failure": 0,
        "interval": "1s",
        "base_ejection_time": "5s",
        "max_ejection_percent": 50,
    }


def _error_access_log(path: str) -> Json:
    return {
        "name": "envoy.access_loggers.file",
        "filter": {"status_code_filter": {"comparison": {
            "op": "GE", "value": {"default_value": 500, "runtime_key": "shipyard.error_log_min_status"}}}},
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path,
            "log_format": {"text_format_source": {"inline_string":
                "%START_TIME% %REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% "
                "%UPSTREAM_CLUSTER% %UPSTREAM_HOST% %RESPONSE_CODE_DETAILS% %UPSTREAM_TRANSPORT_FAILURE_REASON%\n"}},
        },
    }


def _listener(name: str, address: str, port: int, config_dir: Path, ingress: bool) -> Json:
    hcm: Json = {
        "@type": _HCM,
        "stat_prefix": name,
        "codec_type": "AUTO",
        # Routes come from their own RDS file: a weight change then never replaces the listener
        # (which would drain every connection on it).
        "rds": {
            "route_config_name": name,
            "config_source": _path_source(config_dir, rds_file(name)),
        },
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER}}],
        "upgrade_configs": [{"upgrade_type": "websocket"}],
    }
    error_log = os.environ.get("SHIPYARD_ENVOY_ERROR_LOG")
    if error_log:
        # Off by default (every per-request feature costs throughput): a log of 5xx answers with
        # Envoy's response flags, for diagnosing failed requests.
        hcm["access_log"] = [_error_access_log(error_log)]
    if ingress:
        hcm.update(
            use_remote_address=True,
            normalize_path=True,
            merge_slashes=True,
            strip_any_host_port=True,
        )
    return {
        "@type": _LISTENER,
        "name": name,
        "address": _socket(address, port),
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }


def merge_clusters(current: Json | None, desired: Json) -> Json:
    """A CDS file with the clusters of `desired` plus those of `current` it drops.

    Published before routes change, so a route never points at a cluster Envoy lacks.
    """
    merged = {c["name"]: c for c in (current or {}).get("resources", [])}
    merged.update({c["name"]: c for c in desired["resources"]})
    return discovery_file([merged[name] for name in sorted(merged)])
