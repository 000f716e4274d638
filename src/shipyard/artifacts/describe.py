"""What `artifacts list` and `artifacts inspect` show: an artifact's identity and provenance (pure)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from shipyard.artifacts import oci

if TYPE_CHECKING:
    from shipyard.artifacts.stores import ArtifactStore


def describe(name: str, version: str, digest: str, manifest: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The inspect record: name, version, digest, source {url, revision, dirty}, created, pipeline, image."""
    annotations = manifest.get("annotations") or {}
    revision = str(annotations.get(oci.REVISION, "unknown"))
    dirty = annotations.get(oci.DIRTY)
    is_dirty = dirty == "true" if dirty is not None else revision.endswith("-dirty")
    try:
        pipeline = json.loads(annotations.get(oci.PIPELINE, "{}")).get("stages", [])
    except ValueError:
        pipeline = []
    image_config = config.get("config") or {}
    size = sum(int(layer.get("size", 0)) for layer in manifest.get("layers", []))
    return {
        "name": name, "version": version, "digest": digest,
        "source": {"url": annotations.get(oci.SOURCE), "revision": revision.removesuffix("-dirty"),
                   "dirty": is_dirty},
        "created": annotations.get(oci.CREATED) or config.get("created"),
        "pipeline": pipeline,
        "kind": "app" if annotations.get(oci.BASE) == "host" else "full",
        "size": size,
        "command": [*(image_config.get("Entrypoint") or []), *(image_config.get("Cmd") or [])],
        "workdir": image_config.get("WorkingDir") or "/",
        "env": list(image_config.get("Env") or []),
        "labels": dict(image_config.get("Labels") or {}),
        "annotations": dict(annotations),
    }


def inspect_artifact(store: "ArtifactStore", name: str, version: str) -> dict[str, Any]:
    """The inspect record of NAME:VERSION read from STORE (manifest and config verified by digest)."""
    digest = store.resolve(name, version)
    manifest = oci.parse_json(store.manifest(name, digest), f"manifest {digest}")
    config_digest = manifest.get("config", {}).get("digest", "")
    config = oci.parse_json(store.blob(name, config_digest), f"config {config_digest}") if config_digest else {}
    return describe(name, version, digest, manifest, config)


def list_artifacts(store: "ArtifactStore", name: str | None = None) -> list[dict[str, Any]]:
    """Every version of NAME (or of every artifact) with its digest, created time and source revision."""
    rows = []
    for artifact in [name] if name else store.names():
        for version in store.versions(artifact):
            record = inspect_artifact(store, artifact, version)
            rows.append({key: record[key] for key in ("name", "version", "digest", "created", "source", "kind",
                                                      "size", "pipeline")})
    return rows
