"""The JSON Schema of the format, for editors' YAML language servers (`shipyard schema`)."""

from __future__ import annotations

import copy
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import PydanticSerializationError, SchemaError, SchemaSerializer, core_schema

from shipyard.spec.models import NAME_PATTERN, Environment, Project, Service

SCHEMA_ID = "https://shipyard.dev/schema/v1.json"


def json_schema() -> dict[str, Any]:
    """One schema accepting any document of the format, told apart by `kind`."""
    defs: dict[str, Any] = {}
    for model in (Project, Service, Environment):
        schema = model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}", schema_generator=_Generator)
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
    _add_overlay_defs(defs)
    stages = defs["Project"]["properties"]["environments"]
    stages["items"] = {"anyOf": [{"type": "string", "pattern": NAME_PATTERN}, stages["items"]]}  # a bare name is a stage
    defs["Environment"]["properties"]["services"]["additionalProperties"] = {
        "anyOf": [{"$ref": "#/$defs/ServiceOverlay"}, {"type": "null"}]}
    defs["FlagOverlay"] = FLAG_OVERLAY
    defs["Environment"]["properties"]["flags"]["additionalProperties"] = {
        "anyOf": [{"$ref": "#/$defs/FlagOverlay"}, {"type": "null"}]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Shipyard config (apiVersion shipyard/v1)",
        "anyOf": [{"$ref": f"#/$defs/{name}"} for name in ("Project", "Service", "Environment")],
        "$defs": dict(sorted(defs.items())),
    }


# An environment's change to a flag of `flags/*` (flagd's flag format, see docs/flags.md); `null` unsets a field.
FLAG_OVERLAY: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "state": {"enum": ["ENABLED", "DISABLED", None]},
        "variants": {"type": ["object", "null"]},
        "defaultVariant": {"type": ["string", "boolean", "null"]},
        "targeting": {"type": ["object", "null"], "description": "JsonLogic with flagd's operations."},
        "metadata": {"type": ["object", "null"]},
    },
}


class _Generator(GenerateJsonSchema):
    """Defaults written as the format writes them (`1s`, `128Mi`, `95%`), not as the numbers they are stored as."""

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        json_schema = super().default_schema(schema)
        if "default" in json_schema and "default" in schema:
            try:
                json_schema["default"] = SchemaSerializer(schema["schema"]).to_python(schema["default"], mode="json")
            except (SchemaError, PydanticSerializationError):
                pass  # keep pydantic's own rendering of the default
        return json_schema


def _add_overlay_defs(defs: dict[str, Any]) -> None:
    """Overlays may set any subset of a Service at any depth: the same shapes with nothing required."""
    names = _reachable(defs, "Service")
    for name in names:
        partial = _retarget(copy.deepcopy(defs[name]), names)
        _drop_required(partial)
        defs[f"{name}Overlay"] = partial
    for field in ("apiVersion", "kind"):
        defs["ServiceOverlay"]["properties"].pop(field, None)


def _reachable(defs: dict[str, Any], root: str) -> set[str]:
    seen: set[str] = set()
    pending = [root]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending.extend(_refs(defs[name]))
    return seen


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"].rsplit("/", 1)[-1]] if "$ref" in node else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def _retarget(node: Any, names: set[str]) -> Any:
    if isinstance(node, dict):
        result = {k: _retarget(v, names) for k, v in node.items()}
        if "$ref" in result and result["$ref"].rsplit("/", 1)[-1] in names:
            result["$ref"] = result["$ref"] + "Overlay"
        return result
    if isinstance(node, list):
        return [_retarget(v, names) for v in node]
    return node


def _drop_required(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("required", None)
        for value in node.values():
            _drop_required(value)
        # An overlay's `null` removes a key, so every property may also be null.
        for name, prop in list(node.get("properties", {}).items()):
            node["properties"][name] = {"anyOf": [prop, {"type": "null"}]}
    elif isinstance(node, list):
        for value in node:
            _drop_required(value)
