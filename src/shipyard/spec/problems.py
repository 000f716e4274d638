"""Translation of model validation errors into one-line Problems at the file, line and field that caused them."""

from __future__ import annotations

from typing import Any, Callable

from pydantic import BaseModel, ValidationError

from shipyard.errors import Problem
from shipyard.spec.hints import allowed_keys, closest
from shipyard.spec.yamlfile import PathKey, Position

# Tags of the tagged unions in models.py: pydantic puts them in error locations; users never write them.
_UNION_TAGS = {"prometheus", "threshold", "compare", "command", "url", "approval"}

Locate = Callable[[PathKey], Position]


def field_path(path: PathKey) -> str:
    """`('strategy', 'canary', 'steps', 1)` → `strategy.canary.steps[1]`."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def problems_from_validation(
    error: ValidationError, model: type[BaseModel], locate: Locate, data: Any = None
) -> list[Problem]:
    """One Problem per error, positioned at the nearest written ancestor of the failing field.

    `data` is what was validated, so messages can quote the value as written (`0s`, not `0.0`).
    """
    problems = []
    for item in error.errors():
        path = _clean_location(item["loc"])
        position = locate(path)
        full = (*position.prefix, *path)
        written = _lookup(data, path)
        if written is not _MISSING:
            item = {**item, "input": written}
        problems.append(Problem(position.file, position.line, position.column, field_path(full),
                                _message(item, model, path)))
    return problems


_MISSING = object()


def _lookup(data: Any, path: PathKey) -> Any:
    for step in path:
        if isinstance(data, dict) and step in data:
            data = data[step]
        elif isinstance(data, list) and isinstance(step, int) and 0 <= step < len(data):
            data = data[step]
        else:
            return _MISSING
    return data


def _clean_location(loc: tuple[Any, ...]) -> PathKey:
    cleaned: list[str | int] = []
    for index, step in enumerate(loc):
        if step in _UNION_TAGS and index > 0 and isinstance(loc[index - 1], int):
            continue
        if isinstance(step, str) and (step.startswith("function-") or step in {"int", "str", "float", "bool"}):
            continue
        cleaned.append(step)
    return tuple(cleaned)


def _message(item: dict[str, Any], model: type[BaseModel], path: PathKey) -> str:
    kind, value, ctx = item["type"], item.get("input"), item.get("ctx") or {}
    if kind == "extra_forbidden":
        name = str(path[-1]) if path else "?"
        hint = closest(name, allowed_keys(model, path[:-1]))
        return f"unknown field `{name}`" + (f"; did you mean `{hint}`?" if hint else "")
    if kind == "missing":
        return "required field is missing"
    if kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"expected a string, got the number {value!r}; quote the value so YAML keeps it as written"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {"greater_than_equal": "at least", "greater_than": "greater than",
                 "less_than_equal": "at most", "less_than": "less than"}[kind]
        limit = next(iter(ctx.values()), "?")
        limit = f"{limit:g}" if isinstance(limit, float) else limit
        return f"must be {words} {limit} (got {value!r})"
    message = str(item["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if kind not in ("value_error",) and value is not None and not isinstance(value, (dict, list)):
        message += f" (got {value!r})"
    return message[:1].lower() + message[1:]
