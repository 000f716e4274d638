"""Checking exported objects against the upstream schemas: Kubernetes' own (via `kubernetes-validate`, strict)
for built-in kinds, and each CRD's `openAPIV3Schema` (via `jsonschema`) for Flux and Flagger kinds.

Besides the schema itself, an object's fields must all be known to the CRD: the API server prunes
unknown fields of a structural schema silently, so a misspelt field would be lost without a word
(`kubectl apply --validate=strict` refuses it; so do we).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import jsonschema
import kubernetes_validate
from ruamel.yaml import YAML

from shipyard.export.patches import is_built_in

Obj = dict[str, Any]
KUBERNETES_VERSION = "1.34"   # a current release; kubernetes-validate ships schemas up to its own version


@dataclass(frozen=True)
class Invalid:
    where: str       # "Canary catalog"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def load_crds(directory: Path) -> dict[tuple[str, str], Obj]:
    """(apiVersion, kind) → openAPIV3Schema of every CRD version in the YAML files of `directory`."""
    schemas: dict[tuple[str, str], Obj] = {}
    yaml = YAML(typ="safe")
    for path in sorted(directory.glob("*.yaml")):
        for document in yaml.load_all(path.read_text()):
            if not document or document.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = document["spec"]["group"], document["spec"]["names"]["kind"]
            for version in document["spec"]["versions"]:
                schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


def validate_objects(objects: Iterable[Obj], crds: dict[tuple[str, str], Obj] | None) -> list[Invalid]:
    """Every problem of every object; custom kinds are checked only when `crds` is given."""
    problems: list[Invalid] = []
    for obj in objects:
        where = f"{obj.get('kind')} {obj.get('metadata', {}).get('name')}"
        if is_built_in(obj) or obj.get("apiVersion") == "v1":
            problems += [Invalid(where, m) for m in _built_in(obj)]
        elif crds is not None:
            schema = crds.get((obj.get("apiVersion", ""), obj.get("kind", "")))
            if schema is None:
                problems.append(Invalid(where, f"no CRD defines {obj.get('apiVersion')} {obj.get('kind')}"))
                continue
            problems += [Invalid(where, m) for m in _custom(obj, schema)]
    return problems


def _built_in(obj: Obj) -> list[str]:
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        return [f"{path}: {exc.message}" if path else exc.message]
    return []


def _custom(obj: Obj, schema: Obj) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    messages = [f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
                for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))]
    messages += [f"{path}: unknown field" for path in unknown_fields(obj, schema)]
    return messages


def unknown_fields(value: Any, schema: Obj, path: str = "") -> Iterator[str]:
    """Fields a structural schema would prune (no `properties` entry, no additionalProperties, not preserved)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if path == "" and key in ("apiVersion", "kind", "metadata"):
                continue  # checked by the API server itself
            child = f"{path}.{key}" if path else key
            if properties is not None and key in properties:
                yield from unknown_fields(item, properties[key], child)
            elif isinstance(additional, dict):
                yield from unknown_fields(item, additional, child)
            elif properties is not None and additional is None:
                yield child
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from unknown_fields(item, schema["items"], f"{path}[{index}]")
