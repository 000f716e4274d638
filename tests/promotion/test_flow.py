"""Promotion end to end on one machine, nothing faked: a git repository as the config repo, dev and prod
control planes following it, the embedded artifact store.

A code change is published by its pipeline, reaches dev by an automation commit, rolls out, soaks, is
verified and reaches prod by a promotion commit and a canary, with no human step. A release that fails
in dev is rejected there and never reaches prod's overlay. A third version is promoted by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.controlplane import free_port, http_get, run_cli, wait_for
from tests.projects import PROBE_APP

PROD_OVERLAY = """\
# prod: the canary takes new versions; the version line is edited by promotion commits only.
apiVersion: shipyard/v1
kind: Environment
name: prod
services:
  app:
    version: "1.0.0"   # promoted from dev
    strategy:
      type: canary
      canary: {steps: [50, 100], interval: 1s, minRequests: 0, analysis: []}
"""


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com",
           "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def project_files(store: Path, auto: bool) -> dict[str, str]:
    prod = {"name": "prod", "auto": auto, "soak": "2s", "verify": [{"url": "{target}/healthz"}]}
    return {
        "shipyard.yaml": json.dumps({"apiVersion": "shipyard/v1", "kind": "Project", "name": "flow",
                                     "store": str(store), "environments": ["dev", prod],
                                     "automation": [{"service": "app", "environment": "dev",
                                                     "policy": {"semver": ">=1.0.0"}, "interval": "1s"}]}),
        "services/app.yaml": json.dumps({
            "apiVersion": "shipyard/v1", "kind": "Service", "name": "app", "version": "1.0.0",
            "artifact": {"image": "app"}, "replicas": 1, "resources": {"cpu": "100m", "memory": "64Mi"},
            "health": {"readiness": {"path": "/healthz", "interval": "200ms", "timeout": "1s", "failureThreshold": 2},
                       "liveness": {"path": "/healthz", "interval": "500ms", "timeout": "1s", "failureThreshold": 2},
                       "startupTimeout": "10s"},
            "stop": {"gracePeriod": "2s"},
            "strategy": {"rolling": {"progressDeadline": "8s"}}}),
        "environments/dev.yaml": json.dumps({"apiVersion": "shipyard/v1", "kind": "Environment", "name": "dev",
                                             "services": {"app": {"version": "1.0.0"}}}),
        "environments/prod.yaml": PROD_OVERLAY,
    }


class Environment:
    def __init__(self, name: str, state: Path) -> None:
        self.name, self.state = name, state

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, "--state-dir", str(self.state), check=check)

    def service(self) -> dict[str, Any]:
        document = json.loads(self.cli("status", "-o", "json").stdout)
        return next(s for s in document["services"] if s["name"] == "app")

    def serving(self) -> str | None:
        service = self.service()
        status, _, body = http_get(service["endpoint"] + "/") if service.get("endpoint") else (0, {}, b"")
        return json.loads(body)["version"] if status == 200 else None


@contextlib.contextmanager
def running_flow(tmp_path: Path) -> Iterator[tuple[Path, Path, Path, Environment, Environment]]:
    """The config repo, the source dir with 1.0.0 published, and dev and prod following the repo."""
    store, source, origin = tmp_path / "store", tmp_path / "src", tmp_path / "config"
    shutil.copytree(PROBE_APP, source)
    (source / "artifact.yaml").write_text(
        "apiVersion: shipyard/v1\nkind: Artifact\nname: app\ncommand: [python3, app.py]\n"
        "pipeline:\n  stages:\n    - {name: unit, command: [python3, -c, 'print(1)'], timeout: 30s}\n")
    run_cli("pipeline", "run", str(source), "--version", "1.0.0", "--store", str(store))
    origin.mkdir()
    git(origin, "init", "--quiet", "--initial-branch=main")
    git(origin, "config", "receive.denyCurrentBranch", "updateInstead")
    for name, text in project_files(store, auto=True).items():
        (origin / name).parent.mkdir(parents=True, exist_ok=True)
        (origin / name).write_text(text)
    git(origin, "add", "."), git(origin, "commit", "--quiet", "-m", "the flow project")
    envs = [Environment(name, tmp_path / name) for name in ("dev", "prod")]
    try:
        for env in envs:
            run_cli("up", "--git", str(origin), "--env", env.name, "--state-dir", str(env.state), "--detach",
                    "--interval", "1s", "--ingress-port", str(free_port()), "--timeout", "90")
        yield source, store, origin, envs[0], envs[1]
    finally:
        for env in envs:
            env.cli("down", check=False)


@pytest.fixture
def flow(tmp_path: Path):
    with running_flow(tmp_path) as running:
        yield running


@pytest.mark.timeout(400)
def test_a_version_travels_from_dev_to_prod_a_bad_one_stays_in_dev_a_third_is_promoted_by_hand(flow, tmp_path):
    source, store, origin, dev, prod = flow
    wait_for(lambda: dev.serving() == "1.0.0" and prod.serving() == "1.0.0", timeout=60, what="both on 1.0.0")

    # 1. a code change: pipeline → store → automation commit → dev → verified → promotion commit → prod canary
    (source / "message.txt").write_text("two")
    run_cli("pipeline", "run", str(source), "--version", "1.1.0", "--store", str(store))
    wait_for(lambda: prod.serving() == "1.1.0" and prod.service()["rollout"]["status"] == "complete", timeout=120,
             what="1.1.0 reaching prod on its own")
    assert prod.service()["rollout"]["strategy"] == "canary"
    log = git(origin, "log", "--format=%s%n%b%n----", "main")
    assert "dev: app 1.0.0 → 1.1.0" in log and "promote app 1.1.0 dev → prod" in log
    promotion = log.split("promote app 1.1.0 dev → prod", 1)[1].split("----", 1)[0]
    for trailer in ("Version: 1.0.0 → 1.1.0", "Digest: sha256:", "From: dev", "To: prod", "Verified: 20",
                    "Evidence: rolling rollout completed", "Promoted-by: shipyard automation (dev)"):
        assert trailer in promotion, trailer
    authors = git(origin, "log", "--format=%an <%ae>", "main").splitlines()
    assert authors[:2] == ["Shipyard (dev) <shipyard+dev@localhost>"] * 2  # the control plane's own identity
    overlay = (origin / "environments/prod.yaml").read_text()
    assert overlay == PROD_OVERLAY.replace('version: "1.0.0"', 'version: "1.1.0"')  # comments and layout kept
    verified = dev.service()["verified"]
    assert verified["state"] == "verified" and verified["version"] == "1.1.0" and verified["digest"].startswith("sha256:")

    # 2. a release that fails in dev is rejected there and never reaches prod's overlay
    (source / "app.py").write_text("import sys\nsys.exit(3)\n")
    run_cli("build", str(source), "--version", "1.2.0", "--store", str(store))
    wait_for(lambda: any(r["version"] == "1.2.0" for r in json.loads(dev.cli("status", "-o", "json").stdout)["rejected"]),
             timeout=60, what="1.2.0 rejected in dev")
    events = json.loads(dev.cli("events", "-o", "json").stdout)
    assert any(e["reason"] == "Rejected" and "1.2.0" in e["message"] for e in events)
    assert "1.2.0" not in git(origin, "log", "-p", "--format=", "main", "--", "environments/prod.yaml")
    refused = run_cli("promote", "app", "--from", "dev", "--to", "prod", "--version", "1.2.0",
                      "--project", str(origin), check=False)
    assert refused.returncode == 1 and "1.2.0 was rejected in dev" in refused.stderr

    # 3. prod takes versions by hand from now on: a third version is promoted with `shipyard promote`
    for name, text in project_files(store, auto=False).items():
        if name == "shipyard.yaml":
            (origin / name).write_text(text)
    git(origin, "commit", "--quiet", "-am", "prod: promotions by hand")
    shutil.copytree(PROBE_APP, source, dirs_exist_ok=True)
    (source / "message.txt").write_text("three")
    run_cli("pipeline", "run", str(source), "--version", "1.3.0", "--store", str(store))
    wait_for(lambda: (dev.service()["verified"] or {}).get("version") == "1.3.0"
             and dev.service()["verified"]["state"] == "verified", timeout=120,   # commit, follow, canary, soak:
             what="1.3.0 verified in dev")                                              # slow on a loaded machine
    assert prod.serving() == "1.1.0"
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(origin), str(clone))
    result = run_cli("promote", "app", "--from", "dev", "--to", "prod", "--project", str(clone))
    assert "promoted app 1.1.0 → 1.3.0 from dev to prod" in result.stdout and "pushed to origin/main" in result.stdout
    wait_for(lambda: prod.serving() == "1.3.0" and prod.service()["rollout"]["status"] == "complete", timeout=60,
             what="1.3.0 in prod after `shipyard promote`")
    subject = git(origin, "log", "-1", "--format=%s%n%b", "main")
    assert subject.startswith("promote app 1.3.0 dev → prod") and "Promoted-by: shipyard promote (" in subject

    matrix = json.loads(run_cli("versions", str(clone), "-o", "json").stdout)
    assert matrix["environments"] == ["dev", "prod"]
    cell = matrix["services"]["app"]["prod"]
    assert (cell["declared"], cell["running"], cell["rollout"]) == ("1.3.0", "1.3.0", "complete")
    assert cell["digest"].startswith("sha256:") and matrix["services"]["app"]["dev"]["verified"] == "verified"
