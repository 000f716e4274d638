"""Unpacking layers (whiteouts, opaque dirs, symlinks kept inside the root) and choosing from an index."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from shipyard.artifacts import oci
from shipyard.artifacts.errors import ArtifactError
from shipyard.artifacts.layout import LayoutStore
from shipyard.artifacts.pull import PLATFORM_ARCH, BlobCache, apply_layer, pull, unpack
from tests.engine.test_images import _busybox_image


def _tar(*entries: tuple[str, str, bytes | str]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for kind, name, value in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, str(value)
                tar.addfile(info)
            else:
                data = value if isinstance(value, bytes) else value.encode()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def test_whiteouts_remove_files_and_opaque_dirs_empty_them(tmp_path: Path) -> None:
    apply_layer(tmp_path, _tar(("dir", "etc", ""), ("file", "etc/a", "1"), ("file", "etc/b", "2"),
                               ("dir", "var", ""), ("file", "var/old", "x"), ("file", "keep", "k")))
    apply_layer(tmp_path, _tar(("file", "etc/.wh.a", ""), ("file", "var/.wh..wh..opq", ""),
                               ("file", "var/new", "n"), ("file", "keep", "k2")))
    assert sorted(p.name for p in (tmp_path / "etc").iterdir()) == ["b"]
    assert sorted(p.name for p in (tmp_path / "var").iterdir()) == ["new"]
    assert (tmp_path / "keep").read_text() == "k2"


def test_symlinks_resolve_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    apply_layer(root, _tar(("sym", "bin", "/usr/bin"), ("dir", "usr", ""), ("dir", "usr/bin", ""),
                           ("sym", "escape", "/"), ("file", "bin/tool", "t"), ("file", "escape/etc-evil", "e")))
    assert (root / "usr" / "bin" / "tool").read_text() == "t"
    assert (root / "etc-evil").read_text() == "e"
    assert not (Path("/") / "etc-evil").exists()


def test_entries_that_climb_out_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="escapes the root"):
        apply_layer(tmp_path, _tar(("file", "../outside", "x")))


def test_an_index_resolves_to_this_machines_image(tmp_path: Path) -> None:
    _busybox_image(tmp_path / "store" / "web", "1.0.0", "hi")
    store = LayoutStore(tmp_path / "store")
    image = store.resolve("web", "1.0.0")
    size = len(store.manifest("web", image))
    index = oci.canonical({"schemaVersion": 2, "mediaType": oci.INDEX, "manifests": [
        {"mediaType": oci.MANIFEST, "digest": "sha256:" + "0" * 64, "size": 1,
         "platform": {"os": "linux", "architecture": "s390x"}},
        {"mediaType": oci.MANIFEST, "digest": image, "size": size,
         "platform": {"os": "linux", "architecture": PLATFORM_ARCH}}]})
    (tmp_path / "store" / "web" / "blobs" / "sha256" / oci.sha256(index).split(":")[1]).write_bytes(index)
    entry = {"mediaType": oci.INDEX, "digest": oci.sha256(index), "size": len(index),
             "annotations": {oci.REF_NAME: "multi"}}
    layout = json.loads((tmp_path / "store" / "web" / "index.json").read_text())
    layout["manifests"].append(entry)
    (tmp_path / "store" / "web" / "index.json").write_text(json.dumps(layout))
    pulled = pull(store, "web", store.resolve("web", "multi"), BlobCache(tmp_path / "cache"))
    assert pulled.digest == oci.sha256(index)
    assert (unpack(pulled, tmp_path / "roots") / "www" / "index.html").read_text() == "hi"
