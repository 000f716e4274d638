"""A service as Kubernetes built-in objects: Deployment, Service, ServiceAccount, PDB, ConfigMap,
NetworkPolicy and Ingress (pure: the same service always gives the same objects)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from shipyard.data.databases import grants
from shipyard.export.flagd import FLAGD_NAME, OFREP_PORT, ofrep_url
from shipyard.export.gaps import Gap
from shipyard.export.secrets import secret_env
from shipyard.spec.models import Probe, SecretRef, Service
from shipyard.spec.units import format_duration

Obj = dict[str, Any]

CONTAINER_PORT = 8080       # every container listens here (`$PORT`), as Shipyard gives each instance a port
SERVICE_PORT = 80           # what `<DEP>_URL` points at: http://<dep>
DATA_DIR = "/data"          # `$SHIPYARD_DATA_DIR`: an emptyDir, like an instance's own data directory
DRAIN_S = 5                 # preStop sleep: endpoints leave every kube-proxy / ingress before SIGTERM
SERVICE_LABEL = "shipyard.dev/service"      # kept by Flagger on primary pods (it rewrites only the selector label)
ENV_LABEL = "shipyard.dev/environment"      # set by each overlay; read back as $SHIPYARD_ENVIRONMENT
VERSION_LABEL = "app.kubernetes.io/version"  # set by each overlay; read back as $SHIPYARD_VERSION
NAME_LABEL = "app.kubernetes.io/name"       # Flagger's selector label
INGRESS_NAMESPACE = "ingress-nginx"


@dataclass(frozen=True)
class Context:
    """What building one service's objects needs to know about the rest of the project."""

    project: str
    image: str                                  # the Deployment's image reference
    dependents: tuple[str, ...] = ()            # services whose `needs` name this one
    progressive: bool = False                   # Flagger owns the Service objects and the traffic
    gates: bool = False                         # Flagger's load tester must reach the canary
    flags: bool = False                         # the project has feature flags: flagd serves them over OFREP
    pod_annotations: dict[str, str] = field(default_factory=dict)  # e.g. the fingerprint of its secret values
    gaps: list[Gap] = field(default_factory=list)


def service_objects(service: Service, ctx: Context) -> list[Obj]:
    """Every built-in object of one service, in a fixed order."""
    objects = [service_account(service, ctx), config_map(service, ctx), deployment(service, ctx)]
    if not ctx.progressive:
        objects.append(kube_service(service, ctx))  # Flagger generates <name>, <name>-primary, <name>-canary
    objects += [disruption_budget(service, ctx), network_policy(service, ctx)]
    if service.ingress is not None:
        objects.append(ingress(service, ctx))
    return objects


def labels(service: Service, ctx: Context) -> dict[str, str]:
    return {NAME_LABEL: service.name, "app.kubernetes.io/part-of": ctx.project,
            "app.kubernetes.io/managed-by": "shipyard-export", SERVICE_LABEL: service.name}


def metadata(name: str, service: Service, ctx: Context) -> Obj:
    return {"name": name, "labels": labels(service, ctx)}


def service_account(service: Service, ctx: Context) -> Obj:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(service.name, service, ctx),
            "automountServiceAccountToken": False}


def dependency_url(name: str) -> tuple[str, str]:
    return f"{name.upper().replace('-', '_')}_URL", f"http://{name}"


def config_map(service: Service, ctx: Context) -> Obj:
    """The service's configuration: its `env` (but for secrets: see `secret_env`) plus `<DEP>_URL` for each `needs`."""
    data = {key: str(value) for key, value in sorted(service.env.items()) if not isinstance(value, SecretRef)}
    data.update(dependency_url(need) for need in sorted(service.needs))
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(f"{service.name}-config", service, ctx),
            "data": data}


def _seconds(value: float, at_least: int = 1) -> int:
    return max(at_least, math.ceil(value))


def probe(service: Service, kind: str, spec: Probe, ctx: Context) -> Obj:
    if spec.interval < 1 or spec.timeout < 1:
        ctx.gaps.append(Gap(service.name, "", f"health.{kind}.interval/timeout "
                            f"({format_duration(spec.interval)}/{format_duration(spec.timeout)})",
                            "rounded up to whole seconds",
                            "Kubernetes probes count in whole seconds, so a failing instance is noticed later"))
    return {"httpGet": {"path": spec.path, "port": "http"}, "periodSeconds": _seconds(spec.interval),
            "timeoutSeconds": _seconds(spec.timeout), "failureThreshold": spec.failure_threshold}


def container(service: Service, ctx: Context) -> Obj:
    env: list[Obj] = [
        {"name": "PORT", "value": str(CONTAINER_PORT)},
        {"name": "SHIPYARD_SERVICE", "value": service.name},
        {"name": "SHIPYARD_ENVIRONMENT", "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{ENV_LABEL}']"}}},
        {"name": "SHIPYARD_VERSION", "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{VERSION_LABEL}']"}}},
        {"name": "SHIPYARD_INSTANCE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "SHIPYARD_DATA_DIR", "value": DATA_DIR},
        *secret_env(service, ctx.project),
        *database_env(service),
    ]
    if ctx.flags:
        env.append({"name": "SHIPYARD_OFREP_URL", "value": ofrep_url()})
    health = service.health
    result: Obj = {"name": service.name, "image": ctx.image}
    command = getattr(service.artifact, "command", None)
    if command:
        result["command"] = list(command)
    result.update({
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "env": env,
        "envFrom": [{"configMapRef": {"name": f"{service.name}-config"}}],
        "resources": {"requests": {"cpu": _cpu(service.resources.cpu), "memory": _memory(service.resources.memory)},
                      "limits": {"cpu": _cpu(service.resources.cpu), "memory": _memory(service.resources.memory)}},
        "startupProbe": {"httpGet": {"path": health.readiness.path, "port": "http"}, "periodSeconds": 1,
                         "timeoutSeconds": _seconds(health.readiness.timeout),
                         "failureThreshold": _seconds(health.startup_timeout)},
        "readinessProbe": probe(service, "readiness", health.readiness, ctx),
        "livenessProbe": probe(service, "liveness", health.liveness, ctx),
        "lifecycle": {"preStop": {"sleep": {"seconds": DRAIN_S}}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "data", "mountPath": DATA_DIR}, {"name": "tmp", "mountPath": "/tmp"}],
    })
    return result


def database_secret(service: Service) -> str:
    """The Secret the cluster must provide with the URLs of SERVICE's databases (one key per variable)."""
    return f"{service.name}-databases"


def database_env(service: Service) -> list[Obj]:
    """`DATABASE_URL` / `REDIS_URL` (and `<NAME>_…_URL`) as Shipyard names them, read from that Secret."""
    return [{"name": grant.variable, "valueFrom": {"secretKeyRef": {"name": database_secret(service),
                                                                     "key": grant.variable}}}
            for grant in grants(service)]


def _cpu(cores: float) -> str:
    return f"{round(cores * 1000)}m"


def _memory(size: int) -> str:
    for unit, factor in (("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def deployment(service: Service, ctx: Context) -> Obj:
    rolling = service.strategy.rolling
    spec: Obj = {
        "replicas": service.replicas,
        "revisionHistoryLimit": 5,
        "progressDeadlineSeconds": _seconds(rolling.progress_deadline),
        "minReadySeconds": math.ceil(rolling.min_ready),
        "selector": {"matchLabels": {NAME_LABEL: service.name}},
    }
    if service.strategy.type == "recreate":
        spec["strategy"] = {"type": "Recreate"}
    else:
        spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": rolling.max_surge,
                                                                       "maxUnavailable": rolling.max_unavailable}}
    pod_labels = {**labels(service, ctx), VERSION_LABEL: service.version, ENV_LABEL: "base"}
    template_metadata: Obj = {"labels": pod_labels}
    if ctx.pod_annotations:
        template_metadata["annotations"] = dict(ctx.pod_annotations)
    spec["template"] = {
        "metadata": template_metadata,
        "spec": {
            "serviceAccountName": service.name,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": DRAIN_S + math.ceil(service.stop.grace_period),
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container(service, ctx)],
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
        },
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata(service.name, service, ctx),
            "spec": spec}


def kube_service(service: Service, ctx: Context) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(service.name, service, ctx),
            "spec": {"type": "ClusterIP", "selector": {NAME_LABEL: service.name},
                     "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}]}}


def disruption_budget(service: Service, ctx: Context) -> Obj:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": metadata(service.name, service, ctx),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {SERVICE_LABEL: service.name}}}}


def network_policy(service: Service, ctx: Context) -> Obj:
    """Only the services that declare `needs: [this]` (and the ingress controller) get in; out only to `needs`, DNS
    and flagd's OFREP port."""
    http = [{"protocol": "TCP", "port": "http"}]
    ingress_rules: list[Obj] = []
    if ctx.dependents:
        ingress_rules.append({"from": [{"podSelector": {"matchLabels": {SERVICE_LABEL: name}}}
                                       for name in sorted(ctx.dependents)], "ports": http})
    if service.ingress is not None:
        ingress_rules.append({"from": [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": INGRESS_NAMESPACE}}}], "ports": http})
    if ctx.gates:
        ingress_rules.append({"from": [{"namespaceSelector": {},
                                        "podSelector": {"matchLabels": {"app": "flagger-loadtester"}}}], "ports": http})
    egress_rules: list[Obj] = [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]
    if ctx.flags:
        egress_rules.append({"to": [{"podSelector": {"matchLabels": {NAME_LABEL: FLAGD_NAME}}}],
                             "ports": [{"protocol": "TCP", "port": OFREP_PORT}]})
    if service.needs:
        egress_rules.append({"to": [{"podSelector": {"matchLabels": {SERVICE_LABEL: name}}}
                                    for name in sorted(service.needs)],
                             "ports": [{"protocol": "TCP", "port": CONTAINER_PORT}]})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": metadata(service.name, service, ctx),
            "spec": {"podSelector": {"matchLabels": {SERVICE_LABEL: service.name}},
                     "policyTypes": ["Ingress", "Egress"], "ingress": ingress_rules, "egress": egress_rules}}


def ingress(service: Service, ctx: Context) -> Obj:
    assert service.ingress is not None
    rule: Obj = {"http": {"paths": [{"path": service.ingress.path or "/", "pathType": "Prefix",
                                     "backend": {"service": {"name": service.name,
                                                             "port": {"number": SERVICE_PORT}}}}]}}
    if service.ingress.host:
        rule = {"host": service.ingress.host, **rule}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata(service.name, service, ctx),
            "spec": {"ingressClassName": "nginx", "rules": [rule]}}
