"""Against a real registry (Debian's docker-registry), with skopeo as the independent client."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from shipyard.artifacts.build import build_image
from shipyard.artifacts.errors import ArtifactError, DigestMismatch, NotFound
from shipyard.artifacts.layout import LayoutStore
from shipyard.artifacts.pull import BlobCache, pull, unpack
from shipyard.artifacts.registry import RegistryStore
from tests.artifacts.registry import need, running_registry


def test_push_pull_and_skopeo_agree(source: Path, tmp_path: Path) -> None:
    need("skopeo")
    _, image = build_image(source, "1.0.0")
    with running_registry(tmp_path / "reg") as registry:
        store = RegistryStore(f"{registry.host}/team")
        assert store.push("hello", "1.0.0", image) == image.digest
        assert store.versions("hello") == ["1.0.0"]
        assert store.resolve("hello", "1.0.0") == image.digest
        assert store.names() == ["hello"]
        done = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{registry.host}/team/hello:1.0.0"],
                              capture_output=True, text=True, check=True)
        assert json.loads(done.stdout)["Digest"] == image.digest
        # skopeo copies it into an OCI layout: the embedded store reads the same image
        (tmp_path / 'copy' / 'hello').mkdir(parents=True)
        subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{registry.host}/team/hello:1.0.0",
                        f"oci:{tmp_path / 'copy' / 'hello'}:1.0.0"], capture_output=True, check=True)
        assert LayoutStore(tmp_path / "copy").resolve("hello", "1.0.0") == image.digest
        pulled = pull(store, "hello", image.digest, BlobCache(tmp_path / "cache"))
        root = unpack(pulled, tmp_path / "roots")
        assert (root / "app" / "app.py").read_text() == (source / "app.py").read_text()
        with pytest.raises(NotFound, match=r"hello:9\.9\.9 is not in the registry .*versions: 1\.0\.0"):
            store.resolve("hello", "9.9.9")


def test_basic_auth(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, image = build_image(source, "1.0.0")
    with running_registry(tmp_path / "reg", "alice", "s3cret") as registry:
        monkeypatch.delenv("SHIPYARD_REGISTRY_USERNAME", raising=False)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        with pytest.raises(ArtifactError, match="unauthorized"):
            RegistryStore(f"{registry.host}/team").push("hello", "1.0.0", image)
        monkeypatch.setenv("SHIPYARD_REGISTRY_USERNAME", "alice")
        monkeypatch.setenv("SHIPYARD_REGISTRY_PASSWORD", "s3cret")
        store = RegistryStore(f"{registry.host}/team")
        store.push("hello", "1.0.0", image)
        assert store.resolve("hello", "1.0.0") == image.digest
        monkeypatch.delenv("SHIPYARD_REGISTRY_USERNAME")
        monkeypatch.delenv("SHIPYARD_REGISTRY_PASSWORD")
        # the usual docker config works too
        need("skopeo")
        config = tmp_path / "home" / ".docker" / "config.json"
        config.parent.mkdir(parents=True)
        subprocess.run(["skopeo", "login", "--tls-verify=false", "--authfile", str(config), "-u", "alice",
                        "--password-stdin", registry.host], input="s3cret", text=True, capture_output=True,
                       check=True)
        assert RegistryStore(f"{registry.host}/team").versions("hello") == ["1.0.0"]


def test_a_tampered_blob_in_the_registry_is_refused(source: Path, tmp_path: Path) -> None:
    _, image = build_image(source, "1.0.0")
    manifest = json.loads(image.manifest)
    layer = manifest["layers"][0]["digest"].split(":")[1]
    with running_registry(tmp_path / "reg") as registry:
        store = RegistryStore(f"{registry.host}/team")
        store.push("hello", "1.0.0", image)
        data = next(registry.root.rglob(f"blobs/sha256/{layer[:2]}/{layer}/data"))
        data.write_bytes(data.read_bytes()[:-8] + b"tampered")
        with pytest.raises(DigestMismatch, match="does not match its digest"):
            pull(store, "hello", image.digest, BlobCache(tmp_path / "cache"))
        assert not (tmp_path / "cache" / "blobs" / "sha256" / layer).exists()


def test_a_tampered_blob_in_the_embedded_store_is_refused(source: Path, tmp_path: Path) -> None:
    _, image = build_image(source, "1.0.0")
    store = LayoutStore(tmp_path / "store")
    store.push("hello", "1.0.0", image)
    layer = json.loads(image.manifest)["layers"][0]["digest"].split(":")[1]
    blob = tmp_path / "store" / "hello" / "blobs" / "sha256" / layer
    blob.write_bytes(blob.read_bytes() + b"x")
    with pytest.raises(DigestMismatch, match=f"hello@sha256:{layer}.*refusing it"):
        pull(store, "hello", image.digest, BlobCache(tmp_path / "cache"))


def test_an_unreachable_registry_fails_fast(tmp_path: Path) -> None:
    from tests.controlplane import free_port
    with pytest.raises(ArtifactError, match="cannot reach the registry"):
        RegistryStore(f"127.0.0.1:{free_port()}/team").versions("hello")


def test_a_malformed_digest_is_refused_before_any_file_is_read(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not a sha256 digest"):
        LayoutStore(tmp_path).blob("hello", "sha256:../../../etc/passwd")
