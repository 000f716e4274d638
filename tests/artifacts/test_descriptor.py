from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.artifacts.descriptor import load_descriptor
from shipyard.artifacts.errors import ArtifactError

SHOP_APPS = sorted((Path(__file__).resolve().parents[2] / "examples" / "shop" / "apps").glob("*/artifact.yaml"))


@pytest.mark.parametrize("path", SHOP_APPS, ids=[p.parent.name for p in SHOP_APPS])
def test_the_example_shop_describes_each_service(path: Path) -> None:
    descriptor = load_descriptor(path.parent)
    assert descriptor.name == path.parent.name
    assert [s.name for s in descriptor.pipeline.stages] == ["unit", "component"]


def test_app_images_need_a_command_and_stage_names_are_unique(tmp_path: Path) -> None:
    (tmp_path / "artifact.yaml").write_text("apiVersion: shipyard/v1\nkind: Artifact\nname: x\n")
    with pytest.raises(ArtifactError, match="needs a `command`"):
        load_descriptor(tmp_path)
    (tmp_path / "artifact.yaml").write_text("apiVersion: shipyard/v1\nkind: Artifact\nname: x\ncommand: [a]\n"
                                            "pipeline: {stages: [{name: unit, command: a}, {name: unit, command: b}]}\n")
    with pytest.raises(ArtifactError, match="unique"):
        load_descriptor(tmp_path)


def test_a_missing_descriptor_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"artifact.yaml: not found"):
        load_descriptor(tmp_path)
