"""`shipyard token create | list | revoke` and `shipyard audit` against a real control plane."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.controlplane import ControlPlane, free_port, run_cli
from tests.projects import probe_service, write_project


@pytest.fixture
def plane(tmp_path: Path):
    project = write_project(tmp_path / "project", [probe_service("alpha")])
    created = ControlPlane(project, tmp_path / "state")
    yield created
    created.teardown()


def test_tokens_and_the_audit_from_the_cli(plane, tmp_path):
    port = free_port()
    plane.up("--api-listen", f"127.0.0.1:{port}")
    created = plane.cli("token", "create", "ci", "--scope", "deploy", "--expires", "30d")
    secret = created.stdout.strip()
    assert secret.startswith("sy_") and len(secret) > 40 and "\n" not in secret
    assert "not shown again" in created.stderr and secret not in created.stderr

    listed = json.loads(plane.cli("token", "list", "-o", "json").stdout)
    assert [(t["name"], t["scope"], t["state"]) for t in listed] == [("ci", "deploy", "active")]
    assert listed[0]["expires_at"] - listed[0]["created_at"] == pytest.approx(30 * 86400)
    assert secret not in json.dumps(listed) and "digest" not in listed[0]
    table = plane.cli("token", "list").stdout
    assert table.split("\n")[0].split() == ["NAME", "SCOPE", "STATE", "CREATED", "EXPIRES"] and "ci" in table

    again = plane.cli("token", "create", "ci", "--scope", "read", check=False)
    assert again.returncode == 1 and again.stderr.startswith("Error:") and "revoke it first" in again.stderr
    bad = plane.cli("token", "create", "x", "--scope", "root", check=False)
    assert bad.returncode == 2

    # the token used from another machine: it may scale, not create tokens nor stop the environment
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"SHIPYARD_API": f"http://127.0.0.1:{port}", "SHIPYARD_TOKEN": secret, "SHIPYARD_STATE_DIR": ""}
    run_cli("scale", "alpha", "2", env=env, cwd=elsewhere)
    refused = run_cli("token", "create", "mine", "--scope", "admin", env=env, cwd=elsewhere, check=False)
    assert refused.returncode == 1 and refused.stderr.startswith("Error:") and "'admin'" in refused.stderr
    assert "Traceback" not in refused.stderr

    plane.cli("token", "revoke", "ci")
    gone = run_cli("status", env=env, cwd=elsewhere, check=False)
    assert gone.returncode == 1 and "revoked" in gone.stderr
    unknown = plane.cli("token", "revoke", "nobody", check=False)
    assert unknown.returncode == 1 and unknown.stderr.startswith("Error:") and "no active token" in unknown.stderr

    entries = json.loads(plane.cli("audit", "-o", "json").stdout)
    assert [(e["who"], e["action"], e["target"], e["outcome"]) for e in entries] == [
        ("local", "token create", "ci", "ok"), ("local", "token create", "ci", "failed"),
        ("ci", "scale", "alpha=2", "ok"), ("ci", "token create", "mine", "denied"),
        ("local", "token revoke", "ci", "ok"), ("local", "token revoke", "nobody", "failed"),
    ]
    lines = plane.cli("audit").stdout.splitlines()
    assert lines[0].split() == ["TIME", "WHO", "ACTION", "TARGET", "OUTCOME", "STATUS"]
    assert any(line.split()[2:] == ["ci", "scale", "alpha=2", "ok", "200"] for line in lines[1:])
