"""Who may call the API: anyone who can open the Unix socket; over TCP only a bearer of a token or a session.

The Unix socket lives in the 0700 state directory, so the file system already says who may connect.
A request that arrived over TCP (uvicorn puts the listener's (host, port) in `scope["server"]`; a Unix
socket has no port) must carry `Authorization: Bearer <token>`, except the liveness probe and the
push webhook, which proves itself with its HMAC signature (checked by its handler).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.api.input import MAX_BODY, too_large
from shipyard.api.sessions import CSRF_HEADER, cookie_value
from shipyard.api.tokens import (BOOTSTRAP, LOCAL, SAFE_METHODS, Identity, describe, digest, permits, required_scope,
                                 token_problem)

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
    """ASGI middleware: who sent the request (api/tokens.py), whether their scope allows it, and the audit log.

    401 (JSON) for a TCP request without a valid token or session (the dashboard's pages redirect to its
    sign-in page instead); 403 for one beyond its token's scope. Every mutating request that reaches this
    far is written to the store's audit log with its outcome. The store and the dashboard's sessions come
    from the wrapped app's `state` (api/app.py sets them), so `TokenAuth(build_app(plane), token)` is all
    the daemon writes.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = getattr(self.app, "state", None)
        plane, sessions = getattr(state, "plane", None), getattr(state, "sessions", None)
        store = getattr(plane, "store", None)
        method, path = scope.get("method", "GET"), scope.get("path", "")
        open_route = (method, path) in OPEN_OVER_TCP or path in OPEN_UI or path.startswith("/ui/static/")
        identity, problem = self._identify(scope, store, sessions)
        if identity is None and not open_route:
            if method in SAFE_METHODS and (path == "/ui" or path.startswith("/ui/")):
                await _send(send, 303, b"", [(b"location", b"/ui/login")])
                return
            await self._audit(store, None, method, path, {}, "unauthorized", 401)
            await _send_json(send, 401, "Unauthorized", (f"{problem}: " if problem else "") + "this API needs "
                             "`Authorization: Bearer <token>` over TCP (a token from `shipyard token create`, or "
                             "STATE/token; give it to the CLI as SHIPYARD_TOKEN)",
                             [(b"www-authenticate", b'Bearer realm="shipyard"')])
            return
        scope["shipyard.identity"] = identity
        if identity is not None and not open_route:
            needed = required_scope(method, path)
            if not permits(identity.scope, needed):
                try:
                    body = await _read_body(receive) if method not in SAFE_METHODS else b""
                except _TooLarge:
                    body = b""
                await self._audit(store, identity, method, path, _json(body), "denied", 403)
                await _send_json(send, 403, "Forbidden", f"the token {identity.name!r} has scope "
                                 f"{identity.scope!r}; this needs {needed!r}")
                return
        if method in SAFE_METHODS or path in OPEN_UI:
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
        except _TooLarge:
            await self._audit(store, identity, method, path, {}, "failed", 413)
            await _send_json(send, 413, "BodyTooLarge", str(too_large().detail))
            return
        status = 500
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, replay, recording)
        finally:
            who = identity if identity is not None else Identity("webhook", "read")
            await self._audit(store, who, method, path, _json(body), "ok" if status < 400 else "failed", status)

    def _identify(self, scope: Scope, store: Any, sessions: Any) -> tuple[Identity | None, str | None]:
        if arrived_over_unix_socket(scope):
            return Identity(LOCAL, "admin"), None
        now = time.time()
        given = bearer_token(scope)
        if given is not None:
            if hmac.compare_digest(given.encode(), self.token.encode()):
                return Identity(BOOTSTRAP, "admin"), None
            record = store.token(digest=digest(given)) if store is not None else None
            problem = token_problem(record, now)
            return (Identity(record["name"], record["scope"]), None) if problem is None and record else (None, problem)
        session = sessions.get(cookie_value(scope.get("headers", []))) if sessions is not None else None
        if session is None:
            return None, None
        if session.digest:
            problem = token_problem(store.token(digest=session.digest) if store is not None else None, now)
            if problem is not None:
                return None, f"{problem}: sign in again"
        if scope.get("method") not in SAFE_METHODS:
            sent = dict(scope.get("headers", [])).get(CSRF_HEADER.encode(), b"").decode("latin-1")
            if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                return None, "missing or wrong X-CSRF-Token header for this session"
        return Identity(session.name, session.scope), None

    async def _audit(self, store: Any, identity: Identity | None, method: str, path: str, body: dict[str, Any],
                     outcome: str, status: int) -> None:
        if store is None or method in SAFE_METHODS:
            return
        action, target = describe(method, path, body)
        await asyncio.to_thread(store.add_audit, identity.name if identity else "-", action, target, outcome,
                                status, time.time())


OPEN_UI = frozenset({"/ui/login"})  # the sign-in page and its form; every other page needs a session


class _TooLarge(Exception):
    pass


async def _read_body(receive: Receive) -> bytes:
    """The whole request body (the audit needs it before the route reads it), at most MAX_BODY bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BODY:
            raise _TooLarge()
        if not message.get("more_body"):
            return b"".join(chunks)


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body) if body.strip() else {}
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Send, status: int, reason: str, message: str,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": reason, "message": message}).encode()
    await _send(send, status, body, [(b"content-type", b"application/json"), *(headers or [])])
