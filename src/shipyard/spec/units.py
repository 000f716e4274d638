"""Parsing and formatting of durations (`200ms`, `10s`, `5m`) and Kubernetes quantities (`250m`, `128Mi`)."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

_CPU = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m?)\s*$")

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|k|K|M|G|T)?\s*$")
_MEMORY_UNITS = {
    None: 1,
    "k": 1000, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4,
    "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4,
}


def parse_duration(value: object) -> float:
    """Seconds from `200ms`, `10s`, `5m`, `1h`; a bare number means seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 200ms, 10s or 5m")
    if isinstance(value, (int, float)):
        return _in_range(float(value), value, "duration")
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return _in_range(float(match.group(1)) * _DURATION_UNITS[match.group(2)], value, "duration")
    raise ValueError(f"invalid duration {value!r}: expected a number with a unit, like 200ms, 10s or 5m")


def _in_range(number: float, value: object, what: str) -> float:
    # Values are formatted in thousandths (`ms`, millicores): NaN, infinity or beyond cannot be.
    if not math.isfinite(number * 1000):
        raise ValueError(f"invalid {what} {value!r}: out of range")
    return number


def format_duration(seconds: float) -> str:
    """The shortest exact form: 0.2 → `200ms`, 90 → `90s`, 300 → `5m`."""
    millis = round(seconds * 1000)
    if millis % 1000:
        return f"{millis}ms"
    whole = millis // 1000
    if whole and whole % 3600 == 0:
        return f"{whole // 3600}h"
    if whole and whole % 60 == 0:
        return f"{whole // 60}m"
    return f"{whole}s"


def parse_cpu(value: object) -> float:
    """Cores from `0.5`, `2` or millicores `250m`."""
    if isinstance(value, bool):
        raise ValueError("expected cores like 0.5 or millicores like 250m")
    if isinstance(value, (int, float)):
        return _in_range(float(value), value, "cpu")
    if isinstance(value, str):
        match = _CPU.match(value)
        if match:
            number = float(match.group(1))
            return _in_range(number / 1000 if match.group(2) else number, value, "cpu")
    raise ValueError(f"invalid cpu {value!r}: expected cores like 0.5 or millicores like 250m")


def format_cpu(cores: float) -> str:
    """Millicores when fractional (`250m`), whole cores otherwise (`2`)."""
    millis = round(cores * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def parse_memory(value: object) -> int:
    """Bytes from `128Mi`, `1Gi`, `500M` or a plain number of bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a quantity like 128Mi or 1Gi")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _MEMORY.match(value)
        if match:
            return int(_in_range(float(match.group(1)) * _MEMORY_UNITS[match.group(2)], value, "memory"))
    raise ValueError(f"invalid memory {value!r}: expected a quantity like 128Mi or 1Gi")


def format_memory(size: int) -> str:
    """The largest binary unit that divides exactly: 134217728 → `128Mi`."""
    for unit in ("Ti", "Gi", "Mi", "Ki"):
        factor = _MEMORY_UNITS[unit]
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def format_memory_approx(size: float) -> str:
    """A human figure for messages: `1.1Gi`, `512Mi`."""
    for unit in ("Ti", "Gi", "Mi", "Ki"):
        factor = _MEMORY_UNITS[unit]
        if size >= factor:
            return f"{size / factor:.1f}".rstrip("0").rstrip(".") + unit
    return f"{int(size)}"
