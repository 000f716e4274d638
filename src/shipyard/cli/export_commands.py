"""`shipyard export kubernetes`: the project as a Flux-ready repository for Kubernetes + Flux + Flagger."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import click

from shipyard.cli.output import info
from shipyard.export.images import ExportError, registry_resolver
from shipyard.export.repository import Settings, export_project
from shipyard.export.validate import load_crds, validate_objects
from shipyard.export.write import write_export
from shipyard.export.yamltext import load_documents
from shipyard.spec.load import load_project


@click.group()
def export() -> None:
    """Compile the project for another platform."""


@export.command(epilog="""\b
Writes apps/base/<service>/, apps/<env>/ (Kustomize overlays), clusters/<env>/flux.yaml (Flux),
Flagger Canary / MetricTemplate objects for canary and blue-green services, and GAPS.md: every
feature without a faithful equivalent, with the mapping chosen. Every built-in object is checked
against Kubernetes' own schema (strict) before anything is written; with --crds, Flux and Flagger
objects are checked against their CustomResourceDefinitions too.

\b
Examples:
  shipyard export kubernetes examples/shop -o out/ --registry ghcr.io/acme
  shipyard export kubernetes . -o deploy/ --env prod --strict
  shipyard export kubernetes . -o deploy/ --repo-url ssh://git@git.example.com/shop-cluster.git --crds crds/
""")
@click.argument("project", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("-o", "--output", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The directory to write (empty, new, or an earlier export).")
@click.option("--env", "environments", metavar="ENV", multiple=True, help="Export only these environments "
              "(repeatable; default: every environment of the promotion path).")
@click.option("--registry", metavar="HOST[:PORT]/PREFIX", envvar="SHIPYARD_EXPORT_REGISTRY",
              help="Where the cluster pulls images from [default: `store:` of shipyard.yaml when it is a registry].")
@click.option("--repo-url", default="https://git.example.com/shop-cluster.git", show_default=True,
              help="The git repository Flux will follow (where you push the exported directory).")
@click.option("--branch", default="main", show_default=True, help="Its branch.")
@click.option("--namespace", metavar="NAME", help="The namespace of the workloads [default: the project's name].")
@click.option("--strict", is_flag=True, help="Fail (exit 1, nothing written) if any feature has no faithful mapping.")
@click.option("--crds", "crd_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              envvar="SHIPYARD_CRDS", help="Also check Flux and Flagger objects against the CRDs in this directory.")
def kubernetes(project: Path, out: Path, environments: tuple[str, ...], registry: str | None, repo_url: str,
               branch: str, namespace: str | None, strict: bool, crd_dir: Path | None) -> None:
    """Export the project to Kubernetes + Flux + Flagger manifests."""
    registry = registry or _project_registry(project)
    if not registry:
        raise ExportError("no registry to pull images from: pass --registry HOST[:PORT]/PREFIX (or make `store:` of "
                          "shipyard.yaml a registry); a cluster cannot read Shipyard's embedded artifact store")
    result = export_project(project, list(environments) or None, registry_resolver(registry, _digest_lookup(project)),
                            Settings(repo_url=repo_url, branch=branch, namespace=namespace))
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
    """Whole objects only: kustomization files and patches are checked once Kustomize has applied them."""
    objects = []
    for name, text in files.items():
        if name.endswith(".yaml") and "/patches/" not in name and not name.endswith("kustomization.yaml"):
            objects += load_documents(text)
    return objects


def _project_registry(project: Path) -> str | None:
    """The project's `store:` when it is a registry: where its images already are."""
    from shipyard.artifacts.registry import is_registry

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
