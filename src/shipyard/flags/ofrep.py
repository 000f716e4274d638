"""The OpenFeature Remote Evaluation Protocol (OFREP v1) over one flag set: read-only, nothing else on it.

    POST /ofrep/v1/evaluate/flags/{key}   one flag  → 200, 404 FLAG_NOT_FOUND, 400 with an OFREP error code
    POST /ofrep/v1/evaluate/flags         every flag → 200 with an ETag, 304 when If-None-Match matches it
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shipyard.flags.evaluate import (FLAG_NOT_FOUND, INVALID_CONTEXT, PARSE_ERROR, FlagSet, Resolution,
                                     evaluate)

Current = Callable[[], "FlagSet | None"]
EMPTY = FlagSet({}, {}, {"flags": {}}, "none")


class BadRequest(Exception):
    """The request body is not an OFREP evaluation request; carries the OFREP error code."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


def parse_context(body: bytes) -> dict[str, Any]:
    """The `context` of an OFREP request body (empty body: empty context)."""
    if not body.strip():
        return {}
    try:
        request = json.loads(body)
    except ValueError as exc:
        raise BadRequest(PARSE_ERROR, f"the request body is not JSON: {exc}") from None
    if not isinstance(request, dict):
        raise BadRequest(INVALID_CONTEXT, "the request body must be a JSON object with a `context` object")
    context = request.get("context", {})
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise BadRequest(INVALID_CONTEXT, "`context` must be a JSON object")
    key = context.get("targetingKey")
    if key is not None and not isinstance(key, str):
        raise BadRequest(INVALID_CONTEXT, "`context.targetingKey` must be a string")
    return context


def single_response(resolution: Resolution) -> tuple[int, dict[str, Any]]:
    """HTTP status and body of a single evaluation."""
    if resolution.error_code is None:
        return 200, resolution.to_ofrep()
    return (404 if resolution.error_code == FLAG_NOT_FOUND else 400), resolution.to_ofrep()


def bulk_body(flag_set: FlagSet, context: dict[str, Any], now: float) -> bytes:
    """The bulk response body: every flag, sorted by key, errors included per flag."""
    flags = [evaluate(flag_set, key, context, now).to_ofrep() for key in sorted(flag_set.flags)]
    return json.dumps({"flags": flags}, separators=(",", ":"), sort_keys=True).encode()


def etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def matches(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    candidates = [part.strip().removeprefix("W/") for part in if_none_match.split(",")]
    return "*" in candidates or tag in candidates


def build_ofrep_app(current: Current, clock: Callable[[], float] = time.time) -> Starlette:
    """The OFREP application over whatever flag set CURRENT returns at each request."""
    async def one(request: Request) -> Response:
        key = request.path_params["key"]
        try:
            context = parse_context(await request.body())
        except BadRequest as exc:
            return JSONResponse({"key": key, "errorCode": exc.code, "errorDetails": exc.details}, status_code=400)
        status, body = single_response(evaluate(current() or EMPTY, key, context, clock()))
        return JSONResponse(body, status_code=status)

    async def bulk(request: Request) -> Response:
        try:
            context = parse_context(await request.body())
        except BadRequest as exc:
            return JSONResponse({"errorCode": exc.code, "errorDetails": exc.details}, status_code=400)
        body = bulk_body(current() or EMPTY, context, clock())
        tag = etag(body)
        if matches(request.headers.get("if-none-match"), tag):
            return Response(status_code=304, headers={"ETag": tag})
        return Response(body, media_type="application/json", headers={"ETag": tag})

    return Starlette(routes=[
        Route("/ofrep/v1/evaluate/flags/{key:path}", one, methods=["POST"]),
        Route("/ofrep/v1/evaluate/flags", bulk, methods=["POST"]),
    ])
