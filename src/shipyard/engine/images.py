"""Artifact images for releases: the digest a version resolves to (pinned once seen), pulled and unpacked.

A version's digest is pinned in the environment's store the first time it is resolved, so re-tagging
`1.2.0` in the artifact store never changes what an environment runs. Blobs are cached in
`<state>/artifacts/blobs`, roots unpacked once per layer chain in `<state>/snapshots/oci-<chain>`: the
snapshot of an app image is its `/app`, that of a full image its whole root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.artifacts import oci
from shipyard.artifacts.pull import BlobCache, pull, unpack
from shipyard.artifacts.stores import ArtifactStore
from shipyard.engine.releases import ImageRun
from shipyard.state.store import Store

PIN_KEY = "artifact.pin"


def pinned_digest(state: Store, location: str, image: str, version: str, resolved: str) -> str:
    """The digest first resolved for IMAGE:VERSION from LOCATION in this environment (RESOLVED if new)."""
    pins: dict[str, Any] = dict(state.get(PIN_KEY, {}) or {})
    key = f"{location}/{image}:{version}"
    if key not in pins:
        pins[key] = resolved
        state.put(PIN_KEY, pins)
    return str(pins[key])


def prepare_image(store: ArtifactStore, image: str, digest: str, state_dir: Path) -> tuple[str, ImageRun]:
    """Pull IMAGE@DIGEST (verified, cached), unpack it; the snapshot key and what it brings to the release."""
    pulled = pull(store, image, digest, BlobCache(state_dir / "artifacts"))
    root = unpack(pulled, state_dir / "snapshots")
    config = pulled.config.get("config") or {}
    env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    command = (*(config.get("Entrypoint") or []), *(config.get("Cmd") or []))
    if pulled.is_app:
        return f"{root.name}/{oci.APP_DIR}", ImageRun(image, digest, tuple(command), env)
    return root.name, ImageRun(image, digest, tuple(command), env, rootfs=True,
                               workdir=str(config.get("WorkingDir") or "/"))
