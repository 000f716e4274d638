from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from shipyard.artifacts import oci
from shipyard.artifacts.build import build_image
from shipyard.artifacts.errors import ArtifactError
from shipyard.artifacts.layout import LayoutStore
from tests.artifacts.registry import need


def _head(src: Path) -> str:
    return subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_same_inputs_same_digest_even_after_touching_files(source: Path) -> None:
    _, first = build_image(source, "1.0.0")
    os.utime(source / "app.py", (time.time() + 50, time.time() + 50))
    _, second = build_image(source, "1.0.0")
    assert first.digest == second.digest
    _, other = build_image(source, "1.0.1")
    assert other.digest != first.digest


def test_provenance_and_config(source: Path) -> None:
    _, image = build_image(source, "1.0.0")
    manifest = json.loads(image.manifest)
    notes = manifest["annotations"]
    assert notes[oci.REVISION] == _head(source)
    assert notes[oci.VERSION] == "1.0.0"
    assert notes[oci.DIRTY] == "false"
    config = json.loads(image.blobs[manifest["config"]["digest"]])
    assert config["config"]["Cmd"] == ["python3", "app.py"]
    assert config["config"]["Env"] == ["GREETING=hi"]
    assert config["config"]["Labels"][oci.HEALTH_READINESS] == "/"


def test_dirty_tree_is_marked(source: Path) -> None:
    (source / "app.py").write_text("print('changed')\n")
    _, image = build_image(source, "1.0.0")
    notes = json.loads(image.manifest)["annotations"]
    assert notes[oci.REVISION] == _head(source) + "-dirty"
    assert notes[oci.DIRTY] == "true"


def test_skopeo_reads_the_stored_image_and_its_layer(source: Path, tmp_path: Path) -> None:
    need("skopeo")
    _, image = build_image(source, "1.0.0")
    LayoutStore(tmp_path / "store").push("hello", "1.0.0", image)
    done = subprocess.run(["skopeo", "inspect", f"oci:{tmp_path / 'store' / 'hello'}:1.0.0"],
                          capture_output=True, text=True, check=True)
    info = json.loads(done.stdout)
    assert info["Digest"] == image.digest
    assert info["Labels"][oci.BASE] == "host"
    # skopeo copies it to a plain directory; the layer holds exactly the shipped files, owned by root
    subprocess.run(["skopeo", "copy", f"oci:{tmp_path / 'store' / 'hello'}:1.0.0", f"dir:{tmp_path / 'out'}"],
                   capture_output=True, check=True)
    layer = tmp_path / "out" / info["Layers"][0].split(":")[1]
    listing = subprocess.run(["tar", "-tvzf", str(layer)], capture_output=True, text=True, check=True).stdout
    names = sorted(line.split()[-1] for line in listing.splitlines())
    assert names == ["app/", "app/app.py", "app/artifact.yaml", "app/run.sh"]
    assert all(" 0/0 " in line for line in listing.splitlines())
    assert "rwxr-xr-x 0/0" in next(line for line in listing.splitlines() if line.endswith("run.sh"))


def test_a_full_image_base_is_refused_with_a_clear_error(source: Path) -> None:
    (source / "artifact.yaml").write_text("apiVersion: shipyard/v1\nkind: Artifact\nname: hello\nbase: debian\n")
    with pytest.raises(ArtifactError, match="app images"):
        build_image(source, "1.0.0")


def test_an_invalid_descriptor_names_file_line_and_field(source: Path) -> None:
    (source / "artifact.yaml").write_text("apiVersion: shipyard/v1\nkind: Artifact\nname: hello\n"
                                          "command: [python3]\nbogus: 1\n")
    with pytest.raises(ArtifactError, match=r"artifact.yaml:5:1: error: bogus: unknown field"):
        build_image(source, "1.0.0")
