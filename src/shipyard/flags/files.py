"""Reading the flags of one environment: `flags/*.yaml|json` (flagd's format) merged with the overlay's `flags:`.

Overlays follow the services' rules (maps merge key by key, lists replace, `null` removes a key, so
`flags: {old-banner: null}` drops a flag from one environment). Every problem is a FILE:LINE:COL Problem.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import Problem
from shipyard.flags.evaluate import Flag, FlagSet, variant_name
from shipyard.flags.rules import RuleChecker
from shipyard.spec.hints import closest
from shipyard.spec.merge import merge, merge_positions
from shipyard.spec.problems import field_path
from shipyard.spec.yamlfile import PathKey, Position, YamlDocument, YamlSyntaxError, read_yaml

FLAGS_DIR = "flags"
SUFFIXES = (".yaml", ".yml", ".json")
FILE_KEYS = ("$schema", "flags", "$evaluators", "metadata")
FLAG_KEYS = ("state", "variants", "defaultVariant", "targeting", "metadata")
IGNORED_FLAG_KEYS = ("source", "selector")  # flagd adds these itself; tolerated, not used
STATES = ("ENABLED", "DISABLED")


@dataclass
class _Located:
    """A flag's data and where each of its parts was written (paths relative to the flag)."""

    data: Any
    positions: dict[PathKey, Position]

    def at(self, path: PathKey) -> Position:
        for end in range(len(path), 0, -1):
            found = self.positions.get(tuple(path[:end]))
            if found is not None:
                return found
        return self.positions.get((), Position(FLAGS_DIR, 1, 1))


@dataclass
class _Sources:
    flags: dict[str, _Located] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # flag key → file defining it
    evaluators: dict[str, _Located] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


def load_flags(root: Path, environment_doc: YamlDocument | None) -> tuple[FlagSet, list[Problem]]:
    """The flag set of one environment (ENVIRONMENT_DOC holds its `flags:` overlay) and every problem found."""
    problems: list[Problem] = []
    sources = _read_sources(root, problems)
    overlay = environment_doc.data.get("flags") if environment_doc and isinstance(environment_doc.data, dict) else None
    merged = dict(sources.flags)
    if overlay is not None:
        if not isinstance(overlay, dict):
            position = environment_doc.position(("flags",))  # type: ignore[union-attr]
            problems.append(_problem(position, "flags", "expected a mapping of flag key → overlay"))
        else:
            _apply_overlay(merged, sources, overlay, environment_doc, problems)  # type: ignore[arg-type]
    flags: dict[str, Flag] = {}
    document_flags: dict[str, Any] = {}
    checker = RuleChecker(sources.evaluators)
    for key in sorted(merged):
        flag, resolved = _check_flag(key, merged[key], checker, problems)
        if flag is not None:
            flags[key] = flag
            document_flags[key] = resolved
    document: dict[str, Any] = {"flags": document_flags}
    if sources.metadata:
        document["metadata"] = sources.metadata
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:12]
    return FlagSet(flags, dict(sources.metadata), document, digest), problems


def _read_sources(root: Path, problems: list[Problem]) -> _Sources:
    sources = _Sources()
    directory = root / FLAGS_DIR
    if not directory.is_dir():
        return sources
    for path in sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES and p.is_file()):
        relative = path.relative_to(root).as_posix()
        try:
            document = read_yaml(path, relative)
        except YamlSyntaxError as exc:
            problems.extend(exc.problems)
            continue
        _add_file(sources, document, problems)
    return sources


def _add_file(sources: _Sources, document: YamlDocument, problems: list[Problem]) -> None:
    data = document.data
    if not isinstance(data, dict):
        problems.append(Problem(document.file, 1, 1, "", "expected a flagd flag file: a mapping with `flags`"))
        return
    for key in data:
        if key not in FILE_KEYS:
            hint = closest(key, FILE_KEYS)
            problems.append(_problem(document.position((key,)), key, f"unknown field `{key}` in a flag file"
                                     + (f"; did you mean `{hint}`?" if hint else "")))
    for section in ("flags", "$evaluators", "metadata"):
        if section in data and not isinstance(data[section], dict):
            problems.append(_problem(document.position((section,)), section, "expected a mapping"))
    for name, rule in (data.get("$evaluators") or {}).items() if isinstance(data.get("$evaluators"), dict) else ():
        if name in sources.evaluators:
            problems.append(_problem(document.position(("$evaluators", name)), f"$evaluators.{name}",
                                     f"evaluator `{name}` is already defined in another flag file"))
            continue
        sources.evaluators[name] = _Located(rule, _relative(document, ("$evaluators", name)))
    for name, value in (data.get("metadata") or {}).items() if isinstance(data.get("metadata"), dict) else ():
        if not _scalar(value):
            problems.append(_problem(document.position(("metadata", name)), f"metadata.{name}",
                                     "metadata values are strings, numbers or booleans"))
        sources.metadata[name] = value
    for key, flag in (data.get("flags") or {}).items() if isinstance(data.get("flags"), dict) else ():
        if key in sources.flags:
            problems.append(_problem(document.position(("flags", key)), f"flags.{key}",
                                     f"duplicate flag `{key}`: already defined in {sources.files[key]}"))
            continue
        sources.flags[key] = _Located(flag, _relative(document, ("flags", key)))
        sources.files[key] = document.file


def _relative(document: YamlDocument, prefix: PathKey) -> dict[PathKey, Position]:
    """Positions under PREFIX, re-keyed relative to it (the prefix itself becomes `()`)."""
    return {path[len(prefix):]: Position(pos.file, pos.line, pos.column, prefix)
            for path, pos in document.positions.items() if path[:len(prefix)] == prefix}


def _apply_overlay(merged: dict[str, _Located], sources: _Sources, overlay: dict[str, Any],
                   environment_doc: YamlDocument, problems: list[Problem]) -> None:
    for key, change in overlay.items():
        position = environment_doc.position(("flags", key))
        if key not in sources.flags:
            hint = closest(key, sources.flags)
            problems.append(_problem(position, f"flags.{key}", f"unknown flag `{key}`: no flags/* file defines it"
                                     + (f"; did you mean `{hint}`?" if hint else "")))
            continue
        if change is None:
            merged.pop(key, None)  # `null` removes the flag from this environment
            continue
        if not isinstance(change, dict):
            problems.append(_problem(position, f"flags.{key}", "expected a mapping of flag fields to override"))
            continue
        base = sources.flags[key]
        data = merge(base.data, change)
        over = {path: pos for path, pos in _relative(environment_doc, ("flags", key)).items() if path}
        merged[key] = _Located(data, merge_positions(data, base.positions, over))


def _check_flag(key: str, located: _Located, checker: RuleChecker,
                problems: list[Problem]) -> tuple[Flag | None, dict[str, Any]]:
    data, before = located.data, len(problems)

    def report(path: PathKey, message: str) -> None:
        position = located.at(path)
        problems.append(_problem(position, field_path((*position.prefix, *path)) if path else f"flags.{key}", message))

    if not isinstance(data, dict):
        report((), f"flag `{key}` must be a mapping with state, variants and defaultVariant")
        return None, {}
    for name in data:
        if name not in FLAG_KEYS and name not in IGNORED_FLAG_KEYS:
            hint = closest(name, FLAG_KEYS)
            report((name,), f"unknown field `{name}`" + (f"; did you mean `{hint}`?" if hint else ""))
    state = data.get("state")
    if state not in STATES:
        report(("state",), "required field is missing" if state is None else
               f"state must be ENABLED or DISABLED (got {state!r})")
    variants = data.get("variants")
    if not isinstance(variants, dict) or not variants:
        report(("variants",), "required field is missing" if variants is None else
               "variants must be a non-empty mapping of name → value")
        variants = {}
    _check_variant_types(variants, report)
    default = data.get("defaultVariant")
    if "defaultVariant" not in data:
        report(("defaultVariant",), "required field is missing: name the variant served when no rule matches")
    elif default is not None:
        default = variant_name(default)
        if default not in variants and variants:
            hint = closest(default, variants)
            report(("defaultVariant",), f"unknown variant `{default}` (variants: {', '.join(variants)})"
                   + (f"; did you mean `{hint}`?" if hint else ""))
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(_scalar(v) for v in metadata.values()):
        report(("metadata",), "metadata must map names to strings, numbers or booleans")
        metadata = {}
    targeting = data.get("targeting")
    resolved_targeting = None
    if targeting is not None:
        if not isinstance(targeting, dict):
            report(("targeting",), "targeting must be a JsonLogic rule (a mapping), or `{}` for none")
        elif targeting:
            checker.check(targeting, set(variants), lambda path, message: report(("targeting", *path), message))
            resolved_targeting = checker.resolve(targeting)
    if len(problems) > before:
        return None, {}
    flag = Flag(key, state, dict(variants), default, resolved_targeting, dict(metadata))
    resolved = {k: v for k, v in data.items() if k in FLAG_KEYS}
    if resolved_targeting is not None:
        resolved["targeting"] = resolved_targeting
    return flag, resolved


def value_type(value: Any) -> str:
    """The OpenFeature type of a variant value: boolean, string, number or object."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def _check_variant_types(variants: dict[str, Any], report: Any) -> None:
    first: tuple[str, str] | None = None
    for name, value in variants.items():
        if value is None:
            report(("variants", name), f"variant `{name}` has no value")
            continue
        kind = value_type(value)
        if first is None:
            first = (name, kind)
        elif kind != first[1]:
            report(("variants", name), f"variant `{name}` is a {kind} but `{first[0]}` is a {first[1]}: "
                   "all variants of a flag have one type")


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _problem(position: Position, field_name: str, message: str) -> Problem:
    return Problem(position.file, position.line, position.column, field_name, message)
