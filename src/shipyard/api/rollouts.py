"""HTTP routes that steer a service's rollout: undo (and the progressive-delivery commands)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from shipyard.daemon import ControlPlane


def rollout_routes(plane: "ControlPlane") -> list[Route]:
    reconciler = plane.reconciler

    async def undo(request: Request) -> Response:
        body: dict[str, Any] = await request.json() if await request.body() else {}
        try:
            release = reconciler.undo(request.path_params["service"], body.get("to"))
        except ShipyardError as exc:
            return JSONResponse({"error": "UndoRefused", "message": str(exc)}, status_code=409)
        return JSONResponse({"release": release.id, "version": release.version})

    return [Route("/rollouts/{service}/undo", undo, methods=["POST"])]
