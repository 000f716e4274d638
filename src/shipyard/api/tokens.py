"""Scoped API tokens and the audit log: what each scope may do, and the /tokens and /audit routes.

A token is `sy_` + 256 random bits, shown once at creation; the store keeps only its SHA-256 digest (a
slow password hash buys nothing for a random 256-bit secret). Three scopes, each including the one
before: `read` (every GET: status, events, history, logs, rollouts; no route returns secret values),
`deploy` (the actions on rollouts and desired state: promote, approve, abort, retry, undo, apply, sync,
scale, suspend, resume), `admin` (also token management and `down`). The state dir's own token
(STATE/token) is the bootstrap `admin`; a request over the Unix socket is the local admin, `local`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shipyard.api.input import json_body, optional_str, query_int

if TYPE_CHECKING:
    from shipyard.daemon import ControlPlane

SCOPES = ("read", "deploy", "admin")
BOOTSTRAP, LOCAL = "admin", "local"  # the names of the state dir's token and of the Unix socket in the audit
RESERVED = frozenset({BOOTSTRAP, LOCAL, "webhook", "-"})
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
ADMIN_ONLY = ("/down", "/tokens")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Identity:
    """Who sent a request: a token's name and its scope."""

    name: str
    scope: str


def new_secret() -> str:
    return "sy_" + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_duration(text: str) -> float:
    """`30d`, `12h`, `90m`, `2w`, `45s` → seconds; ValueError otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"expected a duration such as 30d, 12h, 90m or 2w, not {text!r}")
    return float(int(match.group(1)) * _UNITS[match.group(2)])


def required_scope(method: str, path: str) -> str:
    """The least scope a request needs (pure)."""
    if path == "/down" or path == "/tokens" or path.startswith("/tokens/"):
        return "admin"
    return "read" if method in SAFE_METHODS else "deploy"


def permits(scope: str, needed: str) -> bool:
    return scope in SCOPES and SCOPES.index(scope) >= SCOPES.index(needed)


def token_problem(record: dict[str, Any] | None, now: float) -> str | None:
    """Why a stored token cannot be used (None when it can) — pure."""
    if record is None:
        return "unknown token"
    if record["revoked_at"] is not None:
        return f"the token {record['name']!r} was revoked"
    if record["expires_at"] is not None and record["expires_at"] <= now:
        return f"the token {record['name']!r} has expired"
    return None


def describe(method: str, path: str, body: dict[str, Any]) -> tuple[str, str]:
    """(action, target) of a mutating request for the audit log (pure)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) == 3 and parts[0] == "rollouts":
        return f"rollout {parts[2]}", parts[1]
    if parts[:1] == ["tokens"]:
        if len(parts) == 3 and parts[2] == "revoke":
            return "token revoke", parts[1]
        return "token create", str(body.get("name", ""))
    if parts == ["scale"]:
        return "scale", f"{body.get('service', '')}={body.get('replicas', '')}"
    if parts == ["apply"]:
        return "apply", str(body.get("directory") or "")
    if parts == ["hooks", "git"]:
        return "git push", ""
    if len(parts) == 1:
        return parts[0], ""
    return f"{method} {path}", ""


def token_routes(plane: "ControlPlane") -> list[Route]:
    async def create(request: Request) -> Response:
        body = await json_body(request, required=True)
        name, scope = optional_str(body, "name") or "", optional_str(body, "scope") or ""
        expires = optional_str(body, "expires")
        if not NAME.match(name) or name in RESERVED:
            return _error(400, "BadRequest", f"a token name is lowercase letters, digits, '.', '_' or '-' and not "
                                             f"one of {', '.join(sorted(RESERVED))}: {name!r}")
        if scope not in SCOPES:
            return _error(400, "BadRequest", f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
        try:
            lifetime = parse_duration(expires) if expires else None
        except ValueError as exc:
            return _error(400, "BadRequest", f"expires: {exc}")
        existing = plane.store.token(name=name)
        if existing is not None and existing["revoked_at"] is None:
            return _error(409, "Exists", f"a token named {name!r} exists: revoke it first")
        secret, now = new_secret(), time.time()
        expires_at = now + lifetime if lifetime else None
        plane.store.save_token(name, digest(secret), scope, now, expires_at)
        return JSONResponse({"name": name, "scope": scope, "token": secret, "created_at": now,
                             "expires_at": expires_at}, status_code=201)

    async def listing(request: Request) -> Response:
        now = time.time()
        return JSONResponse([{k: v for k, v in record.items() if k != "digest"}
                             | {"state": _state(record, now)} for record in plane.store.tokens()])

    async def revoke(request: Request) -> Response:
        name = request.path_params["name"]
        if not plane.store.revoke_token(name, time.time()):
            return _error(404, "NotFound", f"no active token named {name!r} (see `shipyard token list`)")
        return JSONResponse({"name": name, "revoked": True})

    async def audit(request: Request) -> Response:
        return JSONResponse(plane.store.audit(limit=query_int(request, "limit", 100, minimum=1)))

    return [Route("/tokens", create, methods=["POST"]), Route("/tokens", listing, methods=["GET"]),
            Route("/tokens/{name}/revoke", revoke, methods=["POST"]), Route("/audit", audit, methods=["GET"])]


def _state(record: dict[str, Any], now: float) -> str:
    problem = token_problem(record, now)
    return "active" if problem is None else ("revoked" if record["revoked_at"] is not None else "expired")


def _error(code: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"error": reason, "message": message}, status_code=code)
