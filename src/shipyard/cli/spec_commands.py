"""Commands that read a config repository offline: validate, render, schema."""

from __future__ import annotations

from pathlib import Path

import click

from shipyard.cli.output import emit, info, to_json
from shipyard.errors import SpecError
from shipyard.preview.revisions import History, is_url, parse_date
from shipyard.spec.load import load_project
from shipyard.spec.render import check, render
from shipyard.spec.schema import json_schema

PROJECT_DIR = click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")


@click.command(epilog="""\b
Examples:
  shipyard validate examples/shop
  shipyard validate examples/shop --env prod
""")
@PROJECT_DIR
@click.option("--env", "environment", metavar="NAME", help="Check only this environment (default: all).")
def validate(directory: Path, environment: str | None) -> None:
    """Check a config repository and report every problem as FILE:LINE:COL: error: FIELD: message."""
    _require_dir(directory)
    problems = check(directory, environment)
    if problems:
        raise SpecError(problems)
    source = load_project(directory)
    environments = [environment] if environment else sorted(source.environments)
    info(f"{directory}: valid — project {source.project.name if source.project else '?'}, "
         f"{len(source.services)} services, environments {', '.join(environments)}")


@click.command(epilog="""\b
SOURCE is a project directory (rendered as it is on disk), or with --at or --ref a directory in a
git repository or a git URL (rendered from a clean snapshot of a commit).

\b
Examples:
  shipyard render examples/shop --env prod
  shipyard render examples/shop --env dev -o json | jq '.services.catalog.replicas'
  shipyard render . --env prod --at 3f2a9c1d
  shipyard render . --env prod --at 2024-05-01T12:00:00Z --ref main
  shipyard render https://git.example.com/shop.git --path deploy --env prod --at v1.4.0
""")
@click.argument("source", metavar="SOURCE", default=".")
@click.option("--env", "environment", metavar="NAME", required=True, help="The environment to render.")
@click.option("--at", metavar="COMMIT|DATE",
              help="Render it as it was at this commit, or at this date (the latest commit on --ref at or before "
                   "it; ISO 8601, local time unless a zone is given).")
@click.option("--path", "subdir", metavar="SUBDIR", help="The project's directory inside SOURCE.")
@click.option("--ref", metavar="BRANCH",
              help="The branch to read (default: the checked-out branch of a local repository, else main).")
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
def render_command(source: str, environment: str, at: str | None, subdir: str | None, ref: str | None,
                   output: str) -> None:
    """Print the fully merged desired state of an environment, every default filled in."""
    if at is None and ref is None and not is_url(source):
        directory = Path(source) / (subdir or "")
        _require_dir(directory)
        emit(render(directory, environment).to_dict(), output)
        return
    history = History.open(source, path=subdir, ref=ref)
    commit = history.find(at)
    info(f"{history.label}: {environment} at {commit.short} ({commit.date.isoformat()}) {commit.message}")
    # the images as they were then: at the date asked for, else when the commit landed
    as_of = (parse_date(at) or commit.date) if at else None
    emit(history.render(commit, environment, as_of), output)


render_command.name = "render"


@click.command(epilog="""\b
Example (VS Code, redhat.vscode-yaml), in settings.json:
  "yaml.schemas": {"./shipyard.schema.json": ["shipyard.yaml", "services/*.yaml", "environments/*.yaml"]}
  after: shipyard schema > shipyard.schema.json
""")
def schema() -> None:
    """Print the JSON Schema of the config format, for editors' YAML language servers."""
    click.echo(to_json(json_schema()))


def _require_dir(directory: Path) -> None:
    if not directory.is_dir():
        raise click.UsageError(f"no such directory: {directory}")


COMMANDS = [validate, render_command, schema]
