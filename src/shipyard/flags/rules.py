"""Checking targeting rules before they are applied: JsonLogic operations, flagd's operations, `$ref`s, variants.

flagd only finds a bad rule when it evaluates it (and then answers an error or the default); Shipyard
rejects it with the config, at the line that holds it. The checks are static: a rule that computes a
variant name (`{"cat": ...}`) is accepted and checked at evaluation time, as flagd does.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Protocol

import semver
from json_logic import builtins

from shipyard.flags.evaluate import variant_name
from shipyard.flags.operations import SEM_VER_OPERATORS
from shipyard.spec.hints import closest
from shipyard.spec.yamlfile import PathKey

SPECIAL = ("if", "?:", "and", "or", "filter", "reduce", "map", "all", "some", "none")
OPERATIONS = frozenset((*builtins.BUILTINS, *SPECIAL, "fractional", "sem_ver", "starts_with", "ends_with"))
Report = Callable[[PathKey, str], None]
FLAGD_PROPERTIES = ("$flagd.flagKey", "$flagd.timestamp")


class _Evaluator(Protocol):
    data: Any


class RuleChecker:
    """Checks and resolves targeting rules against the `$evaluators` of the project's flag files."""

    def __init__(self, evaluators: dict[str, _Evaluator]) -> None:
        self.evaluators = evaluators

    def check(self, rule: Any, variants: set[str], report: Report) -> None:
        """Report every problem of RULE (a flag's `targeting`) through REPORT(path inside the rule, message)."""
        self._walk(rule, (), variants, report, result=True, refs=())

    def resolve(self, rule: Any, refs: tuple[str, ...] = ()) -> Any:
        """RULE with each `{"$ref": NAME}` replaced by a copy of evaluator NAME (checked rules only)."""
        if isinstance(rule, dict):
            if set(rule) == {"$ref"} and rule["$ref"] in self.evaluators and rule["$ref"] not in refs:
                name = rule["$ref"]
                return self.resolve(copy.deepcopy(self.evaluators[name].data), (*refs, name))
            return {key: self.resolve(value, refs) for key, value in rule.items()}
        if isinstance(rule, list):
            return [self.resolve(item, refs) for item in rule]
        return rule

    def _walk(self, node: Any, path: PathKey, variants: set[str], report: Report, result: bool,
              refs: tuple[str, ...]) -> None:
        if isinstance(node, list):
            for index, item in enumerate(node):
                self._walk(item, (*path, index), variants, report, False, refs)
            return
        if not isinstance(node, dict):
            if result and node is not None and not isinstance(node, (dict, list)):
                self._variant(node, path, variants, report)
            return
        if set(node) == {"$ref"}:
            self._ref(node["$ref"], path, variants, report, result, refs)
            return
        if len(node) != 1:
            report(path, "a JsonLogic operation is a mapping with exactly one operator, got "
                   + (", ".join(f"`{k}`" for k in node) or "an empty mapping"))
            return
        operator, args = next(iter(node.items()))
        if operator not in OPERATIONS:
            hint = closest(operator, OPERATIONS)
            report((*path, operator), f"unknown JsonLogic operation `{operator}`"
                   + (f"; did you mean `{hint}`?" if hint else ""))
            return
        items = args if isinstance(args, list) else [args]
        inner: PathKey = (*path, operator)
        if operator in ("if", "?:"):
            for index, item in enumerate(items):
                is_result = index % 2 == 1 or index == len(items) - 1
                self._walk(item, self._at(inner, args, index), variants, report, result and is_result, refs)
            return
        if operator == "fractional":
            self._fractional(items, inner, args, variants, report, result, refs)
            return
        if operator == "sem_ver":
            self._sem_ver(items, inner, args, report)
        if operator in ("starts_with", "ends_with"):
            self._strings(operator, items, inner, args, report)
        if operator == "var":
            self._var(items, inner, args, report)
        for index, item in enumerate(items):
            self._walk(item, self._at(inner, args, index), variants, report, False, refs)

    @staticmethod
    def _at(inner: PathKey, args: Any, index: int) -> PathKey:
        return (*inner, index) if isinstance(args, list) else inner

    def _ref(self, name: Any, path: PathKey, variants: set[str], report: Report, result: bool,
             refs: tuple[str, ...]) -> None:
        if not isinstance(name, str) or name not in self.evaluators:
            hint = closest(str(name), self.evaluators)
            report((*path, "$ref"), f"unknown evaluator `{name}`: no `$evaluators` entry of the flag files defines it"
                   + (f"; did you mean `{hint}`?" if hint else ""))
            return
        if name in refs:
            report((*path, "$ref"), f"evaluator `{name}` refers to itself")
            return

        def in_evaluator(inner: PathKey, message: str) -> None:
            report((*path, "$ref"), f"in evaluator `{name}`: {message}")

        self._walk(self.evaluators[name].data, (), variants, in_evaluator, result, (*refs, name))

    def _variant(self, literal: Any, path: PathKey, variants: set[str], report: Report) -> None:
        name = variant_name(literal)
        if name not in variants:
            hint = closest(name, variants)
            report(path, f"unknown variant `{name}` (variants: {', '.join(sorted(variants))})"
                   + (f"; did you mean `{hint}`?" if hint else ""))

    def _fractional(self, items: list[Any], inner: PathKey, args: Any, variants: set[str], report: Report,
                    result: bool, refs: tuple[str, ...]) -> None:
        start = 0 if items and isinstance(items[0], list) else 1
        if start == 1 and items and not isinstance(items[0], dict):
            report(self._at(inner, args, 0), "the bucketing value of `fractional` is a JsonLogic expression, e.g. "
                   f'{{"var": "email"}}, not the literal {items[0]!r}')
        elif start == 1:
            self._walk(items[0] if items else None, self._at(inner, args, 0), variants, report, False, refs)
        buckets = items[start:]
        if not buckets:
            report(inner, "`fractional` needs at least one [variant, weight] bucket")
        for index, bucket in enumerate(buckets, start):
            where = self._at(inner, args, index)
            if not isinstance(bucket, list) or not 1 <= len(bucket) <= 2:
                report(where, "a `fractional` bucket is [variant] or [variant, weight]")
                continue
            if len(bucket) == 2 and isinstance(bucket[1], dict):
                self._walk(bucket[1], (*where, 1), variants, report, False, refs)  # a computed weight
            elif len(bucket) == 2 and (isinstance(bucket[1], bool) or not isinstance(bucket[1], int) or bucket[1] < 0):
                report((*where, 1), f"a `fractional` weight is a whole number ≥ 0 (got {bucket[1]!r})")
            if isinstance(bucket[0], (dict, list)):
                self._walk(bucket[0], (*where, 0), variants, report, result, refs)
            elif result:
                self._variant(bucket[0], (*where, 0), variants, report)

    def _strings(self, operator: str, items: list[Any], inner: PathKey, args: Any, report: Report) -> None:
        if len(items) != 2:
            report(inner, f"`{operator}` takes two arguments: a value and the text to look for")
            return
        for index, item in enumerate(items):
            if not isinstance(item, (str, dict)):
                report(self._at(inner, args, index), f"`{operator}` compares text: {item!r} is not a string")

    def _var(self, items: list[Any], inner: PathKey, args: Any, report: Report) -> None:
        name = items[0] if items else None
        if isinstance(name, str) and name.startswith("$flagd.") and name not in FLAGD_PROPERTIES:
            hint = closest(name, FLAGD_PROPERTIES)
            report(self._at(inner, args, 0), f"unknown flagd property `{name}` (flagd sets "
                   f"{', '.join(FLAGD_PROPERTIES)})" + (f"; did you mean `{hint}`?" if hint else ""))

    def _sem_ver(self, items: list[Any], inner: PathKey, args: Any, report: Report) -> None:
        if len(items) != 3:
            report(inner, "`sem_ver` takes three arguments: [version, operator, version]")
            return
        if isinstance(items[1], str) and items[1] not in SEM_VER_OPERATORS:
            report(self._at(inner, args, 1), f"unknown sem_ver operator `{items[1]}` "
                   f"(one of {', '.join(SEM_VER_OPERATORS)})")
        for index in (0, 2):
            # Literals are full versions, as flagd's schema requires; values from the context may be partial.
            if isinstance(items[index], str) and not semver.Version.is_valid(items[index]):
                report(self._at(inner, args, index), f"`{items[index]}` is not a semantic version (MAJOR.MINOR.PATCH)")
