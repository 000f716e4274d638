"""Feature flags on a cluster: each environment's flag set as a ConfigMap holding flagd's flag file, and flagd
serving it over OFREP (pure).

The flag file is the one Shipyard already resolves and serves (`shipyard.flags.files.load_flags`: the
`flags/*` files with the environment's `flags:` overlay merged and `$ref`s resolved), so flagd started
with `--uri file:` on the mounted ConfigMap serves what Shipyard's OFREP listener serves.
"""

from __future__ import annotations

import json
from typing import Any

from ruamel.yaml.scalarstring import LiteralScalarString

from shipyard.export.gaps import Gap
from shipyard.flags.evaluate import FlagSet

Obj = dict[str, Any]
FLAGD_SCHEMA = "https://flagd.dev/schema/v0/flags.json"
FLAGS_FILE = "flags.flagd.json"      # the ConfigMap key, i.e. the file name where the ConfigMap is mounted
MOUNT_DIR = "/etc/flagd"
FLAGD_IMAGE = "ghcr.io/open-feature/flagd:v0.16.1"
FLAGD_NAME = "flagd"
OFREP_PORT = 8016          # flagd's OFREP listener: what `$SHIPYARD_OFREP_URL` points at
EVALUATION_PORT = 8013     # flagd's gRPC evaluation (for flagd's own providers)
MANAGEMENT_PORT = 8014     # /healthz, /readyz, metrics


def flags_gap(project: str) -> Gap:
    return Gap("", "", "feature flags (Shipyard's OFREP listener)",
               f"ConfigMap `{config_map_name(project)}` served by flagd over OFREP (`$SHIPYARD_OFREP_URL`)",
               "values and variants are the same; flagd reports a split as TARGETING_MATCH (not SPLIT), falls back to "
               "the default when a split has no targeting key (not TARGETING_KEY_MISSING), serves a changed ConfigMap "
               "only after the kubelet refreshes the mount (up to a minute), and emits no FlagsChanged events")


def config_map_name(project: str) -> str:
    return f"{project}-flags"


def flagd_document(flags: FlagSet) -> Obj:
    """flagd's flag file of one environment, with the `$schema` flagd's tooling validates against."""
    return {"$schema": FLAGD_SCHEMA, **flags.document}


def flags_config_map(project: str, flags: FlagSet) -> Obj:
    """The ConfigMap that flagd reads (`flagd start --uri file:/etc/flagd/flags.flagd.json` with it mounted)."""
    text = json.dumps(flagd_document(flags), indent=2, ensure_ascii=False) + "\n"
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": config_map_name(project),
                         "labels": {"app.kubernetes.io/part-of": project,
                                    "app.kubernetes.io/managed-by": "shipyard-export",
                                    "app.kubernetes.io/component": "feature-flags"}},
            "data": {FLAGS_FILE: LiteralScalarString(text)}}  # a block in the YAML: readable diffs


def ofrep_url() -> str:
    return f"http://{FLAGD_NAME}:{OFREP_PORT}"


def flagd_objects(project: str, image: str = FLAGD_IMAGE) -> list[Obj]:
    """apps/base/flagd/: flagd serving the environment's ConfigMap over OFREP (it watches the mounted file, so a
    changed ConfigMap is served without a restart, as Shipyard serves a new flag set)."""
    labels = {"app.kubernetes.io/name": FLAGD_NAME, "app.kubernetes.io/part-of": project,
              "app.kubernetes.io/managed-by": "shipyard-export", "app.kubernetes.io/component": "feature-flags"}
    metadata = {"name": FLAGD_NAME, "labels": labels}
    probe = {"periodSeconds": 5, "timeoutSeconds": 1, "failureThreshold": 3}
    container = {
        "name": FLAGD_NAME, "image": image,
        "args": ["start", "--uri", f"file:{MOUNT_DIR}/{FLAGS_FILE}"],   # flagd's default ports, as below
        "ports": [{"name": "ofrep", "containerPort": OFREP_PORT, "protocol": "TCP"},
                  {"name": "grpc", "containerPort": EVALUATION_PORT, "protocol": "TCP"},
                  {"name": "management", "containerPort": MANAGEMENT_PORT, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "management"}, **probe},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "management"}, **probe},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "flags", "mountPath": MOUNT_DIR, "readOnly": True}],
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata,
        "spec": {"replicas": 2, "revisionHistoryLimit": 5,
                 "selector": {"matchLabels": {"app.kubernetes.io/name": FLAGD_NAME}},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"automountServiceAccountToken": False,
                                       "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                                       "containers": [container],
                                       "volumes": [{"name": "flags",
                                                    "configMap": {"name": config_map_name(project)}}]}}},
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": metadata,
               "spec": {"type": "ClusterIP", "selector": {"app.kubernetes.io/name": FLAGD_NAME},
                        "ports": [{"name": "ofrep", "port": OFREP_PORT, "targetPort": "ofrep", "protocol": "TCP"},
                                  {"name": "grpc", "port": EVALUATION_PORT, "targetPort": "grpc",
                                   "protocol": "TCP"}]}}
    return [deployment, service]
