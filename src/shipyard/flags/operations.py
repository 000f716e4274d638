"""flagd's custom JsonLogic operations (`fractional`, `sem_ver`, `starts_with`, `ends_with`).

JsonLogic itself comes from a maintained library (PyPI `panzi-json-logic`, the one flagd's Python provider
uses); murmur3 from PyPI `mmh3`, CBOR from `cbor2`, semantic versions from `semver`. These four operations
are flagd's own extensions, which no library ships apart from flagd's evaluator: they are written here
after flagd's specification, and tests/flags/test_evaluate_oracle.py checks them against flagd's own
Python evaluator (`openfeature-provider-flagd` 0.6.1 / `openfeature-flagd-core` 2.0.0).

`fractional` buckets as flagd's current algorithm does (the one of openfeature-flagd-core 2.0.0): the
bucketing value (by default the array `[flagKey, targetingKey]`) is encoded as canonical CBOR, hashed with
murmur3 x86 32-bit (seed 0, unsigned), and `bucket = hash * totalWeight >> 32` picks the variant whose
cumulative integer weight first exceeds the bucket. A user therefore gets the same variant here as from flagd.

Each operation records what it did in an `Trace`, so the evaluator can tell SPLIT (the variant came out of
`fractional`) and TARGETING_KEY_MISSING (a split needed a targeting key the context lacked) apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cbor2
import mmh3
import semver
from json_logic import builtins

log = logging.getLogger("shipyard.flags")
MAX_TOTAL_WEIGHT = 2**31 - 1
SEM_VER_OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "^", "~")
CUSTOM = ("fractional", "sem_ver", "starts_with", "ends_with")


@dataclass
class Trace:
    """What the custom operations saw during one evaluation."""

    fractional_results: list[Any] = field(default_factory=list)
    targeting_key_missing: bool = False


def operations(trace: Trace) -> dict[str, Callable[..., Any]]:
    """JsonLogic's built-in operations plus flagd's, reporting into TRACE."""
    def fractional_op(data: Any, *args: Any) -> Any:
        result = fractional(data, *args, trace=trace)
        trace.fractional_results.append(result)
        return result

    return {**builtins.BUILTINS, "fractional": fractional_op, "sem_ver": sem_ver,
            "starts_with": starts_with, "ends_with": ends_with}


def _integral(value: Any) -> Any:
    """Whole floats as integers, so `1.0` and `1` bucket alike (flagd's CBOR rule)."""
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_integral(v) for v in value]
    if isinstance(value, float) and value.is_integer() and -(2**63) <= value <= 2**64 - 1:
        return int(value)
    return value


def bucket_of(bucket_by: Any, total_weight: int) -> int:
    """flagd's bucket in [0, total_weight) for a bucketing value."""
    digest = mmh3.hash(cbor2.dumps(_integral(bucket_by), canonical=True), signed=False)
    return (digest * total_weight) >> 32


def fractional(data: Any, *args: Any, trace: Trace | None = None) -> Any:
    """The variant of `[variant, weight]` pairs that the bucketing value falls into; None when it cannot."""
    if not args:
        return None
    if isinstance(args[0], (list, tuple)):
        targeting_key = data.get("targetingKey") if isinstance(data, dict) else None
        if not isinstance(targeting_key, str) or not targeting_key:
            if trace is not None:
                trace.targeting_key_missing = True
            return None
        flag_key = (data.get("$flagd") or {}).get("flagKey", "")
        bucket_by: Any = [flag_key, targeting_key]
        buckets = args
    else:
        bucket_by, buckets = args[0], args[1:]
    if bucket_by is None:
        return None
    weights = _weights(buckets)
    if weights is None:
        return None
    total = sum(weight for _, weight in weights)
    if total <= 0 or total > MAX_TOTAL_WEIGHT:
        return None
    try:
        bucket = bucket_of(bucket_by, total)
    except (cbor2.CBOREncodeError, TypeError, ValueError):
        return None
    end = 0
    for variant, weight in weights:
        end += weight
        if bucket < end:
            return variant
    return None


def _weights(buckets: tuple[Any, ...]) -> list[tuple[Any, int]] | None:
    result = []
    for bucket in buckets:
        if not isinstance(bucket, (list, tuple)) or not 1 <= len(bucket) <= 2:
            return None
        weight = 1
        if len(bucket) == 2:
            if isinstance(bucket[1], bool) or not isinstance(bucket[1], int):
                return None
            weight = max(0, bucket[1])  # negative weights come from rollout arithmetic: flagd clamps them
        result.append((bucket[0], weight))
    return result


def starts_with(data: Any, *args: Any) -> bool | None:
    return _strings(args, str.startswith)


def ends_with(data: Any, *args: Any) -> bool | None:
    return _strings(args, str.endswith)


def _strings(args: tuple[Any, ...], compare: Callable[[str, str], bool]) -> bool | None:
    if len(args) != 2 or not all(isinstance(a, str) for a in args):
        return None
    return compare(args[0], args[1])


def sem_ver(data: Any, *args: Any) -> bool | None:
    """`[version, operator, version]`; `v` prefixes and partial versions (`1.2`) accepted, as in flagd."""
    if len(args) != 3:
        return None
    left, operator, right = args
    try:
        a, b = parse_version(left), parse_version(right)
    except (ValueError, TypeError):
        return None
    comparisons: dict[str, Callable[[], bool]] = {
        "=": lambda: a == b, "!=": lambda: a != b, "<": lambda: a < b, "<=": lambda: a <= b,
        ">": lambda: a > b, ">=": lambda: a >= b, "^": lambda: a.major == b.major,
        "~": lambda: a.major == b.major and a.minor == b.minor,
    }
    compare = comparisons.get(operator) if isinstance(operator, str) else None
    return compare() if compare else None


def parse_version(value: Any) -> semver.Version:
    text = str(value)
    if text[:1] in ("v", "V"):
        text = text[1:]
    core = text.split("-")[0].split("+")[0]
    dots = core.count(".")
    if dots < 2:
        text = core + ".0" * (2 - dots) + text[len(core):]
    return semver.Version.parse(text)
