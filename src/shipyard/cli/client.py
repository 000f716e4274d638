"""Finding and calling a control plane's API from the command line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import httpx

from shipyard.state.control import read_control
from shipyard.errors import ControlPlaneError

STATE_DIR_OPTION = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), envvar="SHIPYARD_STATE_DIR",
    help="The control plane's state directory [env SHIPYARD_STATE_DIR; default .shipyard/ENV, or the only one there].",
)


def resolve_state_dir(state_dir: Path | None, environment: str | None = None) -> Path:
    """The explicit dir, else `.shipyard/<env>`, else the only environment under `.shipyard/`."""
    if state_dir is not None:
        return state_dir
    root = Path(".shipyard")
    if environment:
        return root / environment
    candidates = sorted(p for p in root.iterdir() if (p / "state.db").exists()) if root.is_dir() else []
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ControlPlaneError("no control plane state in .shipyard/: start one with `shipyard up DIR --env NAME`, "
                                "or pass --state-dir")
    names = ", ".join(p.name for p in candidates)
    raise ControlPlaneError(f"several environments in .shipyard/ ({names}): pass --state-dir .shipyard/NAME")


class Client:
    """A thin JSON client for one control plane."""

    def __init__(self, state_dir: Path) -> None:
        control = read_control(state_dir)
        if control is None:
            raise ControlPlaneError(f"no control plane has run in {state_dir}: start one with `shipyard up`")
        self.api: str = control["api"]
        self.pid: int = control["pid"]
        self.state_dir = state_dir

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def request(self, method: str, path: str, timeout: float = 30.0, **kwargs: Any) -> Any:
        try:
            response = httpx.request(method, self.api + path, timeout=timeout, **kwargs)
        except httpx.HTTPError as exc:
            state = "is not running" if not self.alive() else f"did not answer ({exc})"
            raise ControlPlaneError(f"the control plane for {self.state_dir} {state}; "
                                    f"start it with `shipyard up`") from exc
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"message": response.text}
            raise ApiError(response.status_code, body)
        return response.json() if "json" in response.headers.get("content-type", "") else response.text


class ApiError(ControlPlaneError):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body = status, body
        super().__init__(body.get("message") or body.get("error") or f"HTTP {status}")
