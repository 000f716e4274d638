"""Pure OCI image pieces: deterministic layer tars, image config, manifest, digests and provenance.

Hand-written on purpose: the OCI image spec's JSON documents are small and fixed, and what matters here
(byte-for-byte determinism of tar and gzip) is exactly what generic tools do not guarantee. The
distribution protocol is never hand-written: registry.py goes through `oras`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.artifacts.errors import ArtifactError, DigestMismatch

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
APP_DIR = "app"                      # where an app image keeps the service's files (its WorkingDir)

# provenance annotations (OCI pre-defined keys, plus Shipyard's own)
SOURCE = "org.opencontainers.image.source"
REVISION = "org.opencontainers.image.revision"
VERSION = "org.opencontainers.image.version"
CREATED = "org.opencontainers.image.created"
TITLE = "org.opencontainers.image.title"
REF_NAME = "org.opencontainers.image.ref.name"
BASE = "dev.shipyard.base"
DIRTY = "dev.shipyard.source.dirty"
PIPELINE = "dev.shipyard.pipeline"
HEALTH_READINESS = "dev.shipyard.health.readiness"
HEALTH_LIVENESS = "dev.shipyard.health.liveness"


def canonical(document: dict[str, Any]) -> bytes:
    """The bytes a JSON document is stored and pushed as (json.dumps defaults, as `oras` sends them)."""
    return json.dumps(document).encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"mediaType": media_type, "digest": sha256(data), "size": len(data)}
    if annotations:
        result["annotations"] = annotations
    return result


@dataclass(frozen=True)
class FileEntry:
    """One file of a layer: path inside the image, content (None for a directory), executable bit."""

    path: str
    data: bytes | None
    executable: bool = False
    link: str | None = None


@dataclass(frozen=True)
class Layer:
    blob: bytes          # gzip-compressed tar
    diff_id: str         # digest of the uncompressed tar


def make_layer(entries: list[FileEntry], mtime: int) -> Layer:
    """A gzip tar of ENTRIES, sorted by path, with fixed mtime, uid/gid 0, no names, normalised modes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(entries, key=lambda e: e.path):
            info = tarfile.TarInfo(entry.path)
            info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "", ""
            if entry.link is not None:
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.link, 0o777
                tar.addfile(info)
            elif entry.data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(entry.data), 0o755 if entry.executable else 0o644
                tar.addfile(info, io.BytesIO(entry.data))
    tar_bytes = raw.getvalue()
    compressed = io.BytesIO()
    with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0, filename="", compresslevel=6) as gz:
        gz.write(tar_bytes)
    return Layer(compressed.getvalue(), sha256(tar_bytes))


@dataclass(frozen=True)
class Image:
    """An image ready to store: its manifest and every blob it refers to, by digest."""

    manifest: bytes
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return sha256(self.manifest)


def image_config(command: list[str] | None, env: dict[str, str], workdir: str, created: str,
                 diff_ids: list[str], labels: dict[str, str], entrypoint: list[str] | None = None,
                 user: str = "") -> dict[str, Any]:
    config: dict[str, Any] = {"Env": [f"{k}={v}" for k, v in sorted(env.items())], "WorkingDir": workdir}
    if entrypoint:
        config["Entrypoint"] = list(entrypoint)
    if command:
        config["Cmd"] = list(command)
    if user:
        config["User"] = user
    if labels:
        config["Labels"] = dict(sorted(labels.items()))
    return {"created": created, "architecture": "amd64", "os": "linux", "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids}}


def assemble(config: dict[str, Any], layers: list[Layer], annotations: dict[str, str]) -> Image:
    """Manifest + config + layers, as an Image whose digest is the manifest's."""
    config_bytes = canonical(config)
    manifest = {
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": descriptor(CONFIG, config_bytes),
        "layers": [descriptor(LAYER_GZIP, layer.blob) for layer in layers],
        "annotations": dict(sorted(annotations.items())),
    }
    blobs = {sha256(config_bytes): config_bytes}
    blobs.update({sha256(layer.blob): layer.blob for layer in layers})
    return Image(canonical(manifest), blobs)


def parse_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise ArtifactError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ArtifactError(f"{what} is not a JSON object")
    return value


DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def blob_path(root: Path, digest: str) -> Path:
    """ROOT/sha256/<hex> for a well-formed DIGEST; anything else (say, `sha256:../x`) is refused."""
    if not DIGEST_RE.match(digest):
        raise ArtifactError(f"not a sha256 digest: {digest!r}")
    return root / "sha256" / digest.split(":", 1)[1]


def verify(data: bytes, digest: str, what: str) -> bytes:
    """DATA if it hashes to DIGEST, else DigestMismatch naming WHAT."""
    algorithm, _, expected = digest.partition(":")
    if algorithm != "sha256":
        raise ArtifactError(f"{what}: unsupported digest algorithm {algorithm!r}")
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise DigestMismatch(f"{what}: content does not match its digest {digest} (got sha256:{actual}); "
                             "the blob was altered, refusing it")
    return data


def write_file(path: Path, data: bytes) -> None:
    """Write atomically (a blob is there completely or not at all)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.replace(tmp, path)
