"""Dashboard sessions: open, look up, expire, close; the cookie parser."""

from __future__ import annotations

from shipyard.api.sessions import LIFETIME, Sessions, cookie_value


def test_a_session_lives_until_it_expires_or_is_closed():
    sessions = Sessions()
    sid, session = sessions.open("ops", "deploy", "d1g", now=1000.0)
    assert sessions.get(sid, now=1001.0) == session and session.csrf and session.csrf != sid
    assert sessions.get(sid, now=1000.0 + LIFETIME) is None  # expired, and dropped
    other, _ = sessions.open("ops", "deploy", "d1g", now=2000.0)
    sessions.close(other)
    assert sessions.get(other, now=2001.0) is None and sessions.get(None) is None and sessions.get("nope") is None


def test_cookie_value():
    headers = [(b"host", b"x"), (b"cookie", b"a=1; shipyard_session=abc; b=2")]
    assert cookie_value(headers) == "abc" and cookie_value([(b"cookie", b"a=1")]) is None
