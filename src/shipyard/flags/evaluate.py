"""Evaluating one flag for one context exactly as flagd does: value, variant, reason, or an OFREP error code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from json_logic import jsonLogic

from shipyard.flags.operations import Trace, operations

# Reasons and error codes are OpenFeature's (and OFREP's) names.
STATIC, TARGETING_MATCH, SPLIT, DISABLED, DEFAULT, ERROR = (
    "STATIC", "TARGETING_MATCH", "SPLIT", "DISABLED", "DEFAULT", "ERROR")
FLAG_NOT_FOUND, TARGETING_KEY_MISSING, PARSE_ERROR, INVALID_CONTEXT, GENERAL = (
    "FLAG_NOT_FOUND", "TARGETING_KEY_MISSING", "PARSE_ERROR", "INVALID_CONTEXT", "GENERAL")


@dataclass(frozen=True)
class Flag:
    """One flag in flagd's format, `$ref`s already resolved."""

    key: str
    state: str
    variants: dict[str, Any]
    default_variant: str | None
    targeting: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FlagSet:
    """Every flag of one environment, plus the flag-set metadata; `document` is the flagd file it came from."""

    flags: dict[str, Flag]
    metadata: dict[str, Any]
    document: dict[str, Any]
    digest: str


@dataclass(frozen=True)
class Resolution:
    """The answer for one flag. `has_value` is False when the caller's own default applies (no variant)."""

    key: str
    reason: str
    value: Any = None
    variant: str | None = None
    has_value: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    error_details: str | None = None

    def to_ofrep(self) -> dict[str, Any]:
        """OFREP's evaluation success or error body."""
        if self.error_code is not None:
            return {"key": self.key, "errorCode": self.error_code, "errorDetails": self.error_details or ""}
        body: dict[str, Any] = {"key": self.key, "reason": self.reason, "variant": self.variant,
                                "metadata": self.metadata}
        if self.has_value:
            body["value"] = self.value
        return body


def evaluate(flag_set: FlagSet, key: str, context: dict[str, Any], now: float) -> Resolution:
    """Evaluate flag KEY for CONTEXT (OFREP's `context` object, `targetingKey` inside) at time NOW."""
    flag = flag_set.flags.get(key)
    if flag is None:
        return _error(key, FLAG_NOT_FOUND, f"flag `{key}` is not defined in this environment")
    metadata = {**flag_set.metadata, **flag.metadata}
    if flag.state == "DISABLED":
        return Resolution(key, DISABLED, metadata=metadata)
    if not flag.targeting:
        return _default(flag, metadata, STATIC)
    trace = Trace()
    data = {**context, "$flagd": {"flagKey": key, "timestamp": int(now)}, "targetingKey": context.get("targetingKey")}
    try:
        chosen = jsonLogic(flag.targeting, data, operations(trace))
    except ReferenceError as exc:
        return _error(key, PARSE_ERROR, f"invalid targeting of flag `{key}`: {exc}")
    except Exception as exc:  # noqa: BLE001 - JsonLogic on user data: any failure is the flag's error, not ours
        return _error(key, GENERAL, f"targeting of flag `{key}` failed: {exc}")
    if chosen is None:
        if trace.targeting_key_missing:
            return _error(key, TARGETING_KEY_MISSING, f"flag `{key}` splits by targetingKey: the context has none")
        return _default(flag, metadata, DEFAULT)
    variant = variant_name(chosen)
    if variant not in flag.variants or flag.variants[variant] is None:
        return _error(key, GENERAL, f"targeting of flag `{key}` chose `{variant}`, which is not one of its variants")
    split = bool(trace.fractional_results) and variant_name(trace.fractional_results[-1]) == variant
    return Resolution(key, SPLIT if split else TARGETING_MATCH, flag.variants[variant], variant, True, metadata)


def variant_name(value: Any) -> str:
    """How flagd names the variant a rule returned: booleans as `true`/`false`, other values as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _default(flag: Flag, metadata: dict[str, Any], reason: str) -> Resolution:
    if not flag.default_variant:
        return Resolution(flag.key, DEFAULT, metadata=metadata)
    if flag.default_variant not in flag.variants:
        return _error(flag.key, GENERAL, f"defaultVariant `{flag.default_variant}` of flag `{flag.key}` is not a variant")
    return Resolution(flag.key, reason, flag.variants[flag.default_variant], flag.default_variant, True, metadata)


def _error(key: str, code: str, details: str) -> Resolution:
    return Resolution(key, ERROR, error_code=code, error_details=details)
