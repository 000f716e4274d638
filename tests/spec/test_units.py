"""Table tests of durations, CPU and memory quantities: parsing, formatting and their errors."""

from __future__ import annotations

import math

import pytest

from shipyard.spec.units import (
    format_cpu,
    format_duration,
    format_memory,
    format_memory_approx,
    parse_cpu,
    parse_duration,
    parse_memory,
)

Mi = 1024**2


@pytest.mark.parametrize(("text", "seconds"), [
    ("200ms", 0.2),
    ("10s", 10.0),
    ("5m", 300.0),
    ("1h", 3600.0),
    ("1.5s", 1.5),
    ("0s", 0.0),
    (" 10s ", 10.0),
    ("10 s", 10.0),
    (10, 10.0),
    (0.25, 0.25),
])
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [
    "10", "10sec", "1d", "-5s", "s", "", "5 m s", "1e3s", True, None, [], {}, "∞s",
    math.inf, math.nan, "9" * 400 + "h", 1e308,
])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(("seconds", "text"), [
    (0.2, "200ms"),
    (0.0, "0s"),
    (1.0, "1s"),
    (1.5, "1500ms"),
    (10.0, "10s"),
    (90.0, "90s"),
    (300.0, "5m"),
    (3600.0, "1h"),
    (5400.0, "90m"),
    (0.0004, "0s"),  # below a millisecond rounds away
])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["200ms", "10s", "5m", "1h", "1500ms", "0s"])
def test_duration_round_trip(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize(("text", "cores"), [
    ("250m", 0.25),
    ("100m", 0.1),
    ("0.5", 0.5),
    ("2", 2.0),
    (1, 1.0),
    (0.5, 0.5),
    ("1500m", 1.5),
])
def test_parse_cpu(text: object, cores: float) -> None:
    assert parse_cpu(text) == pytest.approx(cores)


@pytest.mark.parametrize("text", ["250 millicores", "1c", "-1", "m", "", True, None, math.inf, "9" * 400])
def test_parse_cpu_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="cpu|cores"):
        parse_cpu(text)


@pytest.mark.parametrize(("cores", "text"), [(0.25, "250m"), (0.1, "100m"), (1.0, "1"), (2.0, "2"), (1.5, "1500m")])
def test_format_cpu(cores: float, text: str) -> None:
    assert format_cpu(cores) == text


@pytest.mark.parametrize(("text", "size"), [
    ("128Mi", 128 * Mi),
    ("1Gi", 1024 * Mi),
    ("64Ki", 64 * 1024),
    ("1Ti", 1024**4),
    ("500M", 500 * 1000**2),
    ("1G", 1000**3),
    ("1k", 1000),
    ("1K", 1000),
    ("1.5Gi", 1536 * Mi),
    ("1024", 1024),
    (1024, 1024),
])
def test_parse_memory(text: object, size: int) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize("text", ["128MB", "1gi", "Mi", "-1Mi", "", 1.5, True, None, "9" * 400 + "Ti"])
def test_parse_memory_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="memory|quantity"):
        parse_memory(text)


@pytest.mark.parametrize(("size", "text"), [
    (128 * Mi, "128Mi"),
    (1024 * Mi, "1Gi"),
    (1536 * Mi, "1536Mi"),
    (64 * 1024, "64Ki"),
    (500 * 1000**2, "500000000"),  # 500M is no whole number of KiB: plain bytes
    (1000, "1000"),
    (0, "0"),
])
def test_format_memory(size: int, text: str) -> None:
    assert format_memory(size) == text


@pytest.mark.parametrize(("size", "text"), [(1.1 * 1024**3, "1.1Gi"), (512 * Mi, "512Mi"), (100, "100")])
def test_format_memory_approx(size: float, text: str) -> None:
    assert format_memory_approx(size) == text
