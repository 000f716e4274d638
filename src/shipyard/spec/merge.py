"""Overlay rules: maps merge key by key, lists replace, `null` removes a key."""

from __future__ import annotations

from typing import Any

from shipyard.spec.yamlfile import PathKey, Position


def merge(base: Any, overlay: Any) -> Any:
    """Deep-merge `overlay` onto `base` without changing either."""
    if not isinstance(base, dict) or not isinstance(overlay, dict):
        return _strip_nulls(overlay)
    merged = {key: _copy(value) for key, value in base.items()}
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        elif key in merged:
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = _strip_nulls(value)
    return merged


def merge_positions(
    merged: Any, base: dict[PathKey, Position], overlay: dict[PathKey, Position]
) -> dict[PathKey, Position]:
    """Positions for the merged data: the overlay's where it wrote a value, the base's elsewhere."""
    positions = {path: pos for path, pos in base.items() if _exists(merged, path)}
    positions.update(overlay)
    return positions


def _exists(data: Any, path: PathKey) -> bool:
    for step in path:
        if isinstance(step, int) and isinstance(data, list) and 0 <= step < len(data):
            data = data[step]
        elif isinstance(step, str) and isinstance(data, dict) and step in data:
            data = data[step]
        else:
            return False
    return True


def _strip_nulls(value: Any) -> Any:
    # A new map from an overlay has nothing to remove; `null` inside it means "unset", i.e. absent.
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    return _copy(value)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
