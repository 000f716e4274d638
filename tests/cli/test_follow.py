"""Following git end to end: real repositories in tmp dirs, a real control plane, Envoy and instances, via the CLI."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane import ControlPlane, free_port, http_get, pid_alive, run_cli, wait_for
from tests.projects import probe_service, write_project
from tests.source.conftest import Origin, isolated_git  # noqa: F401 - keeps the developer's git config out

SECRET = b"s3cret"


class GitPlane(ControlPlane):
    """A control plane that follows ORIGIN (`up --git`)."""

    def __init__(self, origin: Origin, state_dir: Path, secret_file: Path) -> None:
        super().__init__(origin.path, state_dir)
        self.origin, self.secret_file = origin, secret_file
        self.api_port = free_port()  # webhooks arrive over TCP

    def up(self, *extra: str, check: bool = True):  # type: ignore[override]
        return run_cli("up", "--git", str(self.origin.path), "--env", "dev", "--state-dir", str(self.state_dir),
                       "--detach", "--ingress-port", str(self.ingress_port), "--timeout", "60",
                       "--webhook-secret-file", str(self.secret_file), "--api-listen", f"127.0.0.1:{self.api_port}",
                       *extra, check=check)

    def commit(self, message: str, services: list[dict[str, Any]]) -> str:
        write_project(self.origin.path, services)
        self.origin.git("add", "--all")
        self.origin.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.origin.git("rev-parse", "HEAD")

    def push_hook(self, sha: str, signature: str | None = "good", ref: str = "refs/heads/main") -> tuple[int, dict]:
        body = json.dumps({"ref": ref, "after": sha}).encode()
        headers = {"Content-Type": "application/json"}
        if signature:
            key = SECRET if signature == "good" else b"wrong"
            headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(self.api() + "/hooks/git", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def history(self) -> list[dict[str, Any]]:
        return json.loads(self.cli("history", "-o", "json").stdout)

    def served_versions(self, service: str, requests: int = 12) -> set[str]:
        port = int(self.service(service)["endpoint"].rsplit(":", 1)[1])
        return {json.loads(http_get(f"http://127.0.0.1:{port}/")[2])["version"] for _ in range(requests)}


@pytest.fixture
def plane(tmp_path: Path):
    planes: list[GitPlane] = []

    def make(services: list[dict[str, Any]]) -> GitPlane:
        origin = Origin(tmp_path / "origin")
        secret = tmp_path / "secret"
        secret.write_bytes(SECRET + b"\n")
        created = GitPlane(origin, tmp_path / "state", secret)
        created.commit("first release", services)
        planes.append(created)
        return created

    yield make
    for created in planes:
        created.teardown()


def test_webhook_invalid_commit_recovery_revert_and_history(plane):
    cp = plane([probe_service("alpha", replicas=2)])
    first = cp.origin.git("rev-parse", "HEAD")
    cp.up("--interval", "10m")  # only the webhook and `sync` fetch here
    status = cp.status()
    assert status["revision"] == first
    assert {k: status["source"][k] for k in ("url", "ref", "last_error")} == \
        {"url": str(cp.origin.path), "ref": "main", "last_error": None}
    assert status["source"]["fetched"]
    pids = sorted(i["pid"] for i in cp.instances("alpha"))

    broken = probe_service("alpha", replicas=2)
    broken["replcas"] = broken.pop("replicas")
    bad = cp.commit("typo in alpha", [broken])
    result = cp.cli("sync", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "services/alpha.yaml:" in result.stderr and "replcas" in result.stderr
    status = cp.status()
    [ready] = [c for c in status["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "ValidationFailed")
    assert bad[:12] in ready["message"] and "services/alpha.yaml:" in ready["message"]
    assert status["revision"] == first and sorted(i["pid"] for i in cp.instances("alpha")) == pids

    cp.origin.git("revert", "--no-edit", bad)  # the next valid commit recovers by itself
    fix = cp.origin.git("rev-parse", "HEAD")
    assert cp.cli("sync").stdout.strip() == fix
    assert [c for c in cp.status()["conditions"] if c["type"] == "Ready"][0]["reason"] != "ValidationFailed"
    assert sorted(i["pid"] for i in cp.instances("alpha")) == pids  # same release: nothing restarted

    bump = cp.commit("alpha 2.0.0", [probe_service("alpha", replicas=2, version="2.0.0")])
    fetched = cp.status()["source"]["fetched"]
    assert cp.push_hook(bump, signature=None)[0] == 401
    assert cp.push_hook(bump, signature="wrong")[0] == 401
    code, answer = cp.push_hook(bump, ref="refs/heads/other")
    assert code == 202 and not answer["accepted"]
    assert cp.status()["source"]["fetched"] == fetched  # nothing was fetched
    assert cp.push_hook(bump)[0] == 202
    wait_for(lambda: cp.status()["revision"] == bump, timeout=10, what="the webhook's commit to apply")
    wait_for(lambda: cp.served_versions("alpha") == {"2.0.0"}, timeout=30, what="2.0.0 served through Envoy")

    cp.origin.git("revert", "--no-edit", bump)  # the documented rollback
    reverted = cp.origin.git("rev-parse", "HEAD")
    assert cp.cli("sync").stdout.strip() == reverted
    wait_for(lambda: cp.served_versions("alpha") == {"1.0.0"}, timeout=30, what="1.0.0 served again")

    history = cp.history()
    assert [(e["revision"], e["result"]) for e in history] == [
        (reverted, "applied"), (bump, "applied"), (fix, "applied"), (bad, "rejected"), (first, "applied")]
    assert history[1]["services"]["alpha"]["version"] == "2.0.0" and history[0]["services"]["alpha"]["version"] == "1.0.0"
    assert history[3]["errors"][0].startswith("services/alpha.yaml:") and history[3]["commit"]["message"] == "typo in alpha"
    table = cp.cli("history").stdout
    assert "rejected: services/alpha.yaml:" in table and "alpha 2.0.0×2" in table
    reasons = {e["reason"] for e in json.loads(cp.cli("events", "-o", "json", "--limit", "500").stdout)}
    assert {"Fetched", "Applied", "Rejected"} <= reasons


def test_polling_applies_new_commits_and_prunes_removed_services(plane):
    cp = plane([probe_service("alpha"), probe_service("beta")])
    cp.up("--interval", "1s")
    beta_pid = cp.wait_ready("beta", 1)[0]["pid"]
    change = cp.commit("alpha 2.0.0, no more beta", [probe_service("alpha", version="2.0.0")])
    wait_for(lambda: cp.status()["revision"] == change, timeout=10, what="the interval to fetch the commit")
    wait_for(lambda: [i["version"] for i in cp.instances("alpha", "ready")] == ["2.0.0"], timeout=20,
             what="alpha 2.0.0 ready")
    wait_for(lambda: [s["name"] for s in cp.status()["services"]] == ["alpha"], timeout=20, what="beta removed")
    assert not pid_alive(beta_pid)
    assert any(e["reason"] == "Stopped" for e in json.loads(cp.cli("events", "-o", "json", "--limit", "500").stdout))


def test_scale_suspend_resume_and_drift(plane):
    cp = plane([probe_service("alpha")])
    cp.up("--interval", "2s")
    result = cp.cli("scale", "alpha", "2")
    assert "git will win at the next sync (in " in result.stderr and "shipyard suspend" in result.stderr
    assert cp.service("alpha")["desired_replicas"] == 2 or any(  # unless the next sync came first
        e["reason"] == "DriftReverted" for e in json.loads(cp.cli("events", "-o", "json").stdout))
    wait_for(lambda: cp.service("alpha")["desired_replicas"] == 1 and len(cp.instances("alpha")) == 1, timeout=15,
             what="git's replicas back")

    cp.cli("suspend")
    assert cp.status()["suspended"] and "SUSPENDED" in cp.cli("status").stdout
    assert "stays until `shipyard resume`" in cp.cli("scale", "alpha", "2").stderr
    newer = cp.commit("alpha 2.0.0", [probe_service("alpha", version="2.0.0")])
    wait_for(lambda: cp.status()["source"]["pending"] == newer, timeout=10, what="the commit to wait")
    assert len(cp.wait_ready("alpha", 2)) == 2 and cp.status()["revision"] != newer
    cp.cli("resume")
    wait_for(lambda: [i["version"] for i in cp.instances("alpha", "ready")] == ["2.0.0"], timeout=30,
             what="the pending commit, with git's replicas")

    snapshots = [p for p in (cp.state_dir / "snapshots").iterdir() if not p.name.startswith(".")]
    assert len(snapshots) == 1  # both versions run the same artifact
    app = snapshots[0] / "app.py"
    original = app.read_text()
    app.write_text(original + "# changed by hand\n")
    wait_for(lambda: app.read_text() == original, timeout=10, what="the snapshot file put back")
    victim = cp.instances("alpha", "ready")[0]
    os.kill(victim["pid"], signal.SIGKILL)
    wait_for(lambda: any(i["pid"] != victim["pid"] for i in cp.instances("alpha", "ready")), timeout=10,
             what="the killed instance replaced")
    reasons = [e["reason"] for e in json.loads(cp.cli("events", "-o", "json", "--limit", "500").stdout)]
    assert {"Scaled", "Suspended", "Pending", "Resumed", "DriftReverted"} <= set(reasons)


def test_restart_keeps_following_without_the_network(plane, tmp_path):
    cp = plane([probe_service("alpha")])
    cp.up("--interval", "1s")
    sha = cp.status()["revision"]
    before = {i["id"]: i["pid"] for i in cp.instances("alpha")}
    os.kill(cp.control_pid(), signal.SIGKILL)
    wait_for(lambda: not pid_alive(cp.control_pid()), what="the control plane to die")
    cp.origin.path.rename(tmp_path / "moved")  # the repository is unreachable
    result = run_cli("up", "--env", "dev", "--state-dir", str(cp.state_dir), "--detach", "--ingress-port",
                     str(cp.ingress_port), "--timeout", "60")
    assert "as this state dir did before" in result.stderr
    status = cp.status()
    assert status["revision"] == sha and {i["id"]: i["pid"] for i in cp.instances("alpha")} == before
    wait_for(lambda: cp.status()["source"]["last_error"], timeout=10, what="the fetch error in status")
    assert any(e["reason"] == "FetchFailed" for e in json.loads(cp.cli("events", "-o", "json").stdout))


def test_rollback_commits_the_revert_or_prints_the_commands(plane, tmp_path):
    cp = plane([probe_service("alpha")])
    first = cp.origin.git("rev-parse", "HEAD")
    cp.up("--interval", "10m")
    cp.commit("alpha 2.0.0", [probe_service("alpha", version="2.0.0")])
    cp.cli("sync")
    printed = cp.cli("rollback", "--to", first[:10], "--print")
    assert f"git revert --no-edit {cp.origin.git('rev-parse', 'HEAD')}" in printed.stdout
    assert cp.origin.git("rev-parse", "HEAD") != first and "Revert" not in cp.origin.git("log", "-1", "--format=%s")
    result = cp.cli("rollback", "--to", "HEAD~1")
    assert 'committed' in result.stderr and cp.origin.git("log", "-1", "--format=%s") == 'Revert "alpha 2.0.0"'
    assert cp.status()["revision"] == cp.origin.git("rev-parse", "HEAD")  # applied at once
    wait_for(lambda: [i["version"] for i in cp.instances("alpha", "ready")] == ["1.0.0"], timeout=30,
             what="1.0.0 back")


def test_invalid_head_starts_nothing_and_usage_errors(plane, tmp_path):
    broken = probe_service("alpha")
    broken["replcas"] = broken.pop("replicas")
    cp = plane([broken])
    result = cp.up(check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "is invalid: 1 error; nothing was started" in result.stderr and "services/alpha.yaml:" in result.stderr
    assert not (cp.state_dir / "control.json").exists()
    both = run_cli("up", str(tmp_path), "--git", str(cp.origin.path), "--env", "dev", check=False)
    assert both.returncode == 2 and "not both" in both.stderr
    alone = run_cli("up", str(tmp_path), "--env", "dev", "--ref", "main", check=False)
    assert alone.returncode == 2 and "--ref needs --git URL" in alone.stderr


def test_a_directory_environment_has_no_sync_and_a_git_one_no_apply(plane, tmp_path):
    local = ControlPlane(write_project(tmp_path / "project", [probe_service("alpha")]), tmp_path / "local-state")
    try:
        local.up()
        result = local.cli("sync", check=False)
        assert result.returncode == 1 and "use `shipyard apply`" in result.stderr
        assert "the next `shipyard apply` resets it" in local.cli("scale", "alpha", "2").stderr
        local.cli("suspend")
        assert "shipyard resume" in local.cli("apply", check=False).stderr
    finally:
        local.teardown()
    cp = plane([probe_service("alpha")])
    cp.up("--interval", "10m")
    result = cp.cli("apply", check=False)
    assert result.returncode == 1 and "follows a git repository" in result.stderr


def test_a_git_token_stays_out_of_argv_and_store_and_the_state_dir_is_private(tmp_path):
    from tests.source.http_git import serving_git

    token = "glpat-T0kenThatMustNotLeak"
    origin = Origin(tmp_path / "repos" / "shop")
    cp = GitPlane(origin, tmp_path / "state", tmp_path / "unused")
    cp.commit("first release", [probe_service("alpha")])
    with serving_git(tmp_path / "repos", "ci", token) as base:
        url = base.replace("http://", f"http://ci:{token}@") + "/shop/.git"
        try:
            run_cli("up", "--git", url, "--env", "dev", "--state-dir", str(cp.state_dir), "--detach",
                    "--ingress-port", str(cp.ingress_port), "--timeout", "60", "--interval", "1s")
            cp.wait_ready("alpha", 1)
            change = cp.commit("second", [probe_service("alpha", version="2.0.0")])
            wait_for(lambda: cp.status()["revision"] == change, timeout=20, what="a fetch with the token")
            assert token.encode() not in Path(f"/proc/{cp.control_pid()}/cmdline").read_bytes()
            assert token not in json.dumps(cp.status())
        finally:
            cp.teardown()
    state = cp.state_dir
    assert oct(state.stat().st_mode & 0o777) == "0o700"
    for path in [state / name for name in ("state.db", "token", "control.json", "control-plane.log", "lock")]:
        assert oct(path.stat().st_mode & 0o777) == "0o600", path
    for directory in (state / "proxy", state / "git"):
        assert oct(directory.stat().st_mode & 0o777) == "0o700", directory
    for path in state.rglob("*"):
        if path.is_file() and path.name != "credentials":
            assert token.encode() not in path.read_bytes(), path


def _signed_delivery(cp: GitPlane, body: bytes, header: str | None) -> tuple[int, dict]:
    headers = {header: "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()} if header else {}
    request = urllib.request.Request(cp.api() + "/hooks/git", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_signed_webhook_of_any_shape_fetches_and_the_fetch_decides(plane):
    cp = plane([probe_service("alpha")])
    cp.up("--interval", "10m")  # only webhooks fetch here
    bitbucket = json.dumps({"push": {"changes": [{"new": {"type": "branch", "name": "main"}}]}}).encode()
    assert _signed_delivery(cp, bitbucket, None)[0] == 401  # unsigned: refused, whatever its shape
    second = cp.commit("alpha 2.0.0", [probe_service("alpha", version="2.0.0")])
    code, answer = _signed_delivery(cp, bitbucket, "X-Hub-Signature")  # Bitbucket's header and payload
    assert code == 202 and answer["accepted"]
    wait_for(lambda: cp.status()["revision"] == second, timeout=20, what="Bitbucket's push to apply")
    third = cp.commit("alpha 3.0.0", [probe_service("alpha", version="3.0.0")])
    code, answer = _signed_delivery(cp, b"build 1234 passed", "X-Hub-Signature-256")  # a CI job, not even JSON
    assert code == 202 and answer["accepted"]
    wait_for(lambda: cp.status()["revision"] == third, timeout=20, what="the CI job's notice to apply")
