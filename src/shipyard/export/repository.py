"""The whole export of a project: a Flux-ready repository (apps/base, apps/<env>, clusters/<env>) and its gaps.

Pure apart from reading the project: `export_project` returns file names and their text; writing them
is `export.write`. The same project and settings always give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from pydantic import ValidationError

from shipyard.errors import SpecError
from shipyard.export import flagger
from shipyard.export.flagd import FLAGD_IMAGE, FLAGD_NAME, flagd_objects, flags_config_map, flags_gap
from shipyard.export.flux import Source, cluster_objects, image_automation, marker
from shipyard.export.gaps import Gap, gaps_markdown, merge_environments
from shipyard.export.images import ExportError, Image, ImageResolver
from shipyard.export.patches import delete_patch, object_key, object_patch
from shipyard.export.secrets import (
    DECRYPTION_SECRET,
    SECRET_FILE,
    SECRETS_GAP,
    ClusterKeys,
    encrypted_secret,
    secret_refs,
)
from shipyard.data.databases import grants
from shipyard.export.workloads import ENV_LABEL, VERSION_LABEL, Context, Obj, database_secret, service_objects
from shipyard.export.yamltext import dump_documents, with_comments
from shipyard.flags.evaluate import FlagSet
from shipyard.spec.load import load_project, service_data
from shipyard.spec.models import Service
from shipyard.spec.render import render_environment

KUSTOMIZE = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}


NO_REGISTRY_GAP = Gap("", "", "images without --registry", "bare artifact names pinned by digest "
                      "(`catalog:1.0.0@sha256:…`)", "a cluster looks bare names up on Docker Hub: push the artifacts "
                      "to a registry it can reach (e.g. `skopeo copy --preserve-digests oci:STORE/catalog:1.0.0 "
                      "docker://REGISTRY/catalog:1.0.0`) and export again with --registry REGISTRY")


@dataclass(frozen=True)
class Settings:
    repo_url: str = "https://git.example.com/shop-cluster.git"
    branch: str = "main"
    namespace: Optional[str] = None               # default: the project's name
    automated: Optional[tuple[str, ...]] = None    # environments taking new versions by themselves (default: the first)
    flagger: dict[str, str] = field(default_factory=dict)  # loadtester / prometheus / mesh overrides
    secrets: Optional[ClusterKeys] = None          # needed when services use secrets: see export.secrets
    flagd_image: str = FLAGD_IMAGE                 # serves the flags of projects that have some
    registry: bool = True                          # False: no registry was given, images have bare names (a gap)


@dataclass(frozen=True)
class Export:
    files: dict[str, str]
    gaps: list[Gap]


def export_project(root: Path, environments: list[str] | None, resolve: ImageResolver,
                   settings: Settings = Settings()) -> Export:
    source = load_project(root)
    if source.problems or source.project is None:
        raise SpecError(source.problems)
    project = source.project.name
    path = source.project.environment_names
    chosen = environments or path
    unknown = [e for e in chosen if e not in path]
    if unknown:
        raise ExportError(f"unknown environment {', '.join(unknown)} (the project has {', '.join(path)})")
    rendered: dict[str, dict[str, Service]] = {}
    flag_sets: dict[str, FlagSet] = {}
    for environment in chosen:
        desired, problems = render_environment(source, environment)
        if problems or desired is None:
            raise SpecError(problems)
        rendered[environment] = desired.services
        if desired.flags is not None:
            flag_sets[environment] = desired.flags
    flags = any(flag_set.flags for flag_set in flag_sets.values())
    used = sorted({name for services in rendered.values() for name in services})
    base = {name: _base_service(name, service_data(source.services[name])) for name in used}
    images = {name: resolve(service) for name, service in base.items()}
    namespace = settings.namespace or project
    options = flagger.Options(namespace, **settings.flagger)
    automated = settings.automated if settings.automated is not None else (path[0],)
    files: dict[str, str] = {}
    for name in used:
        objects, _ = _service_objects(project, base, name, images[name], options, flags)
        files.update(_base_files(name, objects))
    if flags:
        files.update(_base_files(FLAGD_NAME, flagd_objects(project, settings.flagd_image)))
    gaps: list[tuple[str, Gap]] = []
    source_ref = Source(settings.repo_url, settings.branch)
    for environment in chosen:
        env_images = {name: resolve(service) for name, service in rendered[environment].items()}
        auto = environment in automated
        extra, annotations = _environment_resources(root, project, environment, rendered[environment],
                                                    flag_sets.get(environment) if flags else None, settings.secrets)
        env_files, env_gaps = _overlay(project, environment, namespace, base, rendered[environment], images,
                                       env_images, options, auto, extra, flags, annotations)
        files.update(env_files)
        secrets = SECRET_FILE in extra
        gaps += [(environment, gap) for gap in env_gaps]
        gaps += [(environment, gap) for gap, present in ((flags_gap(project), flags), (SECRETS_GAP, secrets),
                                                         (NO_REGISTRY_GAP, not settings.registry)) if present]
        cluster = cluster_objects(project, environment, source_ref, DECRYPTION_SECRET if secrets else None)
        if auto:
            cluster += image_automation(project, environment, source_ref, env_images)
        files[f"clusters/{environment}/flux.yaml"] = dump_documents(cluster)
    merged = merge_environments(gaps, chosen)
    files["GAPS.md"] = gaps_markdown(project, merged)
    files["README.md"] = _readme(project, chosen, automated)
    return Export(dict(sorted(files.items())), merged)


def _environment_resources(root: Path, project: str, environment: str, services: dict[str, Service],
                           flag_set: Optional[FlagSet], cluster: Optional[ClusterKeys],
                           ) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """apps/<env>/'s own resources (file name → text; "" for another directory): its flags and flagd, its
    secrets; and the pod-template annotations of the services that read secrets."""
    extra: dict[str, str] = {}
    if flag_set is not None:
        extra["flags.yaml"] = dump_documents([flags_config_map(project, flag_set)])
        extra[f"../base/{FLAGD_NAME}"] = ""
    keys = secret_refs(services.values())
    if not keys:
        return extra, {}
    secret = encrypted_secret(root, project, environment, keys, cluster)
    extra[SECRET_FILE] = secret.text
    return extra, {name: secret.pod_annotations(service) for name, service in services.items()}


def _base_service(name: str, data: dict[str, Any]) -> Service:
    try:
        return Service.model_validate(data)
    except ValidationError as exc:
        raise ExportError(f"services/{name}.yaml is not a complete service on its own, so it cannot be the "
                          f"Kustomize base: {exc.errors()[0]['msg']}") from None


def _service_objects(project: str, services: dict[str, Service], name: str, image: Image,
                     options: flagger.Options, flags: bool,
                     pod_annotations: Optional[dict[str, str]] = None) -> tuple[list[Obj], list[Gap]]:
    service = services[name]
    dependents = tuple(sorted(n for n, s in services.items() if name in s.needs))
    gates = service.strategy.type == "canary" and bool(service.strategy.canary.pre_rollout
                                                       or service.strategy.canary.pre_promotion)
    gates = gates or (service.strategy.type == "blue-green" and bool(service.strategy.blue_green.pre_promotion))
    ctx = Context(project, image.ref, dependents, flagger.is_progressive(service), gates, flags,
                  dict(pod_annotations or {}))
    objects = service_objects(service, ctx) + flagger.canary_objects(service, ctx, options)
    ctx.gaps.extend(_common_gaps(service))
    return objects, [Gap(g.service, "", g.feature, g.mapping, g.loss) for g in ctx.gaps]


def _common_gaps(service: Service) -> list[Gap]:
    databases = [f"{d.name} ({d.engine})" for d in service.databases]
    provided = [Gap(service.name, "", f"databases: {', '.join(databases)}",
                    f"{', '.join(g.variable for g in grants(service))} from the Secret `{database_secret(service)}`",
                    "the cluster gets no server from Shipyard: provide PostgreSQL/Redis (an operator such as "
                    "CloudNativePG, or a managed service) and that Secret; per-service roles, password rotation and "
                    "`shipyard db` do not carry over")] if databases else []
    return provided + [
        Gap(service.name, "", "routing (timeout, idleTimeout, retries)", "dropped",
            "the ingress controller's or mesh's own timeouts and retries apply"),
        Gap(service.name, "", "$SHIPYARD_DATA_DIR", "an emptyDir volume",
            "data lives as long as the pod, not across restarts; use a PersistentVolumeClaim or a database"),
    ]


def _file_name(obj: Obj) -> str:
    kind = obj["kind"].lower()
    return f"{kind}-{obj['metadata']['name']}.yaml" if obj["kind"] == "MetricTemplate" else f"{kind}.yaml"


def _base_files(name: str, objects: list[Obj]) -> dict[str, str]:
    files = {f"apps/base/{name}/{_file_name(obj)}": dump_documents([obj]) for obj in objects}
    files[f"apps/base/{name}/kustomization.yaml"] = dump_documents(
        [{**KUSTOMIZE, "resources": [_file_name(obj) for obj in objects]}])
    return files


def _overlay(project: str, environment: str, namespace: str, base: dict[str, Service],
             services: dict[str, Service], base_images: dict[str, Image], images: dict[str, Image],
             options: flagger.Options, auto: bool, extra: dict[str, str],
             flags: bool, pod_annotations: dict[str, dict[str, str]]) -> tuple[dict[str, str], list[Gap]]:
    """apps/<env>/: the base of each service it runs, plus exactly what its overlay changes, plus EXTRA
    (file name → text: the environment's own resources; no text for another directory's)."""
    prefix = f"apps/{environment}"
    files: dict[str, str] = {f"{prefix}/{name}": text for name, text in extra.items() if text}
    resources = ["namespace.yaml", *extra]
    patches: list[str] = []
    gaps: list[Gap] = []
    for name in sorted(services):
        resources.append(f"../base/{name}")
        before = {object_key(o): o for o in _service_objects(project, base, name, base_images[name], options, flags)[0]}
        # The image stays the base's here: the version reaches the Deployment through `images:` below.
        after, service_gaps = _service_objects(project, services, name, base_images[name], options, flags,
                                               pod_annotations.get(name))
        gaps += service_gaps
        for obj in after:
            key = object_key(obj)
            if key not in before:
                relative = f"{name}/{_file_name(obj)}"
                files[f"{prefix}/{relative}"] = dump_documents([obj])
                resources.append(relative)
                continue
            patch = object_patch(before[key], obj)
            if auto and obj["kind"] == "Deployment":
                patch = _version_setter(patch, obj, name, services[name].version)
            if patch is not None:
                relative = f"patches/{name}-{_file_name(obj)}"
                files[f"{prefix}/{relative}"] = dump_documents([patch])
                patches.append(relative)
        for key, obj in before.items():
            if key not in {object_key(o) for o in after}:
                relative = f"patches/{name}-{_file_name(obj)}"
                files[f"{prefix}/{relative}"] = dump_documents([delete_patch(obj)])
                patches.append(relative)
    files[f"{prefix}/namespace.yaml"] = dump_documents([{"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": namespace}}])
    kustomization: dict[str, Any] = {**KUSTOMIZE, "namespace": namespace, "resources": resources,
                                     "labels": [{"pairs": {ENV_LABEL: environment}, "includeTemplates": True}],
                                     "images": [_image_entry(name, images[name], auto) for name in sorted(services)]}
    if patches:
        kustomization["patches"] = [{"path": p} for p in patches]
    files[f"{prefix}/kustomization.yaml"] = dump_documents([kustomization])
    return files, gaps


def _image_entry(service: str, image: Image, auto: bool) -> Any:
    entry: dict[str, Any] = {"name": image.repository, "newTag": image.tag}
    if image.digest:
        entry["digest"] = image.digest
    if not auto:
        return entry
    comments = {"newTag": marker(service, "tag")}
    if image.digest:
        comments["digest"] = marker(service, "digest")
    return with_comments(entry, comments)


def _version_setter(patch: Optional[Obj], deployment: Obj, service: str, version: str) -> Obj:
    """In the automated environment the version label carries a setter marker, so Flux moves it with the tag."""
    patch = patch or {"apiVersion": deployment["apiVersion"], "kind": "Deployment",
                      "metadata": {"name": deployment["metadata"]["name"]}}
    spec = patch.setdefault("spec", {})
    template = spec.setdefault("template", {})
    meta = template.setdefault("metadata", {})
    labels = dict(meta.get("labels") or {})
    labels[VERSION_LABEL] = version
    meta["labels"] = with_comments(labels, {VERSION_LABEL: marker(service, "tag")})
    return patch


def _readme(project: str, environments: list[str], automated: tuple[str, ...]) -> str:
    auto = ", ".join(e for e in environments if e in automated) or "none"
    return "\n".join([
        f"# {project} on Kubernetes + Flux + Flagger",
        "",
        "Generated by `shipyard export kubernetes`; regenerate rather than edit (the export is deterministic).",
        "",
        "- `apps/base/<service>/`: Deployment, Service, ServiceAccount, PodDisruptionBudget, ConfigMap,",
        "  NetworkPolicy, Ingress and, for canary / blue-green services, Flagger's Canary and MetricTemplates.",
        f"- `apps/<env>/` ({', '.join(environments)}): Kustomize overlays carrying what each environment changes.",
        "- `clusters/<env>/flux.yaml`: Flux's GitRepository and Kustomization for that environment's cluster;",
        f"  image automation for the environments that take new versions by themselves ({auto}).",
        "- `apps/<env>/flags.yaml`: the environment's feature flags (flagd's format), served by `apps/base/flagd`;",
        "  `apps/<env>/secrets.yaml`: its secrets, SOPS-encrypted for the cluster's age key.",
        "- `GAPS.md`: what did not map exactly, and the mapping chosen.",
        "",
        "Bootstrap a cluster: install Flux (`flux install`), Flagger (with its load tester, for gates) and a",
        "Prometheus; an ingress-nginx controller; if there are secrets, the cluster's age key as the Secret",
        "`sops-age` (`kubectl -n flux-system create secret generic sops-age --from-file=age.agekey=KEY`);",
        "push this directory to the repository named in `clusters/<env>/flux.yaml`, then",
        "`kubectl apply -f clusters/<env>/flux.yaml`.",
        "",
    ])
