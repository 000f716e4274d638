"""Scoped tokens: the pure rules table-style, then a real control plane over TCP."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import pytest

from shipyard.api.tokens import describe, digest, parse_duration, permits, required_scope, token_problem
from tests.controlplane import ControlPlane, free_port, wait_for
from tests.projects import probe_service, write_project


@pytest.mark.parametrize(("method", "path", "needed"), [
    ("GET", "/status", "read"), ("GET", "/events", "read"), ("GET", "/audit", "read"),
    ("POST", "/rollouts/web/promote", "deploy"), ("POST", "/rollouts/web/undo", "deploy"),
    ("POST", "/scale", "deploy"), ("POST", "/apply", "deploy"), ("POST", "/sync", "deploy"),
    ("POST", "/suspend", "deploy"), ("POST", "/down", "admin"), ("POST", "/tokens", "admin"),
    ("GET", "/tokens", "admin"), ("POST", "/tokens/ci/revoke", "admin"),
])
def test_required_scope(method, path, needed):
    assert required_scope(method, path) == needed


def test_scopes_include_the_ones_below():
    assert permits("admin", "deploy") and permits("deploy", "read") and permits("read", "read")
    assert not permits("read", "deploy") and not permits("deploy", "admin") and not permits("bogus", "read")


def test_token_problem():
    record = {"name": "ci", "revoked_at": None, "expires_at": 100.0}
    assert token_problem(record, 99.0) is None
    assert "expired" in (token_problem(record, 100.0) or "")
    assert "revoked" in (token_problem({**record, "revoked_at": 50.0}, 60.0) or "")
    assert token_problem(None, 0.0) == "unknown token"


@pytest.mark.parametrize(("text", "seconds"), [("30d", 2592000.0), ("12h", 43200.0), ("2w", 1209600.0), ("5s", 5.0)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0d", "3q", "d", "-1d", "1.5h"])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_describe():
    assert describe("POST", "/rollouts/web/abort", {}) == ("rollout abort", "web")
    assert describe("POST", "/scale", {"service": "web", "replicas": 3}) == ("scale", "web=3")
    assert describe("POST", "/tokens", {"name": "ci"}) == ("token create", "ci")
    assert describe("POST", "/tokens/ci/revoke", {}) == ("token revoke", "ci")
    assert describe("POST", "/down", {}) == ("down", "")


@pytest.fixture
def plane(tmp_path: Path):
    project = write_project(tmp_path / "project", [probe_service("alpha")])
    created = ControlPlane(project, tmp_path / "state")
    yield created
    created.teardown()


def test_scopes_over_tcp(plane):
    port = free_port()
    plane.up("--api-listen", f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}"

    def create(name: str, scope: str, **extra: str) -> str:
        response = plane.request("POST", "/tokens", json={"name": name, "scope": scope, **extra})
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    reader, deployer, brief = create("reader", "read"), create("deployer", "deploy"), create("brief", "read", expires="1s")
    with sqlite3.connect(plane.state_dir / "state.db") as db:  # only the digest is kept
        stored = json.dumps(db.execute("SELECT * FROM tokens").fetchall())
    assert reader not in stored and digest(reader) in stored

    def call(token: str, method: str, path: str, **kwargs: object) -> httpx.Response:
        return httpx.request(method, url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10,
                             **kwargs)  # type: ignore[arg-type]

    assert call(reader, "GET", "/status").json()["environment"] == "dev"
    denied = call(reader, "POST", "/rollouts/alpha/abort")
    assert denied.status_code == 403 and denied.json()["error"] == "Forbidden" and "'deploy'" in denied.json()["message"]
    assert call(reader, "POST", "/scale", json={"service": "alpha", "replicas": 2}).status_code == 403

    # deploy: may act on rollouts (the route answers: no rollout to promote), may scale, may not manage tokens
    assert call(deployer, "POST", "/rollouts/alpha/promote").status_code == 409
    assert call(deployer, "POST", "/scale", json={"service": "alpha", "replicas": 2}).status_code == 200
    assert call(deployer, "POST", "/tokens", json={"name": "x", "scope": "admin"}).status_code == 403
    assert call(deployer, "POST", "/down").status_code == 403
    assert call(plane.token(), "GET", "/tokens").status_code == 200  # the bootstrap admin

    assert plane.request("POST", "/tokens/deployer/revoke").json() == {"name": "deployer", "revoked": True}
    refused = call(deployer, "GET", "/status")
    assert refused.status_code == 401 and "revoked" in refused.json()["message"]
    wait_for(lambda: call(brief, "GET", "/status").status_code == 401, 10, 0.2, "the 1s token to expire")
    assert "expired" in call(brief, "GET", "/status").json()["message"]

    audit = [(e["who"], e["action"], e["target"], e["outcome"], e["status"]) for e in plane.request("GET", "/audit").json()]
    assert audit == [
        ("local", "token create", "reader", "ok", 201), ("local", "token create", "deployer", "ok", 201),
        ("local", "token create", "brief", "ok", 201),
        ("reader", "rollout abort", "alpha", "denied", 403), ("reader", "scale", "alpha=2", "denied", 403),
        ("deployer", "rollout promote", "alpha", "failed", 409), ("deployer", "scale", "alpha=2", "ok", 200),
        ("deployer", "token create", "x", "denied", 403), ("deployer", "down", "", "denied", 403),
        ("local", "token revoke", "deployer", "ok", 200),
    ], json.dumps(audit)
