"""Golden tests of `render` on the example: the full desired state of each environment, every default filled in.

The shop runs `image:` artifacts whose digests change with every commit of this repository (the revision is
part of their provenance), so the golden files name the digest (`<digest of catalog:1.0.0>`) and the test
checks it is the one the store holds.

After an intended change of the format or of the example, regenerate the files and review their diff:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/spec/test_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from shipyard.artifacts.stores import default_location, open_store
from shipyard.spec.render import render

from .conftest import EXAMPLE

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_render_matches_golden(environment: str) -> None:
    desired = render(EXAMPLE, environment).to_dict()
    store = open_store(default_location())
    for service in desired["services"].values():
        artifact = service["artifact"]
        if artifact.get("image"):
            assert artifact["digest"] == store.resolve(artifact["image"], service["version"])
            artifact["digest"] = f"<digest of {artifact['image']}:{service['version']}>"
    rendered = json.dumps(desired, indent=2, sort_keys=False) + "\n"
    golden = GOLDEN / f"{environment}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(rendered, encoding="utf-8")
    assert golden.is_file(), f"{golden} is missing; create it with UPDATE_GOLDEN=1"
    assert rendered == golden.read_text(encoding="utf-8"), (
        f"render(examples/shop, {environment!r}) differs from tests/spec/golden/{environment}.json; if the change "
        "is intended, regenerate with UPDATE_GOLDEN=1 (see this module's docstring) and review the diff")


def test_golden_render_is_deterministic() -> None:
    assert render(EXAMPLE, "prod").to_dict() == render(EXAMPLE, "prod").to_dict()
