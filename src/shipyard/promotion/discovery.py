"""Finding each environment's control plane: on this machine through the capacity ledger (or
`.shipyard/ENV`), elsewhere through `environments[].api` in shipyard.yaml plus `$SHIPYARD_TOKEN_<ENV>`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import httpx

from shipyard.api.unix_transport import unix_transport
from shipyard.errors import ControlPlaneError
from shipyard.runtime import procfs
from shipyard.spec.models import Project
from shipyard.state.control import read_control
from shipyard.state.ledger import ledger_path, live_entries


def token_env(environment: str) -> str:
    return "SHIPYARD_TOKEN_" + environment.upper().replace("-", "_")


def state_dirs() -> dict[str, list[Path]]:
    """environment → state dirs of the control planes running on this machine."""
    found: dict[str, list[Path]] = {}
    for entry in live_entries(ledger_path(), procfs.is_running):
        found.setdefault(entry.environment, []).append(Path(entry.state_dir))
    return found


def environment_status(project: Optional[Project], environment: str, project_dir: Path | None = None,
                       timeout: float = 5.0) -> dict[str, Any]:
    """The status document of ENVIRONMENT's control plane; ControlPlaneError when it cannot be asked."""
    stage = project.stage(environment) if project is not None else None
    if stage is not None and stage.api:
        return _ask(stage.api, os.environ.get(token_env(environment)), timeout)
    local = state_dirs().get(environment, [])
    candidates = [*local, *(p for p in [Path(".shipyard") / environment,
                                        *([project_dir / ".shipyard" / environment] if project_dir else [])]
                            if p.is_dir())]
    for state_dir in candidates:
        control = read_control(state_dir)
        if control is None:
            continue
        socket = control.get("socket")
        try:
            return _ask(f"unix://{socket}" if socket else control["api"], None, timeout)
        except ControlPlaneError:
            continue
    raise ControlPlaneError(f"no control plane of {environment} runs on this machine, and shipyard.yaml gives no "
                            f"`api` for it")


def _ask(api: str, token: Optional[str], timeout: float) -> dict[str, Any]:
    transport = unix_transport(api.removeprefix("unix://")) if api.startswith("unix://") else None
    base = "http://shipyard" if transport is not None else api.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token and transport is None else {}
    try:
        with httpx.Client(transport=transport, timeout=timeout) as client:
            response = client.get(base + "/status", headers=headers)
    except httpx.HTTPError as exc:
        raise ControlPlaneError(f"{api} did not answer ({exc.__class__.__name__})") from exc
    if response.status_code != 200:
        raise ControlPlaneError(f"{api} answered HTTP {response.status_code}")
    document: dict[str, Any] = response.json()
    return document


def version_matrix(project_dir: Path, known: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """`shipyard versions` (and the dashboard's matrix): declared versions from the project at PROJECT_DIR,
    the rest from each environment's control plane (KNOWN: status documents already at hand)."""
    from shipyard.errors import SpecError
    from shipyard.promotion.matrix import matrix
    from shipyard.spec.load import load_project
    from shipyard.spec.render import render_environment

    source = load_project(project_dir)
    if source.problems or source.project is None:
        raise SpecError(source.problems)
    names = source.project.environment_names
    declared: dict[str, dict[str, str]] = {}
    for env in names:
        rendered, _ = render_environment(source, env)
        declared[env] = {n: s.version for n, s in rendered.services.items()} if rendered is not None else {}
    statuses: dict[str, dict[str, Any] | None] = {}
    for env in names:
        if known and env in known:
            statuses[env] = known[env]
            continue
        try:
            statuses[env] = environment_status(source.project, env, project_dir)
        except ControlPlaneError:
            statuses[env] = None
    return matrix(names, declared, statuses)
