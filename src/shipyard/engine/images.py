"""Artifact images for releases: the digest a version resolves to (pinned once seen), pulled and unpacked.

A version's digest is pinned in the environment's store the first time it is resolved, so re-tagging
`1.2.0` in the artifact store never changes what an environment runs. Blobs are cached in
`<state>/artifacts/blobs`, roots unpacked once per layer chain in `<state>/snapshots/oci-<chain>`: the
snapshot of an app image is its `/app`, that of a full image its whole root. After each change of
desired state, blobs and roots that no kept release refers to are removed (collect_garbage).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from shipyard.artifacts import oci
from shipyard.artifacts.imageuser import image_user
from shipyard.artifacts.pull import BlobCache, pull, unpack
from shipyard.artifacts.stores import ArtifactStore
from shipyard.engine.model import Release
from shipyard.engine.releases import ImageRun
from shipyard.state.store import Store

PIN_KEY = "artifact.pin"
KEEP_PER_SERVICE = 5      # releases per service whose artifacts stay cached (what runs, rollback targets)


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
                               workdir=str(config.get("WorkingDir") or "/"),
                               user=image_user(str(config.get("User") or ""), root))


def collect_garbage(state: Store, state_dir: Path, desired: list[Release],
                    keep_per_service: int = KEEP_PER_SERVICE) -> list[str]:
    """Remove cached blobs and unpacked roots no kept release refers to; the removed paths.

    Kept: the DESIRED releases, the newest KEEP_PER_SERVICE releases of each of their services
    (rollback targets) and the release of every recorded instance.
    """
    releases = list(desired)
    releases += [r for service in sorted({d.service for d in desired})
                 for _, r in state.releases(service)[-keep_per_service:]]
    releases += [r for r in (state.release(i.release) for i in state.instances()) if r is not None]
    cache = BlobCache(state_dir / "artifacts")
    keep_blobs: set[str] = set()
    keep_roots: set[str] = set()
    for release in releases:
        if not release.digest:
            continue
        keep_roots.add(release.snapshot.split("/")[0])
        keep_blobs.add(release.digest)
        try:
            manifest = json.loads(cache.path(release.digest).read_bytes())
        except (OSError, ValueError):
            continue
        keep_blobs.add(manifest.get("config", {}).get("digest", ""))
        keep_blobs.update(layer.get("digest", "") for layer in manifest.get("layers", []))
    removed = []
    snapshots = state_dir / "snapshots"
    for root in sorted(snapshots.glob("oci-*")) if snapshots.is_dir() else []:
        if root.name not in keep_roots:
            shutil.rmtree(root, ignore_errors=True)
            removed.append(str(root))
    blobs = cache.root / "blobs" / "sha256"
    for blob in sorted(blobs.iterdir()) if blobs.is_dir() else []:
        if f"sha256:{blob.name}" not in keep_blobs and not blob.name.startswith("."):
            blob.unlink(missing_ok=True)
            removed.append(str(blob))
    return removed
