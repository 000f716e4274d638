"""Pulling an artifact by digest into a verified blob cache, and unpacking its layers into a root.

The blob cache is `CACHE/blobs/sha256/<hex>`: each blob is verified against its digest when it arrives
and written atomically, so a cached blob is always good. Roots are `ROOTS/<chain>` where the chain is a
hash of the layer digests in order: the same layers are unpacked once, whatever the tag. Layers are
applied in order with OCI whiteouts honoured (`.wh.NAME` deletes NAME, `.wh..wh..opq` empties a
directory); no entry may escape the root (symlinks are resolved inside it, chroot-style).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import platform
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.artifacts import oci
from shipyard.artifacts.errors import ArtifactError
from shipyard.artifacts.stores import ArtifactStore

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
PLATFORM_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
MOUNT_POINTS = ("dev", "proc", "tmp", "data")   # where bubblewrap mounts /dev, /proc, /tmp and the data dir


@dataclass(frozen=True)
class Pulled:
    name: str
    digest: str
    manifest: dict[str, Any]
    config: dict[str, Any]
    layers: tuple[Path, ...]       # cached blob files, in order

    @property
    def chain(self) -> str:
        digests = "\n".join(layer["digest"] for layer in self.manifest.get("layers", []))
        return hashlib.sha256(digests.encode()).hexdigest()[:16]

    @property
    def is_app(self) -> bool:
        return self.manifest.get("annotations", {}).get(oci.BASE) == "host"


class BlobCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        return oci.blob_path(self.root / "blobs", digest)

    def fetch(self, store: ArtifactStore, name: str, digest: str, manifest: bool = False) -> Path:
        path = self.path(digest)
        if not path.is_file():
            data = store.manifest(name, digest) if manifest else store.blob(name, digest)  # verified by the store
            oci.write_file(path, oci.verify(data, digest, f"{name}@{digest}"))
        return path


def pull(store: ArtifactStore, name: str, digest: str, cache: BlobCache) -> Pulled:
    """Manifest, config and layers of NAME@DIGEST in the cache (only what is missing is fetched)."""
    manifest = oci.parse_json(cache.fetch(store, name, digest, manifest=True).read_bytes(), f"manifest {digest}")
    if "manifests" in manifest:   # an index (multi-platform image): this machine's entry
        chosen = platform_manifest(manifest)
        if chosen is None:
            raise ArtifactError(f"{name}@{digest}: the index has no image for linux/{PLATFORM_ARCH}")
        manifest = oci.parse_json(cache.fetch(store, name, chosen, manifest=True).read_bytes(), f"manifest {chosen}")
    if "layers" not in manifest or "config" not in manifest:
        raise ArtifactError(f"{name}@{digest} is not an image manifest (media type "
                            f"{manifest.get('mediaType', 'unknown')})")
    config_digest = manifest["config"]["digest"]
    config = oci.parse_json(cache.fetch(store, name, config_digest).read_bytes(), f"config {config_digest}")
    layers = tuple(cache.fetch(store, name, layer["digest"]) for layer in manifest["layers"])
    return Pulled(name, digest, manifest, config, layers)


def platform_manifest(index: dict[str, Any]) -> str | None:
    """The digest of the linux/amd64 (this machine's) image of an OCI index or Docker manifest list."""
    for entry in index.get("manifests", []):
        wanted = entry.get("platform") or {}
        if wanted.get("os", "linux") == "linux" and wanted.get("architecture", PLATFORM_ARCH) == PLATFORM_ARCH:
            return str(entry["digest"])
    return None


def unpack(pulled: Pulled, roots: Path) -> Path:
    """The read-only root of PULLED under ROOTS (made once per layer chain; atomic)."""
    target = roots / f"oci-{pulled.chain}"
    if target.is_dir():
        return target
    roots.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".oci-{pulled.chain}-", dir=roots))
    try:
        tree = staging / "root"
        tree.mkdir()
        for layer in pulled.layers:
            apply_layer(tree, layer.read_bytes())
        if not pulled.is_app:
            for point in MOUNT_POINTS:
                _resolve(tree, point).mkdir(exist_ok=True)
        os.chmod(tree, 0o755)
        try:
            os.rename(tree, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def apply_layer(root: Path, blob: bytes) -> None:
    """Apply one layer (gzip or plain tar) onto ROOT, honouring whiteouts."""
    data = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                _apply(root, tar, member)
    except tarfile.TarError as exc:
        raise ArtifactError(f"a layer is not a valid tar archive: {exc}") from exc


def _apply(root: Path, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
    relative = _clean(member.name)
    if not relative:
        return
    parent_rel, _, base = relative.rpartition("/")
    parent = _resolve(root, parent_rel) if parent_rel else root
    if base == OPAQUE:
        if parent.is_dir():
            for child in parent.iterdir():
                _remove(child)
        return
    if base.startswith(WHITEOUT):
        _remove(parent / base[len(WHITEOUT):])
        return
    parent.mkdir(parents=True, exist_ok=True)
    target = parent / base
    if member.isdir():
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            _remove(target)
        target.mkdir(exist_ok=True)
        os.chmod(target, (member.mode & 0o7777) | 0o700)
        return
    _remove(target)
    if member.issym():
        os.symlink(member.linkname, target)
    elif member.islnk():
        source = _resolve(root, _clean(member.linkname))
        if source.is_file():
            os.link(source, target)
    elif member.isreg():
        extracted = tar.extractfile(member)
        with open(target, "wb") as out:
            shutil.copyfileobj(extracted, out)  # type: ignore[arg-type]
        os.chmod(target, member.mode & 0o7777)
    # devices and fifos are not unpacked: instances get a private /dev from bubblewrap


def _clean(name: str) -> str:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArtifactError(f"a layer entry escapes the root: {name!r}")
    return "/".join(parts)


def _resolve(root: Path, relative: str, hops: int = 0) -> Path:
    """ROOT/RELATIVE with every symlink on the way resolved inside ROOT (as if ROOT were `/`)."""
    current = root
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    for index, part in enumerate(parts):
        if part == "..":
            current = current.parent if current != root else root
            continue
        candidate = current / part
        if candidate.is_symlink():
            if hops > 40:
                raise ArtifactError(f"too many symlinks resolving {relative!r} in a layer")
            link = os.readlink(candidate)
            base = root if link.startswith("/") else current
            rest = "/".join(parts[index + 1:])
            inner = os.path.relpath(base / link.lstrip("/"), root) if not link.startswith("/") else link.lstrip("/")
            return _resolve(root, "/".join(p for p in (inner, rest) if p and p != "."), hops + 1)
        current = candidate
    return current


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
