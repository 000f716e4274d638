"""Bad input is the caller's error: a 4xx with a JSON body, on every route, never a 500.

Three pieces, used by all routes: `BodyLimit` refuses bodies over MAX_BODY (413) before any route
reads them; `json_body` and `query_int` turn malformed input into 400s; `JSON_ERRORS` renders every
HTTPException (including Starlette's own 404 and 405) and any unexpected failure as JSON.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 1024 * 1024
log = logging.getLogger("shipyard.api")

_REASONS = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed",
            413: "BodyTooLarge", 415: "UnsupportedMediaType"}


class BadRequest(HTTPException):
    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(status_code, message)


def too_large() -> BadRequest:
    return BadRequest(f"the request body is larger than {MAX_BODY // 2**20} MiB", 413)


class BodyLimit:
    """ASGI middleware: a body over MAX_BODY is refused by its Content-Length, or once that many bytes came."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await _send_json(send, 413 if length.isdigit() else 400,
                             "BodyTooLarge" if length.isdigit() else "BadRequest",
                             str(too_large().detail) if length.isdigit() else "invalid Content-Length")
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise too_large()  # rendered by the app's handler as 413
            return message

        await self.app(scope, counted, send)


async def json_body(request: Request, *, required: bool = False) -> dict[str, Any]:
    """The body as a JSON object ({} when empty and not REQUIRED); 400 for anything else."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise BadRequest("expected a JSON object as the request body")
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"expected a JSON object as the request body, got {type(body).__name__}")
    return body


def query_int(request: Request, name: str, default: int, minimum: int = 0, maximum: int = 1_000_000) -> int:
    """The integer query parameter NAME (DEFAULT when absent); 400 when it is not an integer in range."""
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be an integer, got {text!r}") from None
    if not minimum <= value <= maximum:
        raise BadRequest(f"query parameter {name!r} must be between {minimum} and {maximum}, got {value}")
    return value


def optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{name!r} must be a string, got {type(value).__name__}")
    return value


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    reason = _REASONS.get(exc.status_code, "BadRequest" if exc.status_code < 500 else "Error")
    return JSONResponse({"error": reason, "message": str(exc.detail)}, status_code=exc.status_code,
                        headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "InternalError", "message": f"{type(exc).__name__}: {exc}"}, status_code=500)


JSON_ERRORS = {HTTPException: _http_error, Exception: _unexpected}


async def _send_json(send: Send, status: int, reason: str, message: str) -> None:
    body = json.dumps({"error": reason, "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
