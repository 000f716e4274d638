"""What changes between two renderings of one environment, service by service (pure: dicts in, values out).

The inputs are `DesiredEnvironment.to_dict()` renderings, or None where the environment does not exist
at that revision. A caller may add `artifact.code` (a content hash of the artifact directory) to each
service, so that a change of the code alone also counts as a new release, as it does for the engine.

A change makes a new release when it touches what a release is made of (version, artifact, command,
env, dependencies, resources, health): the service then rolls out under its new `strategy.type`. A
change of replicas alone is a `scale`; any other change (routing, ingress, strategy settings, …) is
applied without replacing instances: `none`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from shipyard.engine.releases import dependency_env

MASK = "***"
SECRET_KEY = re.compile(r"password|secret|token|key|credential|private|api_key", re.IGNORECASE)
# The top-level fields a release is made of (besides the version); a change below one makes a new release.
RELEASE_FIELDS = frozenset({"artifact", "env", "needs", "resources", "health"})
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/@\s:]*:)[^/@\s]+@", re.IGNORECASE)

ChangeKind = Literal["added", "removed", "changed"]
Rollout = Literal["rolling", "recreate", "blue-green", "canary", "scale", "none"]


@dataclass(frozen=True)
class Change:
    """A value before and after; None on the side where it is absent."""

    before: Any
    after: Any

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.before, "to": self.after}


@dataclass(frozen=True)
class ConfigChange:
    """One changed setting, by its key path (`env.DB_URL`, `health.readiness.interval`); values masked."""

    key: str
    before: Any
    after: Any

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "from": self.before, "to": self.after}


@dataclass(frozen=True)
class ServiceDiff:
    """How one service changes: added, removed, or changed, and how the change will be carried out."""

    name: str
    change: ChangeKind
    version: Change | None
    replicas: Change | None
    config: tuple[ConfigChange, ...]
    rollout: Rollout
    new_release: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "change": self.change,
            "version": self.version.to_dict() if self.version else None,
            "replicas": self.replicas.to_dict() if self.replicas else None,
            "config": [item.to_dict() for item in self.config],
            "rollout": self.rollout,
        }


@dataclass(frozen=True)
class EnvironmentDiff:
    """The services of one environment that change (by name), and those that do not."""

    services: Mapping[str, ServiceDiff]
    unchanged: tuple[str, ...]
    existed: bool = True  # the environment exists at the base revision
    exists: bool = True  # … and at the target revision

    @property
    def changed(self) -> bool:
        return bool(self.services) or self.existed != self.exists

    def to_dict(self) -> dict[str, Any]:
        return {
            "services": {name: diff.to_dict() for name, diff in self.services.items()},
            "unchanged": list(self.unchanged),
        }


def diff_environment(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> EnvironmentDiff:
    """Compare two renderings of an environment (None: it does not exist at that revision)."""
    old = dict(before["services"]) if before else {}
    new = dict(after["services"]) if after else {}
    services: dict[str, ServiceDiff] = {}
    unchanged: list[str] = []
    for name in sorted(old.keys() | new.keys()):
        if name not in old:
            services[name] = _added(name, new[name])
        elif name not in new:
            services[name] = _removed(name, old[name])
        else:
            diff = _changed(name, old[name], new[name], _dependency_urls(name, old, new))
            if diff is None:
                unchanged.append(name)
            else:
                services[name] = diff
    return EnvironmentDiff(services, tuple(unchanged), existed=before is not None, exists=after is not None)


def is_secret(key: str) -> bool:
    """Whether a setting's value must not be shown: its last key component looks like a secret's name."""
    return bool(SECRET_KEY.search(key.rsplit(".", 1)[-1]))


def mask(key: str, value: Any) -> Any:
    """VALUE as it may be shown: `***` under a secret-looking key, and never a password inside a URL."""
    if value is None:
        return None
    if is_secret(key):
        return MASK
    if isinstance(value, str):
        return _URL_PASSWORD.sub(rf"\g<head>{MASK}@", value)
    if isinstance(value, list):
        return [mask(key, item) for item in value]
    return value


def _added(name: str, service: Mapping[str, Any]) -> ServiceDiff:
    return ServiceDiff(name, "added", Change(None, service.get("version")), Change(None, service.get("replicas")),
                       (), "scale", new_release=True)


def _removed(name: str, service: Mapping[str, Any]) -> ServiceDiff:
    return ServiceDiff(name, "removed", Change(service.get("version"), None), Change(service.get("replicas"), None),
                       (), "scale", new_release=False)


def _changed(name: str, old: Mapping[str, Any], new: Mapping[str, Any],
             dependencies: Mapping[str, tuple[str, str]]) -> ServiceDiff | None:
    version = Change(old.get("version"), new.get("version")) if old.get("version") != new.get("version") else None
    replicas = Change(old.get("replicas"), new.get("replicas")) if old.get("replicas") != new.get("replicas") else None
    flat_old = dict(_flatten(old, skip={"name", "version", "replicas"}))
    flat_new = dict(_flatten(new, skip={"name", "version", "replicas"}))
    for key, (url_old, url_new) in dependencies.items():  # the engine sets these over the service's own env
        flat_old[key], flat_new[key] = url_old, url_new
    keys = list(flat_new) + [key for key in flat_old if key not in flat_new]
    config = tuple(
        ConfigChange(key, mask(key, flat_old.get(key)), mask(key, flat_new.get(key)))
        for key in keys if flat_old.get(key) != flat_new.get(key)
    )
    if version is None and replicas is None and not config:
        return None
    new_release = version is not None or any(item.key.split(".", 1)[0] in RELEASE_FIELDS for item in config)
    rollout: Rollout
    if new_release:
        rollout = new.get("strategy", {}).get("type", "rolling")
    else:
        rollout = "scale" if replicas is not None else "none"
    return ServiceDiff(name, "changed", version, replicas, config, rollout, new_release)


def _flatten(value: Any, prefix: str = "", skip: frozenset[str] | set[str] = frozenset()) -> Iterator[tuple[str, Any]]:
    """Leaves of nested mappings as (`a.b.c`, value); lists and scalars are leaves, whole."""
    for key, item in value.items():
        if key in skip:
            continue
        path = f"{prefix}{key}"
        if isinstance(item, Mapping):
            yield from _flatten(item, f"{path}.")
        else:
            yield path, item


def _dependency_urls(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """`env.<NEED>_URL` before and after, for the needs whose declared port is known on both sides.

    A needed service's declared port is in its dependents' environment, so changing it makes them new
    releases too. An undeclared port is assigned once and kept, so it is left out.
    """
    urls_old = _urls(old[name], old)
    urls_new = _urls(new[name], new)
    return {f"env.{key}": (urls_old[key], urls_new[key]) for key in sorted(urls_old.keys() & urls_new.keys())}


def _urls(service: Mapping[str, Any], services: Mapping[str, Any]) -> dict[str, str]:
    ports = {
        need: services[need]["endpoint"]["port"] for need in service.get("needs", [])
        if need in services and (services[need].get("endpoint") or {}).get("port") is not None
    }
    return dependency_env(list(ports), ports)
