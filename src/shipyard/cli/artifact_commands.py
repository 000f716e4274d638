"""Commands for artifacts: `build` a service's source dir into its OCI image, `artifacts list|inspect`."""

from __future__ import annotations

import time
from pathlib import Path

import click

from shipyard.artifacts.build import build_image
from shipyard.artifacts.describe import inspect_artifact, list_artifacts
from shipyard.artifacts.stores import cli_store_location, current_digest, moved_tag_warning, open_store
from shipyard.cli.output import OUTPUT_OPTION, emit, info, table

STORE_OPTION = click.option(
    "--store", metavar="DIR|REGISTRY",
    help="An OCI layout directory or a registry HOST[:PORT]/PREFIX (default: $SHIPYARD_STORE, else `store:` of "
         "the nearest shipyard.yaml, else ~/.shipyard/artifacts).")
SOURCE_DIR = click.argument("source", metavar="SOURCE_DIR",
                            type=click.Path(exists=True, file_okay=False, path_type=Path))


@click.command(epilog="""\b
SOURCE_DIR holds the service's code and its artifact.yaml (apiVersion shipyard/v1, kind Artifact).
The same sources always give the same digest; the version tags it in the store.

\b
Examples:
  shipyard build examples/shop/apps/catalog --version 1.3.0
  shipyard build ./catalog --version 1.3.0 --store registry.example.com:5000/shop
  SHIPYARD_STORE=/srv/artifacts shipyard build ./catalog --version 1.3.0
""")
@SOURCE_DIR
@click.option("--version", "version", required=True, metavar="V", help="The version (tag) to publish it as.")
@STORE_OPTION
def build(source: Path, version: str, store: str | None) -> None:
    """Build a service's source directory into one OCI image and publish it to the store."""
    started = time.monotonic()
    target = open_store(cli_store_location(store, source))
    descriptor, image = build_image(source, version)
    before = current_digest(target, descriptor.name, version)
    digest = target.push(descriptor.name, version, image)
    size = sum(len(blob) for blob in image.blobs.values())
    info(f"built {descriptor.name}:{version} in {time.monotonic() - started:.2f}s ({size} bytes) → "
         f"{target.location}")
    moved = moved_tag_warning(descriptor.name, version, before, digest)
    if moved:
        info(moved)
    click.echo(f"{descriptor.name}:{version}@{digest}")


@click.group(epilog="""\b
Examples:
  shipyard artifacts list
  shipyard artifacts list catalog -o json
  shipyard artifacts inspect catalog:1.3.0 -o json
""")
def artifacts() -> None:
    """List and inspect the artifacts in a store."""


@artifacts.command("list", epilog="""\b
Examples:
  shipyard artifacts list
  shipyard artifacts list catalog --store 127.0.0.1:5000/shop -o json
""")
@click.argument("name", required=False)
@STORE_OPTION
@OUTPUT_OPTION
def list_command(name: str | None, store: str | None, output: str) -> None:
    """Every version of NAME (or of every artifact) with its digest and source revision."""
    rows = list_artifacts(open_store(cli_store_location(store, Path.cwd())), name)
    if output != "table":
        emit(rows, output)
        return
    table(["name", "version", "digest", "created", "revision", "kind"],
          [(r["name"], r["version"], r["digest"][:19], r["created"],
            (r["source"]["revision"] or "")[:12] + (" (dirty)" if r["source"]["dirty"] else ""), r["kind"])
           for r in rows])


@artifacts.command("inspect", epilog="""\b
Examples:
  shipyard artifacts inspect catalog:1.3.0
  shipyard artifacts inspect catalog:1.3.0 -o json | jq '.pipeline'
""")
@click.argument("reference", metavar="NAME:VERSION")
@STORE_OPTION
@OUTPUT_OPTION
def inspect_command(reference: str, store: str | None, output: str) -> None:
    """An artifact's digest, provenance (source, revision, created) and pipeline results."""
    name, sep, version = reference.partition(":")
    if not sep or not name or not version:
        raise click.UsageError(f"expected NAME:VERSION, got {reference!r}")
    record = inspect_artifact(open_store(cli_store_location(store, Path.cwd())), name, version)
    if output != "table":
        emit(record, output)
        return
    source = record["source"]
    lines = [("name", record["name"]), ("version", record["version"]), ("digest", record["digest"]),
             ("kind", record["kind"]), ("size", record["size"]), ("created", record["created"]),
             ("source", source["url"]), ("revision", source["revision"] + (" (dirty)" if source["dirty"] else "")),
             ("command", " ".join(record["command"])), ("workdir", record["workdir"])]
    table(["field", "value"], lines)
    if record["pipeline"]:
        table(["stage", "result", "seconds", "tests"],
              [(s["stage"], s["result"], s["seconds"], _tests(s)) for s in record["pipeline"]], title="pipeline")


def _tests(stage: dict[str, object]) -> str | None:
    tests = stage.get("tests")
    if not isinstance(tests, dict):
        return None
    return ", ".join(f"{value} {key}" for key, value in tests.items())


COMMANDS = [build, artifacts]


@click.group(epilog="""\b
Examples:
  shipyard pipeline run examples/shop/apps/catalog --version 1.3.0
""")
def pipeline() -> None:
    """Run a service's pipeline: test, build once, test the artifact, publish."""


@pipeline.command("run", epilog="""\b
The stages come from artifact.yaml (`pipeline.stages`). They run in order, sandboxed with only
SOURCE_DIR writable; the `component` stage runs after the build against the built artifact, started
in a throwaway sandbox, at $TARGET_URL. The first failure stops the pipeline: exit 1, nothing
published. A stage may write JUnit XML to $SHIPYARD_JUNIT_XML for test counts in the provenance.

\b
Examples:
  shipyard pipeline run examples/shop/apps/catalog --version 1.3.0
  shipyard pipeline run ./catalog --version 1.3.0 --store 127.0.0.1:5000/shop -o json
  shipyard pipeline run ./catalog --version 1.3.0 --bump dev --project ~/src/shop-config   # and commit it to dev
""")
@SOURCE_DIR
@click.option("--version", "version", required=True, metavar="V", help="The version (tag) to publish it as.")
@STORE_OPTION
@click.option("-o", "--output", type=click.Choice(["text", "json", "yaml"]), default="text", show_default=True)
@click.option("--bump", "bump_env", metavar="ENV", help="After publishing, commit the version into ENV's overlay of "
              "the config repository clone --project (and push it), as an automation rule would.")
@click.option("--project", "project_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=".",
              show_default=True, help="The clone of the config repository for --bump.")
def pipeline_run(source: Path, version: str, store: str | None, output: str, bump_env: str | None,
                 project_dir: Path) -> None:
    """Run the stages, build the artifact once, test it, and publish it with the stage results."""
    from shipyard.artifacts.pipeline import run_pipeline

    target = open_store(cli_store_location(store, source))
    started = time.monotonic()
    run = run_pipeline(source, version, target, info)
    if output != "text":
        emit(run.to_dict(), output)
    if run.failed:
        raise click.ClickException(f"pipeline failed at stage `{run.failed}`; nothing was published")
    info(f"pipeline passed in {time.monotonic() - started:.2f}s")
    if output == "text":
        click.echo(f"{run.name}:{version}@{run.digest}")
    if bump_env:
        from shipyard.promotion.bump import bump

        revision = (run.to_dict().get("source") or {}).get("revision")
        services, commit, pushed = bump(project_dir, bump_env, run.name, version, run.digest, revision,
                                        "shipyard pipeline run --bump")
        where = f"; pushed to {pushed}" if pushed else " (no upstream: push it yourself)"
        info(f"{', '.join(services)} {version} committed into {bump_env}: {commit.short}{where}")


COMMANDS.append(pipeline)
