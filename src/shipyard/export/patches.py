"""Kustomize patches that turn a base object into an environment's: what Shipyard's overlays carry, nothing more.

Pure. Built-in kinds get strategic-merge patches (lists of named items merge by name, so an overlay
that changes one env var does not repeat the others); custom resources get JSON-merge semantics
(lists replace), which is what kustomize and the API server apply to them.
"""

from __future__ import annotations

from typing import Any, Optional

Obj = dict[str, Any]
BUILT_IN_GROUPS = ("v1", "apps/v1", "policy/v1", "networking.k8s.io/v1")


def object_key(obj: Obj) -> tuple[str, str, str]:
    return obj["apiVersion"], obj["kind"], obj["metadata"]["name"]


def is_built_in(obj: Obj) -> bool:
    return obj["apiVersion"] in BUILT_IN_GROUPS


def diff(base: Any, target: Any, keyed: bool) -> Optional[Any]:
    """The patch turning `base` into `target`; None when they are equal (`null` in a patch deletes a key)."""
    if base == target:
        return None
    if isinstance(base, dict) and isinstance(target, dict):
        patch: dict[str, Any] = {}
        for key, value in target.items():
            if key not in base:
                patch[key] = value
                continue
            sub = diff(base[key], value, keyed)
            if sub is not None:
                patch[key] = sub
        for key in base:
            if key not in target:
                patch[key] = None
        return patch
    if keyed and _named(base) and _named(target):
        return _named_list_patch(base, target)
    return target


def _named(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(i, dict) and "name" in i for i in value)


def _named_list_patch(base: list[Obj], target: list[Obj]) -> list[Obj]:
    by_name = {item["name"]: item for item in base}
    wanted = {item["name"] for item in target}
    entries: list[Obj] = []
    for item in target:
        old = by_name.get(item["name"])
        if old is None:
            entries.append(item)
            continue
        sub = diff(old, item, True)
        if sub:
            entries.append({"name": item["name"], **sub})
    entries += [{"name": name, "$patch": "delete"} for name in by_name if name not in wanted]
    return entries


def object_patch(base: Obj, target: Obj) -> Optional[Obj]:
    """A whole patch document for kustomize's `patches:` (identified by apiVersion, kind and name)."""
    change = diff(base, target, is_built_in(base))
    if not change:
        return None
    api_version, kind, name = object_key(base)
    metadata = {**(change.pop("metadata", None) or {}), "name": name}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **change}


def delete_patch(base: Obj) -> Obj:
    api_version, kind, name = object_key(base)
    return {"$patch": "delete", "apiVersion": api_version, "kind": kind, "metadata": {"name": name}}
