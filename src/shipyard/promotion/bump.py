"""`pipeline run --bump ENV`: right after publishing, commit the new version into ENV's overlay of a clone
of the config repository (for CI without a watching control plane) — the same commit automation makes."""

from __future__ import annotations

from pathlib import Path

from shipyard.errors import ShipyardError, SpecError
from shipyard.promotion.commits import Move, automation_message
from shipyard.promotion.overlay import declared_version, set_version
from shipyard.source.git import Commit, LocalRepo
from shipyard.spec.load import load_project, service_data


def bump(project_dir: Path, environment: str, image: str, version: str, digest: str,
         source_revision: str | None, by: str) -> tuple[list[str], Commit, str | None]:
    """Set VERSION for every service of the project running IMAGE in ENVIRONMENT's overlay; commit (and push
    when the branch tracks a remote). Returns (services, commit, upstream pushed to)."""
    source = load_project(project_dir)
    if source.problems or source.project is None:
        raise SpecError(source.problems)
    if environment not in source.environments:
        raise ShipyardError(f"no environment {environment!r} in {project_dir} "
                            f"(environments: {', '.join(sorted(source.environments))})")
    services = sorted(name for name, document in source.services.items()
                      if (service_data(document).get("artifact") or {}).get("image") == image)
    if not services:
        raise ShipyardError(f"no service of {project_dir} runs the artifact {image!r} (`artifact: {{image: {image}}}`)")
    document, _ = source.environments[environment]
    path = (source.root / document.file).resolve()
    text = path.read_text()
    moves = [Move(name, version, digest, declared_version(text, name), source_revision) for name in services]
    for move in moves:
        text = set_version(text, move.service, version)
    repo = LocalRepo(project_dir)
    if not repo.is_writable_local():
        raise ShipyardError(f"{project_dir} is not a writable clone of the config repository")
    top = Path(repo._git("rev-parse", "--show-toplevel", what="cannot find the repository").strip())
    message = "".join(automation_message(move, environment, by) for move in moves[:1])
    if len(moves) > 1:
        message += "".join(f"Also: {m.service}\n" for m in moves[1:])
    commit = repo.commit_file(str(path.relative_to(top)), text, message)
    pushed = repo.push() if repo.upstream() else None
    return services, commit, pushed
