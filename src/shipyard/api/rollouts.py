"""HTTP routes that steer a service's rollout: undo (and the progressive-delivery commands)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shipyard.api.input import json_body, optional_str
from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from shipyard.daemon import ControlPlane


def rollout_routes(plane: "ControlPlane") -> list[Route]:
    reconciler = plane.reconciler

    async def undo(request: Request) -> Response:
        body = await json_body(request)
        try:
            release = reconciler.undo(request.path_params["service"], optional_str(body, "to"))
        except ShipyardError as exc:
            return JSONResponse({"error": "UndoRefused", "message": str(exc)}, status_code=409)
        return JSONResponse({"release": release.id, "version": release.version})

    async def command(request: Request) -> Response:
        body = await json_body(request)
        verb = request.path_params["verb"]
        if verb not in VERBS:
            return JSONResponse({"error": "NotFound", "message": f"no rollout command {verb!r}"}, status_code=404)
        try:
            rollout = reconciler.command(request.path_params["service"], verb, full=bool(body.get("full")))
        except ShipyardError as exc:
            return JSONResponse({"error": f"{verb.capitalize()}Refused", "message": str(exc)}, status_code=409)
        return JSONResponse(dataclasses.asdict(rollout))

    async def diff(request: Request) -> Response:
        service = request.path_params["service"]
        report = reconciler.parallel.summary(service)
        if report is None:
            return JSONResponse({"error": "NotFound", "message": f"{service} has had no parallel run: set "
                                 f"strategy.canary.parallelRun and roll out a new release"}, status_code=404)
        return JSONResponse(report)

    return [Route("/rollouts/{service}/diff", diff, methods=["GET"]),
            Route("/rollouts/{service}/undo", undo, methods=["POST"]),
            Route("/rollouts/{service}/{verb:str}", command, methods=["POST"])]


VERBS = ("promote", "approve", "abort", "retry")
