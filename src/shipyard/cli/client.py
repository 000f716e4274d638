"""Finding and calling a control plane's API from the command line.

Locally the CLI talks over the state directory's Unix socket (`STATE/api.sock`). On another machine,
`SHIPYARD_API=http://HOST:PORT` (a control plane started with `up --api-listen`) and `SHIPYARD_TOKEN`
(the content of its `STATE/token`) point the CLI at it instead of a state directory.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

import click
import httpx

from shipyard.api.unix_transport import unix_transport
from shipyard.state.control import read_control
from shipyard.errors import ControlPlaneError

API_ENV, TOKEN_ENV = "SHIPYARD_API", "SHIPYARD_TOKEN"
STATE_DIR_ONLY_OPTION = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), envvar="SHIPYARD_STATE_DIR",
    help="The control plane's state directory [env SHIPYARD_STATE_DIR; default .shipyard/ENV, or the only one there].",
)
_Command = TypeVar("_Command", bound=Callable[..., Any])


def STATE_DIR_OPTION(command: _Command) -> _Command:  # noqa: N802 - used like the click options it stands for
    """`--state-dir DIR` and `--env NAME` (short for `--state-dir .shipyard/NAME`); the command gets `state_dir`."""

    @functools.wraps(command)
    def wrapper(*args: Any, env_name: str | None = None, **kwargs: Any) -> Any:
        if env_name is not None:
            kwargs["state_dir"] = state_dir_for_env(env_name, kwargs.get("state_dir"))
        return command(*args, **kwargs)

    env_option = click.option("--env", "env_name", metavar="NAME",
                              help="The environment's control plane: the same as --state-dir .shipyard/NAME.")
    return STATE_DIR_ONLY_OPTION(env_option(wrapper))  # type: ignore[return-value]


def state_dir_for_env(name: str, state_dir: Path | None) -> Path:
    """`.shipyard/NAME`; an explicit --state-dir that names another directory is a usage error."""
    chosen = Path(".shipyard") / name
    ctx = click.get_current_context(silent=True)
    explicit = ctx is not None and ctx.get_parameter_source("state_dir") == click.core.ParameterSource.COMMANDLINE
    if explicit and state_dir is not None and state_dir.resolve() != chosen.resolve():
        raise click.UsageError(f"--env {name} means --state-dir {chosen}, not {state_dir}: give one of them")
    return chosen


def resolve_state_dir(state_dir: Path | None, environment: str | None = None) -> Path:
    """The explicit dir, else `.shipyard/<env>`, else the only environment under `.shipyard/`."""
    if state_dir is not None:
        return state_dir
    if os.environ.get(API_ENV) and not environment:
        return Path(".")  # the remote API is the target; no local state dir is needed
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
    raise ControlPlaneError(f"several environments in .shipyard/ ({names}): pass --env NAME")


class Client:
    """A thin JSON client for one control plane."""

    def __init__(self, state_dir: Path, remote: bool = True) -> None:
        """The control plane of STATE_DIR, or the one SHIPYARD_API names (unless REMOTE is False)."""
        self.state_dir = state_dir
        self.pid: int | None = None  # None: a remote control plane (SHIPYARD_API)
        self.token = os.environ.get(TOKEN_ENV) or None
        url = os.environ.get(API_ENV) if remote else None
        if url:
            self.api = url.rstrip("/")
            self._base, self._transport = _endpoint(self.api)
            return
        control = read_control(state_dir)
        if control is None:
            raise ControlPlaneError(f"no control plane has run in {state_dir}: start one with `shipyard up`")
        self.api = control["api"]
        self.pid = control["pid"]
        self._base, self._transport = _endpoint(f"unix://{control['socket']}" if control.get("socket") else self.api)

    def alive(self) -> bool:
        if self.pid is None:
            return True  # a remote control plane: only a request can tell
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def request(self, method: str, path: str, timeout: float = 30.0, **kwargs: Any) -> Any:
        try:
            with httpx.Client(transport=self._transport, timeout=timeout) as http:
                response = http.request(method, self._base + path, headers=self._headers(), **kwargs)
        except httpx.HTTPError as exc:
            state = "is not running" if not self.alive() else f"did not answer ({exc})"
            if self.pid is None:
                raise ControlPlaneError(f"the control plane at {self.api} ({API_ENV}) {state}") from exc
            raise ControlPlaneError(f"the control plane for {self.state_dir} {state}; "
                                    f"start it with `shipyard up`") from exc
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"message": response.text}
            raise ApiError(response.status_code, body)
        return response.json() if "json" in response.headers.get("content-type", "") else response.text

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token and self._transport is None else {}


def _endpoint(api: str) -> tuple[str, httpx.HTTPTransport | None]:
    """(base URL, transport) for an API address: `unix:///path/api.sock` or `http(s)://host:port`."""
    if api.startswith("unix://"):
        return "http://shipyard", unix_transport(api.removeprefix("unix://"))
    if not api.startswith(("http://", "https://")):
        raise ControlPlaneError(f"{API_ENV} must be an http(s):// URL, not {api!r}")
    return api, None


class ApiError(ControlPlaneError):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body = status, body
        super().__init__(body.get("message") or body.get("error") or f"HTTP {status}")
