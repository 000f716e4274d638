"""Helpers that write small config repositories for tests, using the probe test service."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

PROBE_APP = Path(__file__).parent / "fixtures" / "apps" / "probe"


def write_yaml(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    with open(path, "w") as handle:
        yaml.dump(data, handle)


def probe_service(name: str, **overrides: Any) -> dict[str, Any]:
    """A Service document running the probe app, quick to start and to stop."""
    service: dict[str, Any] = {
        "apiVersion": "shipyard/v1", "kind": "Service", "name": name, "version": "1.0.0",
        "artifact": {"path": "apps/probe", "command": ["python3", "app.py"]},
        "replicas": 1,
        "resources": {"cpu": "100m", "memory": "64Mi"},
        "health": {"readiness": {"path": "/healthz", "interval": "200ms", "timeout": "1s", "failureThreshold": 2},
                   "liveness": {"path": "/healthz", "interval": "500ms", "timeout": "1s", "failureThreshold": 2},
                   "startupTimeout": "10s"},
        "stop": {"gracePeriod": "3s"},
    }
    service.update(overrides)
    return service


def write_project(root: Path, services: list[dict[str, Any]], overlays: dict[str, dict[str, Any]] | None = None,
                  environment: str = "dev") -> Path:
    """A project with the given base services, all deployed in one environment (with optional overlays)."""
    write_yaml(root / "shipyard.yaml", {"apiVersion": "shipyard/v1", "kind": "Project", "name": "test",
                                        "environments": [environment]})
    for service in services:
        write_yaml(root / "services" / f"{service['name']}.yaml", service)
    overlays = overlays or {}
    write_yaml(root / "environments" / f"{environment}.yaml", {
        "apiVersion": "shipyard/v1", "kind": "Environment", "name": environment,
        "services": {s["name"]: overlays.get(s["name"], {}) for s in services}})
    if not (root / "apps" / "probe").exists():
        shutil.copytree(PROBE_APP, root / "apps" / "probe")
    return root
