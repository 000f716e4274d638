"""The embedded store: an OCI image layout directory per artifact name (`STORE/<name>/`), no server needed.

Each name's directory is a standard OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`), its
versions are the index's `org.opencontainers.image.ref.name` annotations, so `skopeo inspect
oci:STORE/catalog:1.2.0` and `skopeo copy` work on it as they are. Beside the layout, `tags.jsonl` records
every publication of a version (digest and time), so a past render can name the digest a version had then.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from shipyard.artifacts import oci
from shipyard.artifacts.errors import ArtifactError, NotFound

LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
TAG_LOG = "tags.jsonl"


class LayoutStore:
    """Artifacts in a directory of OCI image layouts."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        return str(self.root)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "index.json").is_file())

    def versions(self, name: str) -> list[str]:
        return sorted({str(m.get("annotations", {}).get(oci.REF_NAME)) for m in self._index(name)["manifests"]
                       if m.get("annotations", {}).get(oci.REF_NAME)}, key=_version_key)

    def resolve(self, name: str, version: str) -> str:
        for entry in self._index(name)["manifests"]:
            if entry.get("annotations", {}).get(oci.REF_NAME) == version:
                return str(entry["digest"])
        versions = self.versions(name)
        raise NotFound(f"{name}:{version} is not in the store {self.location} (versions: "
                       f"{', '.join(versions) or 'none'})", versions)

    def push(self, name: str, version: str, image: oci.Image) -> str:
        directory = self.root / name
        directory.mkdir(parents=True, exist_ok=True)
        for digest, data in image.blobs.items():
            self._put_blob(directory, digest, data)
        self._put_blob(directory, image.digest, image.manifest)
        with _locked(directory):
            index = self._index(name, missing_ok=True)
            kept = [m for m in index["manifests"] if m.get("annotations", {}).get(oci.REF_NAME) != version]
            kept.append(oci.descriptor(oci.MANIFEST, image.manifest, {oci.REF_NAME: version}))
            index["manifests"] = kept
            oci.write_file(directory / "oci-layout", json.dumps(LAYOUT_VERSION).encode())
            oci.write_file(directory / "index.json", json.dumps(index, indent=1).encode())
            with (directory / TAG_LOG).open("a", encoding="utf-8") as log:
                log.write(json.dumps({"version": version, "digest": image.digest,
                                      "at": datetime.now(timezone.utc).isoformat()}) + "\n")
        return image.digest

    def digest_at(self, name: str, version: str, when: datetime) -> str | None:
        """The digest NAME:VERSION had at WHEN (its last publication before then), None if not recorded."""
        found = None
        try:
            lines = (self.root / name / TAG_LOG).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        for line in lines:
            try:
                record = json.loads(line)
                published = datetime.fromisoformat(record["at"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line after a crash
            if record.get("version") == version and published <= when:
                found = str(record["digest"])
        return found

    def manifest(self, name: str, digest: str) -> bytes:
        return self.blob(name, digest)

    def blob(self, name: str, digest: str) -> bytes:
        path = oci.blob_path(self.root / name / "blobs", digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"{name}@{digest}: blob not found in the store {self.location}") from exc
        return oci.verify(data, digest, f"{name}@{digest} in {self.location}")

    def _put_blob(self, directory: Path, digest: str, data: bytes) -> None:
        path = oci.blob_path(directory / "blobs", digest)
        if not path.exists():
            oci.write_file(path, data)

    def _index(self, name: str, missing_ok: bool = False) -> dict[str, Any]:
        path = self.root / name / "index.json"
        try:
            index = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            if missing_ok:
                return {"schemaVersion": 2, "mediaType": oci.INDEX, "manifests": []}
            raise NotFound(f"artifact {name!r} is not in the store {self.location} (artifacts: "
                           f"{', '.join(self.names()) or 'none'})") from exc
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{path}: unreadable OCI index: {exc}") from exc
        index.setdefault("manifests", [])
        return dict(index)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _version_key(version: str) -> tuple[Any, ...]:
    """Versions in numeric order where they are numbers (1.10.0 after 1.9.0)."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in version.replace("-", ".").split("."))
