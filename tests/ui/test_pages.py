"""The dashboard over HTTP against a real control plane: sign-in, the session cookie, CSRF, every page."""

from __future__ import annotations

import re
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Callable

import httpx
import pytest

from tests.controlplane import ControlPlane, free_port
from tests.projects import probe_service, write_project


@pytest.fixture
def plane(tmp_path: Path):
    project = write_project(tmp_path / "project", [probe_service("alpha"), probe_service("beta")])
    created = ControlPlane(project, tmp_path / "state")
    yield created
    created.teardown()


def sign_in(url: str, token: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=url, timeout=10)
    response = client.post("/ui/login", data={"token": token})
    assert response.status_code == 303 and response.headers["location"] == "/ui"
    page = client.get("/ui")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert page.status_code == 200 and csrf
    return client, csrf.group(1)


def assert_live_within_a_second(client: httpx.Client, change: Callable[[], object]) -> None:
    """The page's event stream announces a change made elsewhere within 1 s."""
    opened, arrived = threading.Event(), []

    def listen() -> None:
        with client.stream("GET", "/ui/live", timeout=20) as stream:
            for line in stream.iter_lines():
                if line.startswith("retry:"):
                    opened.set()
                if line.startswith("event: change"):
                    arrived.append(time.monotonic())
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert opened.wait(10)
    time.sleep(0.6)  # the stream has taken its first fingerprint
    asked = time.monotonic()
    change()
    listener.join(10)
    assert arrived and arrived[0] - asked < 1.0, arrived


def test_sign_in_pages_and_csrf(plane):
    port = free_port()
    plane.up("--api-listen", f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}"
    reader = plane.request("POST", "/tokens", json={"name": "viewer", "scope": "read"}).json()["token"]
    deployer = plane.request("POST", "/tokens", json={"name": "ops", "scope": "deploy"}).json()["token"]

    assert httpx.get(url + "/ui", timeout=10).headers["location"] == "/ui/login"  # not signed in
    bad = httpx.post(url + "/ui/login", data={"token": "sy_nope"}, timeout=10)
    assert bad.status_code == 401 and "unknown, revoked or expired" in bad.text

    raw = httpx.post(url + "/ui/login", data={"token": deployer}, timeout=10)
    cookie = raw.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie

    client, csrf = sign_in(url, deployer)
    with closing(client):
        overview = client.get("/ui").text
        assert 'data-service="alpha"' in overview and 'data-service="beta"' in overview
        assert "ops · deploy" in overview
        for page in ("/ui/matrix", "/ui/history", "/ui/events", "/ui/audit", "/ui/rollouts/alpha",
                     "/ui/instances/alpha", "/ui/static/app.js", "/ui/static/vendor/chart.umd.js"):
            assert client.get(page).status_code == 200, page
        assert "frame-ancestors 'none'" in client.get("/ui").headers["content-security-policy"]
        fragment = client.get("/ui/rollouts/alpha", headers={"X-Fragment": "1"}).text
        assert "<html" not in fragment and "Rollout of alpha" in fragment
        instance = plane.instances("alpha")[0]["id"]
        logs = client.get(f"/ui/logs/{instance}").json()
        assert logs["instance"] == instance and isinstance(logs["lines"], list)
        assert client.get("/ui/static/../auth.py").status_code == 404

        # an action needs the session's CSRF token in a header; the cookie alone is refused
        assert client.post("/scale", json={"service": "alpha", "replicas": 2}).status_code == 401
        assert client.post("/scale", json={"service": "alpha", "replicas": 2}, headers={"X-CSRF-Token": "x"}).status_code == 401
        assert client.post("/scale", json={"service": "alpha", "replicas": 2},
                           headers={"X-CSRF-Token": csrf}).status_code == 200
        assert_live_within_a_second(client, lambda: plane.request("POST", "/scale",
                                                                  json={"service": "beta", "replicas": 2}))
        plane.request("POST", "/tokens/ops/revoke")
        assert client.get("/ui").headers["location"] == "/ui/login"  # the session ends with its token

    viewer, viewer_csrf = sign_in(url, reader)
    with closing(viewer):
        assert "can look, not act" in viewer.get("/ui/rollouts/alpha").text
        denied = viewer.post("/rollouts/alpha/abort", headers={"X-CSRF-Token": viewer_csrf})
        assert denied.status_code == 403
    audit = [(e["who"], e["action"], e["outcome"]) for e in plane.request("GET", "/audit").json()]
    assert ("ops", "ui sign-in", "ok") in audit and ("ops", "scale", "ok") in audit
    assert ("viewer", "rollout abort", "denied") in audit and ("-", "scale", "unauthorized") in audit
