"""HTTP routes for following git: the push webhook, sync, history, scale, suspend and resume."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shipyard.api.input import json_body, query_int
from shipyard.errors import ShipyardError
from shipyard.source.webhook import signature_header

if TYPE_CHECKING:
    from shipyard.daemon import ControlPlane

NOT_FOLLOWING = "this environment runs a directory, not a git repository: use `shipyard apply`"
FOLLOWING_GIT = "this environment follows a git repository: commit and push, or run `shipyard sync`"


def gitops_routes(plane: "ControlPlane") -> list[Route]:
    async def hook(request: Request) -> Response:
        body = await request.body()  # the signature covers the raw bytes
        if plane.follower is None:
            return _error(404, "NotFollowing", NOT_FOLLOWING)
        code, answer = plane.follower.handle_push(body, signature_header(request.headers))
        return JSONResponse(answer, status_code=code)

    async def sync(request: Request) -> Response:
        if plane.follower is None:
            return _error(409, "NotFollowing", NOT_FOLLOWING)
        outcome = await plane.follower.sync("sync")
        return JSONResponse({**outcome.to_dict(), "source": plane.source_status()})

    async def history(request: Request) -> Response:
        limit = query_int(request, "limit", 50)
        return JSONResponse(plane.store.history(limit=limit))

    async def scale(request: Request) -> Response:
        body = await json_body(request, required=True)
        service, replicas = body.get("service"), body.get("replicas")
        if not isinstance(service, str) or not isinstance(replicas, int) or isinstance(replicas, bool) \
                or not 0 <= replicas <= 10_000:
            return _error(400, "BadRequest", "expected {\"service\": NAME, \"replicas\": N ≥ 0}")
        try:
            declared = plane.scale(service, replicas)
        except ShipyardError as exc:
            return _error(404, "NoSuchService", str(exc))
        follower = plane.follower
        return JSONResponse({"service": service, "replicas": replicas, "declared": declared,
                             "suspended": plane.reconciler.suspended, "following": follower is not None,
                             "next_sync_in": follower.next_sync_in() if follower else None})

    async def suspend(request: Request) -> Response:
        plane.suspend(True)
        return JSONResponse({"suspended": True})

    async def resume(request: Request) -> Response:
        plane.suspend(False)
        return JSONResponse({"suspended": False, "following": plane.follower is not None})

    return [
        Route("/hooks/git", hook, methods=["POST"]),
        Route("/sync", sync, methods=["POST"]),
        Route("/history", history),
        Route("/scale", scale, methods=["POST"]),
        Route("/suspend", suspend, methods=["POST"]),
        Route("/resume", resume, methods=["POST"]),
    ]


def _error(code: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"error": reason, "message": message}, status_code=code)
