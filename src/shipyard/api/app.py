"""HTTP routes of the control plane: status, apply, down, events, metrics, rollouts, git (api/gitops.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from shipyard.api.gitops import FOLLOWING_GIT, gitops_routes
from shipyard.api.input import JSON_ERRORS, BodyLimit, json_body, optional_str, query_int
from shipyard.api.rollouts import rollout_routes
from shipyard.api.sessions import Sessions
from shipyard.api.tokens import token_routes
from shipyard.engine.metrics import render_metrics
from shipyard.engine.status import status_document
from shipyard.errors import ShipyardError, SpecError
from shipyard.ui.pages import ui_routes

if TYPE_CHECKING:
    from shipyard.daemon import ControlPlane


def build_app(plane: "ControlPlane") -> Starlette:
    async def status(request: Request) -> Response:
        return JSONResponse(status_document(plane.reconciler, plane.api, plane.source_status()))

    async def apply(request: Request) -> Response:
        body = await json_body(request)
        directory = Path(text) if (text := optional_str(body, "directory")) else None
        if plane.follower is not None:
            return _error(409, "FollowingGit", FOLLOWING_GIT)
        if plane.reconciler.suspended:
            return _error(409, "Suspended", "the environment is suspended: `shipyard resume` first")
        try:
            desired = await plane.apply_async(directory)
        except SpecError as exc:
            return _error(422, "ValidationFailed", str(exc), problems=[str(p) for p in exc.problems])
        except ShipyardError as exc:
            return _error(400, "ApplyFailed", str(exc))
        return JSONResponse({"revision": desired.revision,
                             "services": {n: s.release.id for n, s in desired.services.items()}})

    async def down(request: Request) -> Response:
        await plane.take_down()
        asyncio.get_running_loop().call_later(0.1, plane.shutdown.set)
        return JSONResponse({"stopped": True})

    async def events(request: Request) -> Response:
        after = query_int(request, "after", 0, maximum=2**62) if "after" in request.query_params else None
        limit = query_int(request, "limit", 200)
        return JSONResponse(plane.store.events(after=after, limit=limit))

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(render_metrics(plane.reconciler), media_type="text/plain; version=0.0.4")

    async def rollout_history(request: Request) -> Response:
        service = request.path_params["service"]
        return JSONResponse([_with_artifact(plane.store, vars(r)) for r in plane.store.rollout_history(service)])

    async def healthz(request: Request) -> Response:
        healthy, reason = plane.health()  # 503 when the loop has not completed a pass lately or a task is down
        return PlainTextResponse(reason, status_code=200 if healthy else 503)

    routes = [
        Route("/healthz", healthz),
        Route("/status", status),
        Route("/apply", apply, methods=["POST"]),
        Route("/down", down, methods=["POST"]),
        Route("/events", events),
        Route("/metrics", metrics),
        Route("/rollouts/{service}/history", rollout_history),
    ]
    routes += rollout_routes(plane)
    routes += gitops_routes(plane)
    routes += token_routes(plane)
    sessions = Sessions()
    routes += ui_routes(plane, sessions)  # the dashboard (shipyard/ui)
    app = Starlette(routes=routes, middleware=[Middleware(BodyLimit)], exception_handlers=JSON_ERRORS)
    app.state.plane, app.state.sessions = plane, sessions  # read by api/auth.py's TokenAuth
    return app


def _error(code: int, reason: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": reason, "message": message, **extra}, status_code=code)


def _with_artifact(store: Any, record: dict[str, Any]) -> dict[str, Any]:
    """A rollout record with its target release's version and artifact digest (None for a local source)."""
    release = store.release(record.get("target") or "")
    return {**record, "version": release.version if release else None,
            "digest": (release.digest or None) if release else None}
