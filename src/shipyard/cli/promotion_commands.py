"""`shipyard promote` (a promotion commit in a clone of the config repository) and `shipyard versions`
(the service × environment matrix)."""

from __future__ import annotations

import getpass
import socket
from pathlib import Path
from typing import Any

import click

from shipyard.cli.output import OUTPUT_OPTION, emit, info, table
from shipyard.errors import ControlPlaneError, ShipyardError, SpecError
from shipyard.promotion.commits import Move, promotion_message, refusal
from shipyard.promotion.discovery import environment_status, version_matrix
from shipyard.promotion.overlay import set_version
from shipyard.source.errors import SourceError
from shipyard.source.git import LocalRepo
from shipyard.spec.load import load_project
from shipyard.spec.models import Project
from shipyard.spec.render import render_environment


class PromotionError(ShipyardError):
    """A version may not (or could not) be promoted."""


def _project(directory: Path) -> tuple[Project, Any]:
    source = load_project(directory)
    if source.problems or source.project is None:
        raise SpecError(source.problems)
    return source.project, source


def _declared(source: Any, environment: str) -> dict[str, str]:
    rendered, problems = render_environment(source, environment)
    if rendered is None:
        return {}
    return {name: service.version for name, service in rendered.services.items()}


@click.command(epilog="""\b
Runs in a clone of the config repository (the current directory, or --project DIR): edits
environments/TO.yaml (one line per service; comments and layout kept), commits there, and pushes when
the branch tracks a remote. A version must be verified in --from (its rollout completed, it soaked,
its checks passed); --force promotes anyway and says so in the commit.

\b
Examples:
  shipyard promote catalog --from dev --to prod
  shipyard promote catalog --from dev --to prod --version 1.4.0
  shipyard promote --all --from staging --to prod
  shipyard promote orders --from dev --to prod --force --project ~/src/shop-config
""")
@click.argument("service", required=False)
@click.option("--from", "source_env", metavar="ENV", required=True, help="Where the version is verified.")
@click.option("--to", "target_env", metavar="ENV", required=True, help="The environment whose overlay changes.")
@click.option("--version", metavar="V", help="The version to promote [default: the one verified in --from].")
@click.option("--all", "everything", is_flag=True, help="Every service verified in --from, in one commit.")
@click.option("--force", is_flag=True, help="Promote even if not verified (recorded in the commit).")
@click.option("--project", "project_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=".",
              show_default=True, help="The clone of the config repository.")
def promote(service: str | None, source_env: str, target_env: str, version: str | None, everything: bool,
            force: bool, project_dir: Path) -> None:
    """Promote a verified version from one environment to the next by a git commit."""
    if bool(service) == everything:
        raise click.UsageError("name a SERVICE or give --all")
    if everything and version:
        raise click.UsageError("--version goes with one SERVICE, not --all")
    project, source = _project(project_dir)
    names = project.environment_names
    for env in (source_env, target_env):
        if env not in names:
            raise click.UsageError(f"unknown environment {env!r} (the promotion path is {' → '.join(names)})")
    if names.index(target_env) <= names.index(source_env):
        raise PromotionError(f"{target_env} does not come after {source_env} on the promotion path "
                             f"({' → '.join(names)})")
    try:
        status = environment_status(project, source_env, project_dir)
    except ControlPlaneError as exc:
        if not force:
            raise PromotionError(f"cannot tell what is verified in {source_env}: {exc} (--force promotes anyway)") \
                from None
        status = {"services": []}
    running = {s["name"]: s for s in status.get("services", [])}
    declared = _declared(source, target_env)
    candidates = sorted(running) if everything else [service or ""]
    moves: list[Move] = []
    forced: list[str] = []
    for name in candidates:
        if name not in declared:
            if everything:
                continue
            raise PromotionError(f"service {name!r} is not deployed in {target_env}")
        entry = running.get(name, {})
        verification = entry.get("verified")
        wanted = version or (verification or {}).get("version") or entry.get("version")
        if wanted is None:
            raise PromotionError(f"{name} is not deployed in {source_env}: nothing to promote")
        if wanted == declared[name]:
            if not everything:
                info(f"{name} {wanted} is already what {target_env} runs: nothing to promote")
            continue
        why = refusal(verification, source_env, wanted, status.get("rejected"))
        if why is not None and not force:
            if everything:
                info(f"skipped {name}: {why}")
                continue
            raise PromotionError(f"{name}: {why} (--force promotes anyway)")
        if why is not None:
            forced.append(f"{name}: {why}")
        moves.append(Move(name, wanted, (verification or {}).get("digest") if (verification or {}).get("version") ==
                          wanted else None, declared[name], verification=verification))
    if not moves:
        info("nothing to promote")
        return
    _commit(project_dir, source, project, moves, source_env, target_env, "; ".join(forced) or None)


def _commit(project_dir: Path, source: Any, project: Project, moves: list[Move], source_env: str,
            target_env: str, forced: str | None) -> None:
    repo = LocalRepo(project_dir)
    if not repo.is_writable_local():
        raise PromotionError(f"{project_dir} is not a writable clone of the config repository")
    document, _ = source.environments[target_env]
    path = (source.root / document.file).resolve()
    text = path.read_text()
    for move in moves:
        text = set_version(text, move.service, move.version)
    top = Path(repo._git("rev-parse", "--show-toplevel", what="cannot find the repository").strip())
    who = f"shipyard promote ({getpass.getuser()}@{socket.gethostname()})"
    message = promotion_message(moves, source_env, target_env, who, forced)
    try:
        commit = repo.commit_file(str(path.relative_to(top)) if path.is_relative_to(top) else str(path), text,
                                  message)
        pushed = repo.push() if repo.upstream() else None
    except SourceError as exc:
        raise PromotionError(str(exc)) from None
    where = f"; pushed to {pushed}" if pushed else " (no upstream: push it yourself)"
    what = ", ".join(f"{m.service} {m.previous} → {m.version}" for m in moves)
    click.echo(f"promoted {what} from {source_env} to {target_env}: commit {commit.short}{where}")
    if forced:
        info(f"warning: forced: {forced}")


@click.command(epilog="""\b
Declared versions come from the project (git); what runs, its digest, rollout state and
verification come from each environment's control plane: on this machine through the capacity
ledger, elsewhere through `environments[].api` in shipyard.yaml ($SHIPYARD_TOKEN_<ENV>). An
environment that cannot be asked shows `unknown`.

\b
Examples:
  shipyard versions examples/shop
  shipyard versions -o json | jq '.services.catalog.prod.running'
""")
@click.argument("project_dir", metavar="PROJECT", type=click.Path(file_okay=False, exists=True, path_type=Path),
                default=".")
@OUTPUT_OPTION
def versions(project_dir: Path, output: str) -> None:
    """Show where every version runs: the service × environment matrix."""
    result = version_matrix(project_dir)
    names = result["environments"]
    if output != "table":
        emit(result, output)
        return
    rows = []
    for name, row in result["services"].items():
        cells = []
        for env in names:
            cell = row[env]
            text = f"{cell['declared'] or '-'}"
            if cell["running"] not in (None, cell["declared"]):
                text += f" (runs {cell['running']})"
            if cell["verified"] not in (None, "unknown"):
                text += f" {cell['verified']}"
            elif cell["running"] == "unknown":
                text += " unknown"
            cells.append(text)
        rows.append([name, *cells])
    table(["SERVICE", *(env.upper() for env in names)], rows)


COMMANDS = [promote, versions]
