"""Table tests of the format's annotated types: counts-or-percentages, percentages, env values."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from shipyard.spec.types import CountOrPercent, EnvValue, Fraction, resolve_count

COUNT = TypeAdapter(CountOrPercent)
FRACTION = TypeAdapter(Fraction)
ENV = TypeAdapter(EnvValue)


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (3, 3), ("25%", "25%"), (" 50% ", "50%"), ("100%", "100%"),
                                                 ("12.5%", "12.5%")])
def test_count_or_percent(value: Any, expected: Any) -> None:
    assert COUNT.validate_python(value) == expected


@pytest.mark.parametrize("value", [-1, "101%", "25", "%", True, 1.5, None, "25 %"])
def test_count_or_percent_rejects(value: Any) -> None:
    with pytest.raises(ValidationError):
        COUNT.validate_python(value)


@pytest.mark.parametrize(("value", "total", "round_up", "expected"), [
    (2, 10, True, 2),
    ("25%", 4, True, 1),
    ("25%", 3, True, 1),   # 0.75 rounds up for maxSurge
    ("25%", 3, False, 0),  # and down for maxUnavailable
    ("100%", 3, False, 3),
    ("0%", 3, True, 0),
])
def test_resolve_count(value: int | str, total: int, round_up: bool, expected: int) -> None:
    assert resolve_count(value, total, round_up) == expected


@pytest.mark.parametrize(("value", "fraction", "text"), [
    ("20%", 0.2, "20%"),
    ("95%", 0.95, "95%"),
    (20, 0.2, "20%"),  # a bare number is percent too
    ("0%", 0.0, "0%"),
    ("12.5%", 0.125, "12.5%"),
])
def test_fraction(value: Any, fraction: float, text: str) -> None:
    parsed = FRACTION.validate_python(value)
    assert parsed == pytest.approx(fraction)
    assert FRACTION.dump_python(parsed, mode="json") == text


@pytest.mark.parametrize("value", ["20", "twenty%", True, None])
def test_fraction_rejects(value: Any) -> None:
    with pytest.raises(ValidationError):
        FRACTION.validate_python(value)


@pytest.mark.parametrize(("value", "expected"), [("EUR", "EUR"), (80, "80"), (1.5, "1.5"), (True, "true"),
                                                 (False, "false"), ("", "")])
def test_env_value(value: Any, expected: str) -> None:
    assert ENV.validate_python(value) == expected


@pytest.mark.parametrize("value", [None, [1], {"a": 1}])
def test_env_value_rejects(value: Any) -> None:
    with pytest.raises(ValidationError):
        ENV.validate_python(value)
