"""Flux objects of one cluster (one per environment): the source, the Kustomization that applies the
environment's overlay, and image automation for the environment that takes new versions by itself (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.export.images import Image
from shipyard.export.workloads import Obj

FLUX_NAMESPACE = "flux-system"


@dataclass(frozen=True)
class Source:
    url: str
    branch: str = "main"


def marker(service: str, field: str) -> str:
    """The `$imagepolicy` setter comment Flux's ImageUpdateAutomation rewrites the line after."""
    return '{"$imagepolicy": "%s:%s:%s"}' % (FLUX_NAMESPACE, service, field)


def cluster_objects(project: str, environment: str, source: Source, decryption: str | None = None) -> list[Obj]:
    """clusters/<env>/: where Flux finds the repository and which directory it applies; with DECRYPTION (the
    name of the Secret holding the cluster's age key), Flux decrypts the SOPS-encrypted Secrets it applies."""
    kustomization: Obj = {"interval": "5m", "retryInterval": "1m", "timeout": "10m", "path": f"./apps/{environment}",
                          "prune": True, "wait": False, "sourceRef": {"kind": "GitRepository", "name": project}}
    if decryption:
        kustomization["decryption"] = {"provider": "sops", "secretRef": {"name": decryption}}
    return [
        {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
         "metadata": {"name": project, "namespace": FLUX_NAMESPACE},
         "spec": {"interval": "1m", "url": source.url, "ref": {"branch": source.branch}}},
        {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
         "metadata": {"name": f"{project}-apps", "namespace": FLUX_NAMESPACE}, "spec": kustomization},
    ]


def image_automation(project: str, environment: str, source: Source, images: dict[str, Image]) -> list[Obj]:
    """ImageRepository + ImagePolicy per service, and one ImageUpdateAutomation that commits new versions
    into apps/<env> (the lines carrying `$imagepolicy` markers), like Shipyard's automation commits."""
    objects: list[Obj] = []
    for service, image in sorted(images.items()):
        objects.append({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
                        "metadata": {"name": service, "namespace": FLUX_NAMESPACE},
                        "spec": {"image": image.repository, "interval": "5m"}})
        objects.append({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
                        "metadata": {"name": service, "namespace": FLUX_NAMESPACE},
                        "spec": {"imageRepositoryRef": {"name": service},
                                 "policy": {"semver": {"range": ">=0.0.0"}},
                                 "digestReflectionPolicy": "Always"}})
    objects.append({
        "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
        "metadata": {"name": f"{project}-{environment}", "namespace": FLUX_NAMESPACE},
        "spec": {
            "interval": "5m",
            "sourceRef": {"kind": "GitRepository", "name": project},
            "git": {"checkout": {"ref": {"branch": source.branch}},
                    "commit": {"author": {"name": "shipyard-image-automation", "email": "automation@shipyard.invalid"},
                               "messageTemplate": f"{environment}: new versions from the registry\n\n"
                                                  "{{ range .Changed.Changes }}{{ .OldValue }} -> {{ .NewValue }}\n"
                                                  "{{ end }}"},
                    "push": {"branch": source.branch}},
            "update": {"path": f"./apps/{environment}", "strategy": "Setters"},
        },
    })
    return objects
