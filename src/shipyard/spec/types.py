"""Annotated field types of the format: durations, CPU, memory, counts-or-percentages."""

from __future__ import annotations

import re
from typing import Annotated, Union

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from shipyard.spec.units import (
    format_cpu,
    format_duration,
    format_memory,
    parse_cpu,
    parse_duration,
    parse_memory,
)

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0},  # a bare number is seconds
                              {"type": "string", "pattern": r"^\d+(\.\d+)?(ms|s|m|h)$"}],
                    "examples": ["200ms", "10s", "5m"]}),
]

Cpu = Annotated[
    float,
    BeforeValidator(parse_cpu),
    PlainSerializer(format_cpu, return_type=str),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^\d+(\.\d+)?m?$"}],
                    "examples": ["250m", "0.5", 1]}),
]

Memory = Annotated[
    int,
    BeforeValidator(parse_memory),
    PlainSerializer(format_memory, return_type=str),
    WithJsonSchema({"anyOf": [{"type": "integer"},
                              {"type": "string", "pattern": r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|K|M|G|T)?$"}],
                    "examples": ["128Mi", "1Gi"]}),
]

_PERCENT = re.compile(r"^\d+(\.\d+)?%$")


def _count_or_percent(value: object) -> int | str:
    if isinstance(value, bool):
        raise ValueError("expected a number like 1 or a percentage like 25%")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        return value
    if isinstance(value, str) and _PERCENT.match(value.strip()):
        if float(value.strip()[:-1]) > 100:
            raise ValueError("a percentage must not exceed 100%")
        return value.strip()
    raise ValueError(f"invalid value {value!r}: expected a number like 1 or a percentage like 25%")


CountOrPercent = Annotated[
    Union[int, str],
    BeforeValidator(_count_or_percent),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": r"^\d+(\.\d+)?%$"}]}),
]


def _percent_fraction(value: object) -> float:
    """`20%` → 0.2; a bare number is taken as percent too (20 → 0.2)."""
    if isinstance(value, bool):
        raise ValueError("expected a percentage like 20%")
    if isinstance(value, (int, float)):
        return float(value) / 100
    if isinstance(value, str) and _PERCENT.match(value.strip()):
        return float(value.strip()[:-1]) / 100
    raise ValueError(f"invalid percentage {value!r}: expected a percentage like 20%")


Fraction = Annotated[
    float,
    BeforeValidator(_percent_fraction),
    PlainSerializer(lambda f: f"{round(f * 100, 6):g}%", return_type=str),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^\d+(\.\d+)?%$"}]}),
]


def _env_value(value: object) -> str:
    # Kubernetes would reject `PORT: 80`; we accept scalars and store their YAML text, because
    # an env map is written by hand and a quoted number is a common, harmless slip.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise ValueError("an env value must be a string, number or boolean")


EnvValue = Annotated[str, BeforeValidator(_env_value), WithJsonSchema({"type": ["string", "number", "boolean"]})]


def resolve_count(value: int | str, total: int, round_up: bool) -> int:
    """Kubernetes' rounding of an int-or-percent against a total (maxSurge rounds up, maxUnavailable down)."""
    if isinstance(value, int):
        return value
    share = float(value[:-1]) * total / 100
    whole = int(share)
    return whole + 1 if round_up and share > whole else whole
