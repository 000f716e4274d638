"""The JSON Schema for editors: its structure, and the example's files checked against it.

The oracle is `jsonschema` (a dev dependency), the reference validator of JSON Schema draft 2020-12, so the
schema is checked by a validator Shipyard did not write.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from shipyard.spec.schema import json_schema

from .conftest import EXAMPLE

SCHEMA = json_schema()
DEFS = SCHEMA["$defs"]
# the config repository's files; apps/*/artifact.yaml are source dirs' (tests/artifacts/test_descriptor.py)
EXAMPLE_FILES = sorted(p.relative_to(EXAMPLE).as_posix() for p in EXAMPLE.rglob("*.yaml")
                       if p.relative_to(EXAMPLE).parts[0] != "apps")


def conforms(value: Any, schema: dict[str, Any]) -> bool:
    """Whether `value` is valid against `schema`, a part of SCHEMA (its `$defs` resolve)."""
    return Draft202012Validator({**schema, "$defs": DEFS}).is_valid(value)


def _load(file: str) -> Any:
    return YAML(typ="safe", pure=True).load((EXAMPLE / file).read_text(encoding="utf-8"))


def _property_names(name: str) -> set[str]:
    return set(DEFS[name].get("properties", {}))


def test_the_schema_is_json_and_a_valid_draft_2020_12_schema() -> None:
    assert json.loads(json.dumps(SCHEMA)) == SCHEMA
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(SCHEMA)


def test_every_reference_resolves() -> None:
    refs = re.findall(r'"\$ref": "#/\$defs/([^"]+)"', json.dumps(SCHEMA))
    assert refs and set(refs) <= set(DEFS)


@pytest.mark.parametrize("kind", ["Project", "Service", "Environment"])
def test_the_three_kinds_are_present(kind: str) -> None:
    assert {"$ref": f"#/$defs/{kind}"} in SCHEMA["anyOf"]
    assert DEFS[kind]["properties"]["kind"]["const"] == kind
    assert {"apiVersion", "kind", "name"} <= set(DEFS[kind]["required"])
    assert DEFS[kind]["additionalProperties"] is False


def test_overlays_require_nothing_and_cannot_change_fixed_fields() -> None:
    overlays = [name for name in DEFS if name.endswith("Overlay")]
    assert "ServiceOverlay" in overlays
    assert all("required" not in json.dumps(DEFS[name]) for name in overlays)
    assert not {"apiVersion", "kind"} & _property_names("ServiceOverlay")
    services = DEFS["Environment"]["properties"]["services"]["additionalProperties"]
    assert conforms({"replicas": 2}, services) and conforms(None, services) and conforms({"replicas": None}, services)


def _keys(data: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            found.append((*prefix, key))
            found += _keys(value, (*prefix, key))
    elif isinstance(data, list):
        for item in data:
            found += _keys(item, prefix)
    return found


def _schema_knows(path: tuple[str, ...], schema: dict[str, Any]) -> bool:
    """Whether some branch of `schema` declares the key path (map values of `env` and `services` are free)."""
    if not path:
        return True
    options = [schema]
    for step in path:
        expanded: list[dict[str, Any]] = []
        while options:
            option = options.pop()
            if "$ref" in option:
                options.append(DEFS[option["$ref"].removeprefix("#/$defs/")])
            for union in ("anyOf", "oneOf"):
                options.extend(option.get(union, []))
            if "items" in option:
                options.append(option["items"])
            expanded.append(option)
        options = [o["properties"][step] for o in expanded if step in o.get("properties", {})]
        options += [o["additionalProperties"] for o in expanded if isinstance(o.get("additionalProperties"), dict)]
        if not options:
            return False
    return True


@pytest.mark.parametrize("file", EXAMPLE_FILES)
def test_every_key_of_the_example_is_in_the_schema(file: str) -> None:
    missing = [".".join(path) for path in _keys(_load(file)) if not _schema_knows(path, SCHEMA)]
    assert not missing, f"{file}: keys not in the schema: {missing}"


@pytest.mark.parametrize("file", EXAMPLE_FILES)
def test_the_example_conforms_to_the_schema(file: str) -> None:
    assert conforms(_load(file), SCHEMA), f"{file} does not conform to `shipyard schema`"


@pytest.mark.parametrize(("document", "why"), [
    ({"apiVersion": "shipyard/v1", "kind": "Project", "name": "shop"}, "environments missing"),
    ({"apiVersion": "shipyard/v1", "kind": "Service", "name": "a", "version": "1",
      "artifact": {"path": "a", "command": ["x"]}, "replcas": 1}, "unknown field"),
    ({"apiVersion": "shipyard/v1", "kind": "Service", "name": "a", "version": "1",
      "artifact": {"path": "a", "command": ["x"]}, "replicas": -1}, "negative replicas"),
    ({"apiVersion": "shipyard/v1", "kind": "Service", "name": "a", "version": "1",
      "artifact": {"path": "a", "command": ["x"]}, "health": {"startupTimeout": "10 seconds"}}, "bad duration"),
    ({"apiVersion": "shipyard/v1", "kind": "Service", "name": "a", "version": "1",
      "artifact": {"path": "a"}}, "a path without a command"),
    ({"apiVersion": "shipyard/v1", "kind": "Service", "name": "a", "version": "1",
      "artifact": {"path": "a", "image": "a", "command": ["x"]}}, "two sources"),
    ({"apiVersion": "shipyard/v1", "kind": "Environment", "name": "dev", "services": {"a": {"kind": "Service"}}},
     "an overlay setting kind"),
    ({"apiVersion": "shipyard/v2", "kind": "Environment", "name": "dev"}, "wrong apiVersion"),
    ({"apiVersion": "shipyard/v1", "kind": "Environment", "name": "Dev"}, "name not a DNS label"),
])
def test_broken_documents_do_not_conform(document: dict[str, Any], why: str) -> None:
    assert not conforms(document, SCHEMA), why


@pytest.mark.parametrize(("path", "default"), [
    (("Probe", "interval"), "5s"),
    (("Resources", "memory"), "128Mi"),
    (("Resources", "cpu"), "100m"),
    (("RollingStrategy", "maxSurge"), "25%"),
    (("CompareAnalysis", "confidence"), "95%"),
    (("Routing", "idleTimeout"), "5m"),
    (("Service", "replicas"), 1),
])
def test_defaults_are_written_in_the_formats_notation(path: tuple[str, str], default: Any) -> None:
    model, field = path
    assert DEFS[model]["properties"][field]["default"] == default
