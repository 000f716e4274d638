"""HTTP routes of the control plane: status, apply, down, events, metrics, rollouts, git (api/gitops.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from shipyard.api.gitops import FOLLOWING_GIT, gitops_routes
from shipyard.api.rollouts import rollout_routes
from shipyard.engine.metrics import render_metrics
from shipyard.engine.status import status_document
from shipyard.errors import ShipyardError, SpecError

if TYPE_CHECKING:
    from shipyard.daemon import ControlPlane


def build_app(plane: "ControlPlane") -> Starlette:
    async def status(request: Request) -> Response:
        return JSONResponse(status_document(plane.reconciler, plane.api, plane.source_status()))

    async def apply(request: Request) -> Response:
        body: dict[str, Any] = await request.json() if await request.body() else {}
        directory = Path(body["directory"]) if body.get("directory") else None
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
        after = int(request.query_params.get("after", 0))
        limit = int(request.query_params.get("limit", 200))
        return JSONResponse(plane.store.events(after=after, limit=limit))

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(render_metrics(plane.reconciler), media_type="text/plain; version=0.0.4")

    async def rollout_history(request: Request) -> Response:
        service = request.path_params["service"]
        return JSONResponse([vars(r) for r in plane.store.rollout_history(service)])

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
    return Starlette(routes=routes)


def _error(code: int, reason: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": reason, "message": message, **extra}, status_code=code)
