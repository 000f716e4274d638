"""Did-you-mean hints: the keys a model allows at a path, and the closest match to a misspelling."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Iterable, Union

from pydantic import BaseModel


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most like `word`, if any is close enough to be a plausible typo."""
    matches = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return matches[0] if matches else None


def allowed_keys(model: type[BaseModel], path: tuple[str | int, ...]) -> set[str]:
    """The YAML keys accepted by the mapping at `path` inside `model` (empty when unknown)."""
    candidates: list[Any] = [model]
    for step in path:
        candidates = [child for c in candidates for child in _step(c, step)]
    keys: set[str] = set()
    for candidate in candidates:
        for model_class in _models(candidate):
            keys.update(_alias(name, info) for name, info in model_class.model_fields.items())
    return keys


def _alias(name: str, info: Any) -> str:
    return info.alias or name


def _step(annotation: Any, step: str | int) -> list[Any]:
    results: list[Any] = []
    for option in _unwrap(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel) and isinstance(step, str):
            for name, info in option.model_fields.items():
                if _alias(name, info) == step:
                    results.append(info.annotation)
        elif typing.get_origin(option) in (list, tuple) and isinstance(step, int):
            results.extend(typing.get_args(option)[:1])
        elif typing.get_origin(option) is dict and isinstance(step, str):
            results.extend(typing.get_args(option)[1:2])
    return results


def _models(annotation: Any) -> list[type[BaseModel]]:
    return [o for o in _unwrap(annotation) if isinstance(o, type) and issubclass(o, BaseModel)]


def _unwrap(annotation: Any) -> list[Any]:
    """Flatten Annotated[...] and unions down to their member types."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _unwrap(arg)]
    return [annotation]
