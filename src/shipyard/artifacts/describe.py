"""What `artifacts list` and `artifacts inspect` show: an artifact's identity and provenance (pure)."""

from __future__ import annotations

import json
from typing import Any

from shipyard.artifacts import oci


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
