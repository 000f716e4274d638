"""flagd's own JSON schemas and their test cases (vendored in tests/fixtures/flagd-schemas) as the oracle of
the format: what Shipyard renders conforms to flags.json; what the schema's negative cases break, Shipyard's
validation rejects; its positive cases pass (but for the documented stricter rule: defaultVariant required)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from shipyard.flags.files import load_flags
from shipyard.spec.render import render

from .oracle_flags import FLAG_FILE

SCHEMAS = Path(__file__).resolve().parents[1] / "fixtures" / "flagd-schemas"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shop"
STRICTER = {"no-default-variant.json", "undefined-default-variant.json"}  # Shipyard requires defaultVariant
FLAGD_CONFIG = {"example.flagdimport.array.json", "example.flagdimport.map.json"}  # flagd.json documents, not flags.json


def validator() -> jsonschema.protocols.Validator:
    flags = json.loads((SCHEMAS / "flags.json").read_text())
    targeting = json.loads((SCHEMAS / "targeting.json").read_text())
    registry = Registry().with_resources([
        (flags["$id"], Resource.from_contents(flags)), (targeting["$id"], Resource.from_contents(targeting)),
        ("./targeting.json", Resource.from_contents(targeting)),
    ])
    return jsonschema.Draft7Validator(flags, registry=registry)


def cases(kind: str, sign: str) -> list[Path]:
    return sorted((SCHEMAS / "test" / kind / sign).glob("*.json"))


def problems_of(tmp_path: Path, document: dict[str, Any]) -> list[str]:
    (tmp_path / "flags").mkdir(exist_ok=True)
    (tmp_path / "flags" / "case.json").write_text(json.dumps(document, indent=2))
    return [str(p) for p in load_flags(tmp_path, None)[1]]


def flag_with(rule: Any) -> dict[str, Any]:
    """A flag whose targeting is RULE, with every literal of the rule as a variant (results are checked too)."""
    literals: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)
        elif node is not None:
            literals.add(json.dumps(node) if not isinstance(node, str) else node)

    collect(rule)
    variants = {name: "x" for name in {"true" if n == "true" else n for n in literals} | {"x"}}
    return {"flags": {"f": {"state": "ENABLED", "variants": variants, "defaultVariant": "x", "targeting": rule}},
            "$evaluators": {"some-ref": {"==": [1, 1]}}}


@pytest.mark.parametrize("document", [
    pytest.param(render(EXAMPLE, "prod").to_dict()["flags"], id="shop prod"),
    pytest.param(render(EXAMPLE, "dev").to_dict()["flags"], id="shop dev"),
    pytest.param(FLAG_FILE, id="oracle flag file"),
])
def test_what_shipyard_renders_conforms_to_flagds_schema(document: dict[str, Any]) -> None:
    errors = [e.message for e in validator().iter_errors(document)]
    assert errors == []


@pytest.mark.parametrize("case", cases("flags", "negative"), ids=lambda p: p.name)
def test_flag_files_flagds_schema_rejects_are_rejected(tmp_path: Path, case: Path) -> None:
    document = json.loads(case.read_text())
    assert list(validator().iter_errors(document)), "the schema itself accepts it"
    assert problems_of(tmp_path, document)


@pytest.mark.parametrize("case", [c for c in cases("flags", "positive") if c.name not in FLAGD_CONFIG],
                         ids=lambda p: p.name)
def test_flag_files_flagds_schema_accepts_are_accepted(tmp_path: Path, case: Path) -> None:
    document = json.loads(case.read_text())
    found = problems_of(tmp_path, document)
    if case.name in STRICTER:
        assert found and all("defaultVariant: required field is missing" in p for p in found)
    else:
        assert found == []


@pytest.mark.parametrize("case", cases("targeting", "negative"), ids=lambda p: p.name)
def test_rules_flagds_schema_rejects_are_rejected(tmp_path: Path, case: Path) -> None:
    assert problems_of(tmp_path, flag_with(json.loads(case.read_text())))


@pytest.mark.parametrize("case", cases("targeting", "positive"), ids=lambda p: p.name)
def test_rules_flagds_schema_accepts_are_accepted(tmp_path: Path, case: Path) -> None:
    assert problems_of(tmp_path, flag_with(json.loads(case.read_text()))) == []
