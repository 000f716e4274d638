"""The diff of two renderings of an environment: table-driven, no files, no git."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shipyard.preview.diff import MASK, diff_environment, is_secret, mask


def service(name: str = "catalog", **changes: Any) -> dict[str, Any]:
    """A service as `DesiredEnvironment.to_dict()` has it; CHANGES set key paths (`health__readiness__interval`)."""
    data: dict[str, Any] = {
        "name": name, "version": "1.0.0",
        "artifact": {"path": f"apps/{name}", "command": ["python3", "app.py"], "code": "c0de"},
        "replicas": 3, "endpoint": {"port": None}, "ingress": None,
        "env": {"CURRENCY": "EUR", "DB_PASSWORD": "hunter2"}, "needs": [],
        "resources": {"cpu": 0.25, "memory": 134217728},
        "health": {"readiness": {"path": "/healthz", "interval": 0.5}, "startupTimeout": 10.0},
        "stop": {"gracePeriod": 5.0}, "routing": {"timeout": 0.0, "retries": 2},
        "strategy": {"type": "canary", "canary": {"steps": [10, 50, 100]}},
    }
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = data
        for key in parents:
            target = target[key]
        if value is DELETE:
            del target[last]
        else:
            target[last] = value
    return data


DELETE = object()


def environment(*services: dict[str, Any]) -> dict[str, Any]:
    return {"project": "shop", "environment": "prod", "services": {s["name"]: s for s in services}}


def changed(**changes: Any) -> dict[str, Any]:
    """The one service's diff when CHANGES are made to it."""
    diff = diff_environment(environment(service()), environment(service(**changes)))
    assert diff.unchanged == ()
    return diff.services["catalog"].to_dict()


@pytest.mark.parametrize(("changes", "version", "replicas", "config", "rollout"), [
    ({"version": "1.1.0"}, {"from": "1.0.0", "to": "1.1.0"}, None, [], "canary"),
    ({"replicas": 5}, None, {"from": 3, "to": 5}, [], "scale"),
    ({"version": "2.0.0", "replicas": 1}, {"from": "1.0.0", "to": "2.0.0"}, {"from": 3, "to": 1}, [], "canary"),
    ({"env__CURRENCY": "USD"}, None, None, [{"key": "env.CURRENCY", "from": "EUR", "to": "USD"}], "canary"),
    ({"env__CURRENCY": DELETE}, None, None, [{"key": "env.CURRENCY", "from": "EUR", "to": None}], "canary"),
    ({"resources__memory": 268435456}, None, None,
     [{"key": "resources.memory", "from": 134217728, "to": 268435456}], "canary"),
    ({"health__readiness__interval": 1.0}, None, None,
     [{"key": "health.readiness.interval", "from": 0.5, "to": 1.0}], "canary"),
    ({"artifact__command": ["python3", "main.py"]}, None, None,
     [{"key": "artifact.command", "from": ["python3", "app.py"], "to": ["python3", "main.py"]}], "canary"),
    ({"artifact__code": "beef"}, None, None, [{"key": "artifact.code", "from": "c0de", "to": "beef"}], "canary"),
    ({"needs": ["orders"]}, None, None, [{"key": "needs", "from": [], "to": ["orders"]}], "canary"),
    # Not part of a release: applied without replacing instances.
    ({"routing__timeout": 5.0}, None, None, [{"key": "routing.timeout", "from": 0.0, "to": 5.0}], "none"),
    ({"stop__gracePeriod": 30.0}, None, None, [{"key": "stop.gracePeriod", "from": 5.0, "to": 30.0}], "none"),
    ({"ingress": {"host": "shop.example", "path": None}}, None, None,
     [{"key": "ingress.host", "from": None, "to": "shop.example"}], "none"),
    ({"strategy__canary__steps": [50, 100]}, None, None,
     [{"key": "strategy.canary.steps", "from": [10, 50, 100], "to": [50, 100]}], "none"),
    ({"strategy__type": "rolling", "replicas": 4}, None, {"from": 3, "to": 4},
     [{"key": "strategy.type", "from": "canary", "to": "rolling"}], "scale"),
    # A release rolls out under the strategy the new revision names.
    ({"strategy__type": "blue-green", "version": "1.0.1"}, {"from": "1.0.0", "to": "1.0.1"}, None,
     [{"key": "strategy.type", "from": "canary", "to": "blue-green"}], "blue-green"),
    ({"strategy__type": "recreate", "env__CURRENCY": "CHF"}, None, None,
     [{"key": "env.CURRENCY", "from": "EUR", "to": "CHF"},
      {"key": "strategy.type", "from": "canary", "to": "recreate"}], "recreate"),
    # Secret-looking keys are compared, but never shown.
    ({"env__DB_PASSWORD": "correct horse"}, None, None, [{"key": "env.DB_PASSWORD", "from": MASK, "to": MASK}], "canary"),
    ({"env__API_KEY": "abc123"}, None, None, [{"key": "env.API_KEY", "from": None, "to": MASK}], "canary"),
    ({"env__DB_PASSWORD": DELETE}, None, None, [{"key": "env.DB_PASSWORD", "from": MASK, "to": None}], "canary"),
    ({"env__DB_URL": "postgres://shop:hunter2@db:5432/shop"}, None, None,
     [{"key": "env.DB_URL", "from": None, "to": "postgres://shop:***@db:5432/shop"}], "canary"),
])  # fmt: skip
def test_service_changes(changes, version, replicas, config, rollout):
    assert changed(**changes) == {
        "change": "changed", "version": version, "replicas": replicas, "config": config, "rollout": rollout,
    }


@pytest.mark.parametrize(("key", "secret"), [
    ("env.DB_PASSWORD", True), ("env.password", True), ("env.Password", True), ("env.GITHUB_TOKEN", True),
    ("env.API_KEY", True), ("env.apiKey", True), ("env.api_key", True), ("env.SSH_PRIVATE_KEY", True),
    ("env.AWS_SECRET_ACCESS_KEY", True), ("env.DB_CREDENTIALS", True), ("env.SIGNING_KEY_ID", True),
    ("env.DB_URL", False), ("env.CURRENCY", False), ("env.LOG_LEVEL", False), ("resources.memory", False),
    ("health.readiness.path", False), ("artifact.command", False),
    # Only the last component counts: a secret's neighbour is not a secret.
    ("env.SECRET_NAME.value", False), ("secrets.path", False),
])  # fmt: skip
def test_secret_rule(key, secret):
    assert is_secret(key) is secret


@pytest.mark.parametrize(("key", "value", "shown"), [
    ("env.TOKEN", "abc", MASK),
    ("env.TOKEN", None, None),
    ("env.TOKEN", ["a", "b"], MASK),
    ("env.DB_URL", "postgres://app:s3cr3t@db/shop", "postgres://app:***@db/shop"),
    ("env.CACHE_URL", "redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
    ("env.API_URL", "https://api.example.com:8443/v1", "https://api.example.com:8443/v1"),
    ("env.API_URL", "https://user@api.example.com/a:b@c", "https://user@api.example.com/a:b@c"),
    ("artifact.command", ["curl", "https://u:p@host/x"], ["curl", "https://u:***@host/x"]),
    ("replicas", 3, 3),
])  # fmt: skip
def test_mask(key, value, shown):
    assert mask(key, value) == shown


def test_identical_environments_change_nothing():
    before = environment(service("catalog"), service("orders"))
    diff = diff_environment(before, copy.deepcopy(before))
    assert not diff.changed
    assert diff.to_dict() == {"services": {}, "unchanged": ["catalog", "orders"]}


def test_added_and_removed_services():
    diff = diff_environment(environment(service("catalog"), service("legacy", version="0.9.0", replicas=1)),
                            environment(service("catalog"), service("payments", replicas=2)))
    assert diff.to_dict() == {
        "services": {
            "legacy": {"change": "removed", "version": {"from": "0.9.0", "to": None},
                       "replicas": {"from": 1, "to": None}, "config": [], "rollout": "scale"},
            "payments": {"change": "added", "version": {"from": None, "to": "1.0.0"},
                         "replicas": {"from": None, "to": 2}, "config": [], "rollout": "scale"},
        },
        "unchanged": ["catalog"],
    }


@pytest.mark.parametrize(("before", "after", "existed", "exists", "change"), [
    (None, environment(service()), False, True, "added"),
    (environment(service()), None, True, False, "removed"),
])  # fmt: skip
def test_environment_absent_at_one_revision(before, after, existed, exists, change):
    diff = diff_environment(before, after)
    assert (diff.existed, diff.exists, diff.changed) == (existed, exists, True)
    assert diff.services["catalog"].change == change


def test_environment_absent_at_both_revisions():
    diff = diff_environment(None, None)
    assert not diff.changed and diff.to_dict() == {"services": {}, "unchanged": []}


def test_a_needed_services_declared_port_is_a_new_release_of_its_dependents():
    def shop(port: int) -> dict[str, Any]:
        return environment(service("catalog", endpoint={"port": port}), service("orders", needs=["catalog"]))

    diff = diff_environment(shop(9101), shop(9201))
    orders = diff.services["orders"].to_dict()
    assert orders["config"] == [
        {"key": "env.CATALOG_URL", "from": "http://127.0.0.1:9101", "to": "http://127.0.0.1:9201"}
    ]
    assert orders["rollout"] == "canary"
    assert diff.services["catalog"].rollout == "none"  # its own port is routing, not a release


def test_an_undeclared_port_is_kept_so_dependents_do_not_change():
    before = environment(service("catalog"), service("orders", needs=["catalog"]))
    after = environment(service("catalog", endpoint={"port": 9101}), service("orders", needs=["catalog"]))
    assert list(diff_environment(before, after).services) == ["catalog"]
