"""Promotion edits keep an overlay's comments and layout: the diff is the one line that changed."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from shipyard.promotion.overlay import set_version

PROD = (Path(__file__).resolve().parents[2] / "examples" / "shop" / "environments" / "prod.yaml").read_text()


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_an_existing_version_changes_in_place_and_nothing_else_does():
    after = set_version(PROD, "catalog", "1.1.0")
    assert changed_lines(PROD, after) == ['-    version: "1.0.0"', '+    version: "1.1.0"']


def test_a_service_without_a_version_gets_one_line_in_its_own_indentation():
    after = set_version(PROD, "orders", "2.0.0")
    assert changed_lines(PROD, after) == ['+    version: "2.0.0"']
    assert "  orders:\n    version: \"2.0.0\"\n    replicas: 3\n" in after


@pytest.mark.parametrize("text", [
    "services:\n  catalog: # keep me\n    version: 1.0.0  # pinned\n",
    "services:\n  catalog:\n    version: '1.0.0'\n",
])
def test_quoted_plain_and_commented_values(text):
    after = set_version(text, "catalog", "1.10")
    assert 'version: "1.10"' in after and ("# keep me" in after) == ("# keep me" in text)
    assert after.count("\n") == text.count("\n")


@pytest.mark.parametrize("text", ["services:\n  catalog:\n", "services:\n  catalog: {}\n", "services: {catalog: {replicas: 2}}\n",
                                  "name: dev\n"])
def test_overlays_without_a_block_mapping_are_round_tripped(text):
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load(set_version(text, "catalog", "3.0.0"))
    assert data["services"]["catalog"]["version"] == "3.0.0"
