"""Who may call the API: anyone who can open the Unix socket; over TCP only a bearer of the state dir's token.

The Unix socket lives in the 0700 state directory, so the file system already says who may connect.
A request that arrived over TCP (uvicorn puts the listener's (host, port) in `scope["server"]`; a Unix
socket has no port) must carry `Authorization: Bearer <token>`, except the liveness probe and the
push webhook, which proves itself with its HMAC signature (checked by its handler).
"""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

OPEN_OVER_TCP = frozenset({("GET", "/healthz"), ("HEAD", "/healthz"), ("POST", "/hooks/git")})


def arrived_over_unix_socket(scope: Scope) -> bool:
    server = scope.get("server")
    return isinstance(server, (tuple, list)) and len(server) == 2 and server[1] is None


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


def allowed(scope: Scope, token: str) -> bool:
    """Whether this request may reach the routes (pure: reads only the scope)."""
    if arrived_over_unix_socket(scope) or (scope.get("method"), scope.get("path")) in OPEN_OVER_TCP:
        return True
    given = bearer_token(scope)
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


class TokenAuth:
    """ASGI middleware: 401 with a JSON error for a TCP request without the right bearer token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or allowed(scope, self.token):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": "Unauthorized", "message": "this API needs `Authorization: Bearer <token>` "
                           "over TCP (the token is in STATE/token; give it to the CLI as SHIPYARD_TOKEN)"}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b'Bearer realm="shipyard"')]})
        await send({"type": "http.response.body", "body": body})
