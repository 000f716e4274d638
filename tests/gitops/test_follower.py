"""The follower against real git repositories and a fake engine: apply, reject, recover, hold, drift, webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from shipyard.engine.desired import DesiredState, assign_endpoints, build_desired
from shipyard.engine.model import Condition
from shipyard.gitops.decide import with_overrides
from shipyard.gitops.follower import Follower
from shipyard.gitops.settings import SourceSettings
from shipyard.source.git import Mirror
from shipyard.spec.render import render
from shipyard.state.store import Store
from tests.projects import probe_service, write_project
from tests.source.conftest import Origin


class FakeReconciler:
    def __init__(self) -> None:
        self.source_conditions: list[Condition] = []
        self.suspended = False
        self.events: list[tuple[str, str]] = []
        self.desired: DesiredState | None = None

    def event(self, kind: str, obj: str, reason: str, message: str, data: Any = None) -> None:
        self.events.append((reason, message))


class FakeEnvironment:
    """What ControlPlane does for the follower, minus processes: render, snapshot, record."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.store = Store(state_dir / "state.db")
        self.reconciler = FakeReconciler()
        self.overrides: dict[str, int] = {}
        self.base: DesiredState | None = None

    def build(self, directory: Path, revision: str) -> DesiredState:
        rendered = render(directory, "dev")
        return build_desired(rendered, self.store, self.state_dir, revision, assign_endpoints(rendered, self.store, set()))

    def install(self, desired: DesiredState, origin: str, directory: Path | None = None) -> None:
        if not self.reconciler.suspended:
            self.overrides = {}
        self.base = desired
        self.reconciler.desired = with_overrides(desired, self.overrides)


def commit_project(origin: Origin, message: str, **alpha: Any) -> str:
    write_project(origin.path / "deploy", [probe_service("alpha", **alpha)])
    origin.git("add", "--all")
    origin.git("commit", "--quiet", "-m", message)
    return origin.git("rev-parse", "HEAD")


@pytest.fixture
def setup(origin: Origin, tmp_path: Path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    env = FakeEnvironment(tmp_path / "state")
    settings = SourceSettings.create(str(origin.path), "main", "deploy", 30.0, secret)
    follower = Follower(env, settings, Mirror(env.state_dir / "git", settings.url))
    return origin, env, follower


def versions(env: FakeEnvironment) -> dict[str, tuple[str, int]]:
    assert env.reconciler.desired is not None
    return {n: (s.release.version, s.replicas) for n, s in env.reconciler.desired.services.items()}


def test_apply_reject_recover_and_history(setup):
    origin, env, follower = setup
    first = commit_project(origin, "first")
    asyncio.run(follower.start())
    assert env.base is not None and env.base.revision == first and versions(env) == {"alpha": ("1.0.0", 1)}
    broken = probe_service("alpha")
    broken["replcas"] = broken.pop("replicas")
    write_project(origin.path / "deploy", [broken])
    bad = origin.commit("typo", {}, "2024-01-02T12:00:00+00:00")
    outcome = asyncio.run(follower.sync("sync"))
    assert outcome.result == "rejected" and outcome.commit == bad
    assert outcome.errors and outcome.errors[0].startswith("services/alpha.yaml:") and "replcas" in outcome.errors[0]
    assert env.base.revision == first  # nothing changed
    [condition] = env.reconciler.source_conditions
    assert condition.reason == "ValidationFailed" and bad[:12] in condition.message and "services/alpha.yaml:" in condition.message
    assert asyncio.run(follower.sync("interval")).result == "rejected"  # not tried (nor recorded) again
    fixed = commit_project(origin, "alpha 2.0.0", version="2.0.0")
    assert asyncio.run(follower.sync("webhook")).result == "applied"
    assert versions(env) == {"alpha": ("2.0.0", 1)} and env.reconciler.source_conditions == []
    history = env.store.history()
    assert [(e["revision"], e["result"]) for e in history] == [(fixed, "applied"), (bad, "rejected"), (first, "applied")]
    assert history[1]["services"] == {"alpha": {"version": "1.0.0", "replicas": 1, "release": env.store.history()[2]
                                                ["services"]["alpha"]["release"]}}
    reasons = [reason for reason, _ in env.reconciler.events]
    assert reasons.count("Rejected") == 1 and reasons.count("Applied") == 2 and "Fetched" in reasons


def test_suspended_holds_new_commits_and_overrides_until_resumed(setup):
    origin, env, follower = setup
    commit_project(origin, "first")
    asyncio.run(follower.start())
    env.reconciler.suspended = True
    env.overrides = {"alpha": 4}
    env.reconciler.desired = with_overrides(env.base, env.overrides)  # what `shipyard scale` does
    newer = commit_project(origin, "alpha 2.0.0", version="2.0.0")
    outcome = asyncio.run(follower.sync("interval"))
    assert outcome.result == "pending" and follower.status()["pending"] == newer
    assert versions(env) == {"alpha": ("1.0.0", 4)}
    env.reconciler.suspended = False
    assert asyncio.run(follower.sync("resume")).result == "applied"
    assert versions(env) == {"alpha": ("2.0.0", 1)}


def test_scale_and_edited_files_are_put_back_at_the_next_sync(setup):
    origin, env, follower = setup
    sha = commit_project(origin, "first")
    asyncio.run(follower.start())
    assert asyncio.run(follower.sync("interval")).result == "unchanged"
    env.overrides = {"alpha": 3}
    env.reconciler.desired = with_overrides(env.base, env.overrides)
    artifact = env.state_dir / "snapshots" / env.base.services["alpha"].release.snapshot / "app.py"
    original = artifact.read_text()
    artifact.write_text("print('changed by hand')\n")
    (env.state_dir / "revisions" / sha / "shipyard.yaml").write_text("edited: true\n")
    outcome = asyncio.run(follower.sync("interval"))
    assert outcome.result == "reapplied" and "alpha scaled to 3 (git says 1)" in outcome.message
    assert versions(env) == {"alpha": ("1.0.0", 1)} and artifact.read_text() == original
    assert "edited" not in (env.state_dir / "revisions" / sha / "shipyard.yaml").read_text()
    assert any(reason == "DriftReverted" for reason, _ in env.reconciler.events)


def test_restart_applies_the_last_commit_without_fetching(setup, tmp_path):
    origin, env, follower = setup
    sha = commit_project(origin, "first")
    asyncio.run(follower.start())
    origin.path.rename(tmp_path / "gone")  # the remote is unreachable now
    again = FakeEnvironment(env.state_dir)
    restarted = Follower(again, follower.settings, Mirror(env.state_dir / "git", follower.settings.url))
    asyncio.run(restarted.start())
    assert again.base is not None and again.base.revision == sha
    outcome = asyncio.run(restarted.sync("interval"))
    assert outcome.result == "failed" and restarted.status()["last_error"] and restarted.delay() == 60.0


def test_first_start_with_an_invalid_head_fails_in_one_line(setup):
    origin, env, follower = setup
    origin.commit("empty project", {"deploy/shipyard.yaml": "kind: Project\n"}, "2024-01-01T12:00:00+00:00")
    with pytest.raises(Exception, match="cannot follow .* shipyard.yaml:") as caught:
        asyncio.run(follower.start())
    assert "\n" not in str(caught.value)


def sign(body: bytes, secret: bytes = b"s3cret") -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def test_webhook_needs_a_valid_signature_and_the_followed_ref(setup):
    _, _, follower = setup
    push = json.dumps({"ref": "refs/heads/main", "after": "a" * 40}).encode()
    assert follower.handle_push(push, None)[0] == 401
    assert follower.handle_push(push, sign(push, b"wrong"))[0] == 401
    assert follower._requested is None  # nothing fetched
    other = json.dumps({"ref": "refs/heads/feature", "after": "a" * 40}).encode()
    code, answer = follower.handle_push(other, sign(other))
    assert code == 202 and not answer["accepted"] and "following main" in answer["message"]
    assert follower._requested is None
    code, answer = follower.handle_push(push, sign(push))
    assert code == 202 and answer["accepted"] and follower._requested == "webhook"


def test_webhook_without_a_secret_is_refused(origin: Origin, tmp_path: Path):
    env = FakeEnvironment(tmp_path / "state")
    settings = SourceSettings.create(str(origin.path), "main", "", 30.0, None)
    follower = Follower(env, settings, Mirror(env.state_dir / "git", settings.url))
    code, answer = follower.handle_push(b"{}", sign(b"{}"))
    assert code == 403 and "--webhook-secret-file" in answer["message"]


@pytest.mark.parametrize("body", [json.dumps({"push": {"changes": []}}).encode(),  # Bitbucket
                                  json.dumps({"zen": "ping"}).encode(), b"pipeline 42 done", b""])
def test_a_signed_delivery_that_is_not_a_push_still_fetches(setup, body: bytes):
    _, _, follower = setup
    assert follower.handle_push(body, None)[0] == 401 and follower._requested is None
    code, answer = follower.handle_push(body, sign(body))
    assert code == 202 and answer["accepted"] and follower._requested == "webhook"
