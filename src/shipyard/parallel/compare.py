"""Comparing a candidate's answer with the live release's, Diffy-style, purely.

Each copied request is answered by the primary (live), the secondary (another live instance) and the
candidate. A field that differs between primary and secondary is noise (timestamps, random ids): it is
learnt per route and never counted. A field that differs between primary and candidate and is not noise
is a difference, grouped by route and field with a count and a few examples. Diffs come from PyPI
`deepdiff`; ignored JSON paths (`$.timestamp`, `$.items[*].id`) are removed with PyPI `jsonpath-ng`.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

import jsonpath_ng
from deepdiff import DeepDiff

EXAMPLES = 3
IDEMPOTENT = ("GET", "HEAD", "OPTIONS")
# Headers that differ between any two answers by construction; never compared.
UNCOMPARED_HEADERS = frozenset({"date", "content-length", "connection", "keep-alive", "server", "transfer-encoding",
                                "x-service-version"})


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Settings:
    """`strategy.canary.parallelRun` in effect."""

    percent: float = 10.0
    methods: tuple[str, ...] = ("GET",)
    ignore_headers: tuple[str, ...] = ()
    ignore_json: tuple[str, ...] = ()
    max_differences: int | None = None

    def copies(self, method: str) -> bool:
        """Whether requests of METHOD are duplicated: listed ones only, never a non-idempotent one unless listed."""
        return method.upper() in {m.upper() for m in self.methods}


@dataclass
class FieldReport:
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Report:
    """Every comparison of a parallel run so far."""

    compared: int = 0
    differing: int = 0
    noise: dict[str, set[str]] = field(default_factory=dict)                         # route → noisy fields
    differences: dict[str, dict[str, FieldReport]] = field(default_factory=dict)     # route → field → report

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Report":
        report = cls(int(data.get("compared", 0)), int(data.get("differing", 0)),
                     {route: set(fields) for route, fields in data.get("noise", {}).items()})
        for entry in data.get("differences", []):
            report.differences.setdefault(entry["route"], {})[entry["field"]] = FieldReport(
                int(entry["count"]), list(entry["examples"]))
        return report

    def to_dict(self) -> dict[str, Any]:
        return {
            "compared": self.compared, "differing": self.differing,
            "differences": [{"route": route, "field": name, "count": report.count, "examples": report.examples}
                            for route in sorted(self.differences)
                            for name, report in sorted(self.differences[route].items())],
            "noise": {route: sorted(fields) for route, fields in sorted(self.noise.items())},
        }


def fields_differing(a: Answer, b: Answer, settings: Settings) -> dict[str, tuple[Any, Any]]:
    """Field → (value in A, value in B) for every field where two answers differ."""
    found: dict[str, tuple[Any, Any]] = {}
    if a.status != b.status:
        found["status"] = (a.status, b.status)
    ignored = {h.lower() for h in settings.ignore_headers} | UNCOMPARED_HEADERS
    for name in sorted((set(a.headers) | set(b.headers)) - ignored):
        if a.headers.get(name) != b.headers.get(name):
            found[f"header:{name}"] = (a.headers.get(name), b.headers.get(name))
    left, right = _json(a.body), _json(b.body)
    if left is _NOT_JSON or right is _NOT_JSON:
        if a.body != b.body:
            found["body"] = (_text(a.body), _text(b.body))
        return found
    left, right = _without(left, settings.ignore_json), _without(right, settings.ignore_json)
    for kind, items in DeepDiff(left, right, view="tree").items():
        for item in items:
            path = json_path(item.path(output_format="list"))
            found[path] = (_plain(item.t1), _plain(item.t2))
    return found


def record(report: Report, route: str, primary: Answer, secondary: Answer, candidate: Answer,
           settings: Settings) -> dict[str, tuple[Any, Any]]:
    """Add one request's comparison to REPORT; returns the candidate's unexplained differences."""
    noisy = report.noise.setdefault(route, set())
    noisy.update(fields_differing(primary, secondary, settings))
    differences = {name: values for name, values in fields_differing(primary, candidate, settings).items()
                   if name not in noisy}
    report.compared += 1
    if differences:
        report.differing += 1
    for name, (live, new) in differences.items():
        entry = report.differences.setdefault(route, {}).setdefault(name, FieldReport())
        entry.count += 1
        if len(entry.examples) < EXAMPLES:
            entry.examples.append({"primary": live, "candidate": new})
    return differences


def verdict(report: Report, settings: Settings) -> tuple[bool, str]:
    """Whether the parallel run passes (`maxDifferences` unset: always), with the explanation."""
    unexplained = sum(r.count for fields in report.differences.values() for r in fields.values())
    named = ", ".join(f"{route} {name} ({r.count})" for route, fields in sorted(report.differences.items())
                      for name, r in sorted(fields.items())) or "none"
    message = (f"{unexplained} unexplained difference(s) in {report.compared} compared request(s): {named}; "
               f"noise cancelled: {sum(len(f) for f in report.noise.values())} field(s)")
    if settings.max_differences is None:
        return True, message
    return unexplained <= settings.max_differences, message + f" (max {settings.max_differences})"


def json_path(steps: list[Any]) -> str:
    """`['items', 0, 'price']` → `$.items[0].price`."""
    text = "$"
    for step in steps:
        text += f"[{step}]" if isinstance(step, int) else f".{step}"
    return text


_NOT_JSON = object()


def _json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return _NOT_JSON


def _without(document: Any, paths: tuple[str, ...]) -> Any:
    for path in paths:
        document = _parsed(path).filter(lambda _: True, document)
    return document


@functools.lru_cache(maxsize=256)
def _parsed(path: str) -> Any:
    return jsonpath_ng.parse(path)


def _plain(value: Any) -> Any:
    return None if type(value).__name__ == "NotPresent" else value


def _text(body: bytes) -> str:
    return body[:200].decode("utf-8", "replace")
