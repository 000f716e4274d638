"""Choosing a store: `--store DIR|REGISTRY`, else SHIPYARD_STORE, else the project's `store:` (for the
commands: the nearest shipyard.yaml at or above the source dir, or the working directory), else the
embedded default `~/.shipyard/artifacts`."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Protocol

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from shipyard.artifacts import oci
from shipyard.artifacts.errors import NotFound
from shipyard.artifacts.layout import LayoutStore

ENV_STORE = "SHIPYARD_STORE"


class ArtifactStore(Protocol):
    """Where artifacts live: names, their versions (tags), and content by digest (always verified)."""

    @property
    def location(self) -> str: ...
    def names(self) -> list[str]: ...
    def versions(self, name: str) -> list[str]: ...
    def resolve(self, name: str, version: str) -> str: ...
    def push(self, name: str, version: str, image: oci.Image) -> str: ...
    def manifest(self, name: str, digest: str) -> bytes: ...
    def blob(self, name: str, digest: str) -> bytes: ...


ENV_HOME = "SHIPYARD_HOME"


def is_registry(location: str) -> bool:
    """A store location names a registry when its first path part looks like HOST[:PORT] (has `.` or `:`)."""
    text = location.removeprefix("http://").removeprefix("https://")
    host = text.split("/", 1)[0]
    return location.startswith(("http://", "https://")) or ("/" in text and ("." in host or ":" in host)
                                                             and not location.startswith((".", "/", "~")))


def default_location() -> str:
    """The embedded store of this user: `$SHIPYARD_HOME/artifacts`, by default `~/.shipyard/artifacts`."""
    home = os.environ.get(ENV_HOME)
    return str((Path(home) if home else Path.home() / ".shipyard") / "artifacts")


def store_location(explicit: str | None = None, project_store: str | None = None,
                   project_root: Path | None = None) -> str:
    """The location in force, by precedence; a relative project `store:` is relative to the project."""
    if explicit:
        return explicit
    if os.environ.get(ENV_STORE):
        return os.environ[ENV_STORE]
    if project_store:
        if is_registry(project_store) or Path(project_store).expanduser().is_absolute() or project_root is None:
            return project_store
        return str(project_root / project_store)
    return default_location()


def nearest_project_store(start: Path) -> tuple[str | None, Path | None]:
    """The `store:` of the nearest shipyard.yaml (kind Project) at or above START, and that project's root."""
    for directory in [start.resolve(), *start.resolve().parents]:
        path = directory / "shipyard.yaml"
        if not path.is_file():
            continue
        try:
            data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
        except (OSError, YAMLError):
            return None, None
        if isinstance(data, dict) and data.get("kind") == "Project":
            store = data.get("store")
            return (str(store) if store else None), directory
        return None, None
    return None, None


def cli_store_location(explicit: str | None, near: Path) -> str:
    """For the commands: --store, $SHIPYARD_STORE, the nearest project's `store:` (from NEAR up), the default."""
    if explicit or os.environ.get(ENV_STORE):
        return store_location(explicit)
    project_store, root = nearest_project_store(near)
    return store_location(None, project_store, root)


def open_store(location: str) -> ArtifactStore:
    """A LayoutStore for a directory, a RegistryStore for `HOST[:PORT]/PREFIX`."""
    if is_registry(location):
        from shipyard.artifacts.registry import RegistryStore  # oras and requests: only for a registry

        return RegistryStore(location)
    return LayoutStore(Path(location).expanduser().absolute())


def current_digest(store: ArtifactStore, name: str, version: str) -> str | None:
    """What NAME:VERSION points at now, or None when the store has no such version (or no such name)."""
    try:
        return store.resolve(name, version)
    except NotFound:
        return None


def moved_tag_warning(name: str, version: str, before: str | None, after: str) -> str | None:
    """The warning for re-publishing a version with other content; releases keep the digest they pinned."""
    if before is None or before == after:
        return None
    return (f"warning: {name}:{version} moved from {before[:19]} to {after[:19]}; environments that pinned "
            f"the old digest keep running it — publish changed code as a new version")


def resolve_as_of(store: ArtifactStore, name: str, version: str, when: datetime | None) -> str:
    """NAME:VERSION's digest, as it was at WHEN when the store recorded that (the embedded store keeps a tag
    log; a registry does not, so it answers with the digest the tag has now)."""
    if when is not None and isinstance(store, LayoutStore):
        recorded = store.digest_at(name, version, when)
        if recorded is not None:
            return recorded
    return store.resolve(name, version)
