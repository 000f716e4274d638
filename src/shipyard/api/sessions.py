"""Dashboard sessions: a signed-in browser holds a random session id in an HTTP-only, SameSite=Strict cookie.

A session remembers which token signed in (by its digest, so revoking the token ends the session at
once) and a CSRF token the page sends back in the `X-CSRF-Token` header of every action. Sessions live
in memory: restarting the control plane signs everyone out.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

COOKIE = "shipyard_session"
CSRF_HEADER = "x-csrf-token"
LIFETIME = 12 * 3600.0


@dataclass(frozen=True)
class Session:
    name: str
    scope: str
    digest: str  # of the token that signed in ("" for the bootstrap token, checked by value)
    csrf: str
    expires_at: float


class Sessions:
    """The signed-in browsers (thread-safe)."""

    def __init__(self) -> None:
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, name: str, scope: str, digest: str, now: float | None = None) -> tuple[str, Session]:
        now = now or time.time()
        session = Session(name, scope, digest, secrets.token_urlsafe(24), now + LIFETIME)
        sid = secrets.token_urlsafe(32)
        with self._lock:
            for stale in [k for k, s in self._by_id.items() if s.expires_at <= now]:
                del self._by_id[stale]  # sign-ins are rare: pruning here keeps the table to live sessions
            self._by_id[sid] = session
        return sid, session

    def get(self, sid: str | None, now: float | None = None) -> Session | None:
        if not sid:
            return None
        with self._lock:
            session = self._by_id.get(sid)
            if session is not None and session.expires_at <= (now or time.time()):
                del self._by_id[sid]
                return None
            return session

    def close(self, sid: str | None) -> None:
        with self._lock:
            self._by_id.pop(sid or "", None)


def cookie_value(headers: list[tuple[bytes, bytes]], name: str = COOKIE) -> str | None:
    for key, value in headers:
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name:
                    return v
    return None
