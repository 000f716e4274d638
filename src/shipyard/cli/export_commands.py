"""`shipyard export kubernetes`: the project as a Flux-ready repository for Kubernetes + Flux + Flagger."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any, Callable

import click

from shipyard.cli.output import info
from shipyard.export.flagd import FLAGD_IMAGE
from shipyard.export.images import ExportError, registry_resolver
from shipyard.export.repository import Settings, export_project
from shipyard.export.secrets import ClusterKeys
from shipyard.export.validate import load_crds, validate_objects
from shipyard.export.write import previous_file, write_export
from shipyard.export.yamltext import load_documents
from shipyard.spec.load import load_project


@click.group()
def export() -> None:
    """Compile the project for another platform."""


@export.command(epilog="""\b
Writes apps/base/<service>/, apps/<env>/ (Kustomize overlays), clusters/<env>/flux.yaml (Flux),
Flagger Canary / MetricTemplate objects for canary and blue-green services, each environment's
feature flags as a ConfigMap in flagd's format (apps/<env>/flags.yaml), its secrets as a Secret
encrypted with SOPS for the cluster's age key (apps/<env>/secrets.yaml), and GAPS.md: every
feature without a faithful equivalent, with the mapping chosen. Every built-in object is checked
against Kubernetes' own schema (strict) before anything is written; with --crds, Flux and Flagger
objects are checked against their CustomResourceDefinitions too.

\b
Examples:
  shipyard export kubernetes examples/shop -o out/ --registry ghcr.io/acme
  shipyard export kubernetes . -o deploy/ --env prod --strict
  shipyard export kubernetes . -o deploy/ --repo-url ssh://git@git.example.com/shop-cluster.git --crds crds/
  shipyard export kubernetes . -o deploy/ --age-recipient dev=age1... --age-recipient prod=age1...

\b
Secrets are decrypted with each environment's own key ($SHIPYARD_AGE_KEY_FILE, else
.shipyard/<env>/age.key) and encrypted for the cluster's age recipient; an unchanged Secret keeps
its earlier ciphertext, so the export stays byte for byte the same.
""")
@click.argument("project", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("-o", "--output", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The directory to write (empty, new, or an earlier export).")
@click.option("--env", "environments", metavar="ENV", multiple=True, help="Export only these environments "
              "(repeatable; default: every environment of the promotion path).")
@click.option("--registry", metavar="HOST[:PORT]/PREFIX", envvar="SHIPYARD_EXPORT_REGISTRY",
              help="Where the cluster pulls images from [default: `store:` of shipyard.yaml when it is a registry; "
                   "else bare names, listed as a gap].")
@click.option("--repo-url", default="https://git.example.com/shop-cluster.git", show_default=True,
              help="The git repository Flux will follow (where you push the exported directory).")
@click.option("--branch", default="main", show_default=True, help="Its branch.")
@click.option("--namespace", metavar="NAME", help="The namespace of the workloads [default: the project's name].")
@click.option("--strict", is_flag=True, help="Fail (exit 1, nothing written) if any feature has no faithful mapping.")
@click.option("--crds", "crd_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              envvar="SHIPYARD_CRDS", help="Also check Flux and Flagger objects against the CRDs in this directory.")
@click.option("--age-recipient", "age_recipients", metavar="[ENV=]AGE1...", multiple=True,
              help="The cluster's age public key that exported Secrets are encrypted for (repeatable; ENV= for one "
                   "environment's cluster only). Required when services use secrets.")
@click.option("--flagd-image", default=FLAGD_IMAGE, show_default=True,
              help="The flagd image that serves the feature flags (when the project has some).")
def kubernetes(project: Path, out: Path, environments: tuple[str, ...], registry: str | None, repo_url: str,
               branch: str, namespace: str | None, strict: bool, crd_dir: Path | None,
               age_recipients: tuple[str, ...], flagd_image: str) -> None:
    """Export the project to Kubernetes + Flux + Flagger manifests."""
    registry = registry or _project_registry(project) or ""   # none: bare names, and a gap that says so
    result = export_project(project, list(environments) or None, registry_resolver(registry, _digest_lookup(project)),
                            Settings(repo_url=repo_url, branch=branch, namespace=namespace,
                                     secrets=_cluster_keys(project, out, age_recipients), flagd_image=flagd_image,
                                     registry=bool(registry)))
    crds = load_crds(crd_dir) if crd_dir else None
    invalid = validate_objects(_objects(result.files), crds)
    if invalid:
        raise ExportError("the export produced objects the schemas refuse (a bug in Shipyard; please report it): "
                          + "; ".join(str(i) for i in invalid[:5]))
    for gap in result.gaps:
        click.echo(f"gap: {gap.line()}", err=True)
    if strict and result.gaps:
        raise ExportError(f"{len(result.gaps)} features have no faithful equivalent (see above); nothing written "
                          "(--strict)")
    write_export(out, result.files)
    checked = "built-in, Flux and Flagger objects checked" if crds is not None else \
        "built-in objects checked (pass --crds DIR to check Flux and Flagger objects too)"
    info(f"wrote {len(result.files)} files to {out} ({checked}); {len(result.gaps)} gaps listed in {out / 'GAPS.md'}")


def _objects(files: dict[str, str]) -> list[dict[str, object]]:
    """Whole objects only: kustomization files and patches are checked once Kustomize has applied them; an
    encrypted Secret without its `sops` block, as Flux applies it (its values are strings either way)."""
    objects = []
    for name, text in files.items():
        if name.endswith(".yaml") and "/patches/" not in name and not name.endswith("kustomization.yaml"):
            objects += [{k: v for k, v in o.items() if k != "sops"} if o.get("kind") == "Secret" else o
                        for o in load_documents(text)]
    return objects


def _cluster_keys(project: Path, out: Path, age_recipients: tuple[str, ...]) -> ClusterKeys:
    """`--age-recipient [ENV=]AGE1...` per environment; each environment's own key, read only when needed."""
    from shipyard.cli.client import resolve_state_dir
    from shipyard.secrets.keys import key_file_path, load_identities

    source = load_project(project)
    names = source.project.environment_names if source.project else []
    everywhere = tuple(r for r in age_recipients if "=" not in r)
    recipients: dict[str, tuple[str, ...]] = {name: everywhere for name in names}
    for entry in age_recipients:
        if "=" in entry:
            environment, _, recipient = entry.partition("=")
            if environment not in recipients:
                raise click.UsageError(f"--age-recipient {environment}=...: no environment {environment} "
                                       f"(the project has {', '.join(names)})")
            recipients[environment] = (*recipients[environment], recipient)

    def identities(environment: str) -> list[Any]:
        return load_identities(key_file_path(resolve_state_dir(None, environment)))

    return ClusterKeys(recipients, identities, lambda relative: previous_file(out, relative),
                       datetime.datetime.now(datetime.timezone.utc))


def _project_registry(project: Path) -> str | None:
    """The project's `store:` when it is a registry: where its images already are."""
    from shipyard.artifacts.stores import is_registry

    source = load_project(project)
    store = source.project.store if source.project else None
    return store if store and is_registry(store) else None


def _digest_lookup(project: Path) -> Callable[[str, str], str | None]:
    """Digests from the project's artifact store (`store:`, SHIPYARD_STORE or the default one); None when the
    store does not know the version (the image is then named by tag alone)."""
    from shipyard.artifacts.errors import ArtifactError
    from shipyard.artifacts.stores import open_store, store_location

    source = load_project(project)
    store = open_store(store_location(None, source.project.store if source.project else None, project))

    def lookup(name: str, version: str) -> str | None:
        try:
            return store.resolve(name, version)
        except ArtifactError:
            return None

    return lookup


COMMANDS = [export]
