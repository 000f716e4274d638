"""The reference page of the config format, docs/config.md, generated from the models so it cannot drift.

Regenerate it with `python -m shipyard.spec.docs > docs/config.md`; tests/spec/test_docs.py fails when the
file and the models disagree. The prose around the tables is INTRO below; the tables come from the
models' fields, types, constraints, defaults (written in the format's own notation) and descriptions.
"""

from __future__ import annotations

import json
import re
import sys
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

import annotated_types
from pydantic import BaseModel, Discriminator, TypeAdapter
from pydantic.fields import FieldInfo

from shipyard.spec import models
from shipyard.spec.models import (
    NAME_PATTERN,
    Analysis,
    EnvEntry,
    SecretRef,
    ApprovalGate,
    CommandGate,
    CompareAnalysis,
    Environment,
    Gate,
    Project,
    PrometheusAnalysis,
    Service,
    Threshold,
    ThresholdAnalysis,
    UrlGate,
    VerifyCheck,
    VersionPolicy,
    SemverPolicy,
    NumericalPolicy,
    AlphabeticalPolicy,
)
from shipyard.spec.types import CountOrPercent, Cpu, Duration, EnvValue, Fraction, Memory

REGENERATE = "python -m shipyard.spec.docs > docs/config.md"

# Descriptions of fields whose models do not carry one yet, keyed by (model, field name). A test fails
# when a model gains its own description for one of these (the model's wins; delete the entry here).
EXTRA_DESCRIPTIONS: dict[tuple[type[BaseModel], str], str] = {
    (Project, "name"): "The project's name.",
    (Environment, "name"): "The environment's name; it must be listed in `shipyard.yaml` `environments`.",
    (Service, "artifact"): "What runs: a directory of this repository and the command started in it.",
    (Service, "endpoint"): "The stable address other services reach this one at (given to them as `<NAME>_URL`).",
    (Service, "ingress"): "Routes outside requests to this service through the proxy; unset, only other services "
                          "reach it.",
    (Service, "resources"): "Limits of each instance.",
    (Service, "health"): "Health checks of each instance.",
    (Service, "stop"): "How an instance is stopped.",
    (Service, "routing"): "How the proxy treats requests to this service.",
    (Service, "strategy"): "How a new version replaces the running one.",
    (models.Strategy, "type"): "The rollout strategy; its settings are the section of the same name (`recreate` "
                               "has none: it stops every old instance before starting the new ones).",
    (models.Strategy, "rolling"): "Settings of `type: rolling`: replace instances a few at a time.",
    (models.Strategy, "blue_green"): "Settings of `type: blue-green`: start a full new set, then switch traffic "
                                     "at once.",
    (models.Strategy, "canary"): "Settings of `type: canary`: shift traffic step by step while analysing the "
                                 "new version.",
    (models.CanaryStrategy, "analysis"): "Checks of each step; a failed one counts towards `failureThreshold`. "
                                         "See [Analysis entries](#analysis-entries).",
    (models.CanaryStrategy, "pre_rollout"): "Gates passed before the canary gets any traffic. See [Gates](#gates).",
    (models.CanaryStrategy, "pre_promotion"): "Gates passed before the canary becomes the primary. "
                                              "See [Gates](#gates).",
    (models.Match, "header"): "Match on a request header.",
    (models.Match, "cookie"): "Match on a cookie.",
    (models.HeaderMatch, "name"): "The header's name.",
    (models.HeaderMatch, "exact"): "The header's value equals this.",
    (models.HeaderMatch, "prefix"): "The header's value starts with this.",
    (models.HeaderMatch, "regex"): "The header's value matches this regular expression.",
    (models.CookieMatch, "name"): "The cookie's name.",
    (models.CookieMatch, "exact"): "The cookie's value equals this.",
    (CommandGate, "timeout"): "The gate fails when the command has not finished by then.",
    (UrlGate, "timeout"): "The gate fails when no answer came by then.",
    (ThresholdAnalysis, "min"): "The check fails below this (`successRate`, `errorRate` in percent, "
                                "`requestRate` in requests per second).",
    (ThresholdAnalysis, "max"): "The check fails above this (latency in milliseconds or as a duration like "
                                "`500ms`).",
    (PrometheusAnalysis, "min"): "The check fails when the query's value is below this.",
    (PrometheusAnalysis, "max"): "The check fails when the query's value is above this.",
}

# Types better said in words than derived from the annotation.
TYPE_OVERRIDES: dict[tuple[type[BaseModel], str], str] = {
    (Environment, "services"): "map of service name to overlay (any Service fields, or empty)",
}

# Titles of the forms a list entry can take (tagged unions), and of those lists' sections.
VARIANT_TITLES: dict[type[BaseModel], str] = {
    CommandGate: "Command — passes when the command exits 0",
    UrlGate: "URL — passes on a 2xx answer",
    ApprovalGate: "Approval — waits for a person",
    ThresholdAnalysis: "Threshold — a metric of the canary stays within bounds",
    CompareAnalysis: "Comparison — the canary against the primary",
    PrometheusAnalysis: "Prometheus — a query's value stays within bounds",
    SemverPolicy: "Semver — the greatest version in a range",
    NumericalPolicy: "Numerical — the greatest (or least) number",
    AlphabeticalPolicy: "Alphabetical — the last (or first) in text order",
}
UNION_SECTIONS: dict[Any, tuple[str, str]] = {
    Gate: ("Gates", "A gate is a check that must pass before a rollout goes on. Each entry has one of these forms, "
                    "told apart by its key `command`, `url` or `approval`."),
    VerifyCheck: ("Verify checks", "What a release must pass in an environment, after its soak, before it may move "
                                   "on to the next one. Each entry has one of these forms: `command` or `url` (as "
                                   "gates, against the service's endpoint), `metric: prometheus` a query, another "
                                   "`metric` a threshold over the soak."),
    VersionPolicy: ("Version policies", "Which of the versions in the artifact store is the newest, as Flux's "
                                        "ImagePolicy decides it."),
    Analysis: ("Analysis entries", "The checks a canary is judged by at each step, over the last `interval`. Each "
                                   "entry has one of these forms: `metric: prometheus` is a query, another "
                                   "`metric` a threshold, `compare` a comparison."),
}

# Types with a name of their own in the format, told apart by their validator.
NAMED_TYPES: list[tuple[Any, str]] = [
    (Duration, "duration"),
    (Cpu, "CPU quantity"),
    (Memory, "memory quantity"),
    (CountOrPercent, "count or percentage"),
    (Fraction, "percentage"),
    (EnvValue, "scalar (kept as text)"),
    (EnvEntry, "scalar (kept as text) or `{secret: KEY.PATH}`"),
    (Threshold, "number or duration"),
]

INTRO = """\
# Configuration reference — `apiVersion: shipyard/v1`

<!-- Generated from src/shipyard/spec/models.py by `{regenerate}`. Do not edit by hand:
     change the models' descriptions or the INTRO of src/shipyard/spec/docs.py, then regenerate. -->

A Shipyard project is a directory — usually a git repository — of YAML files that declare which
services exist, how each one runs, and how they differ between environments. `shipyard validate DIR`
checks it; `shipyard render DIR --env NAME` prints what an environment deploys, every default filled in;
`shipyard schema` prints a JSON Schema for editors.

## Files

```
shipyard.yaml              kind: Project      the project: its name and environments, in promotion order
services/NAME.yaml         kind: Service      one service: what runs and how (its base)
environments/NAME.yaml     kind: Environment  one environment: the services deployed there and what differs
apps/...                   the services' code, wherever `artifact.path` points inside the repository
```

- One YAML document per file; `.yaml` or `.yml`. Other files in these directories are ignored.
- Every document starts with `apiVersion: shipyard/v1` and the `kind` of its directory.
- Keys are camelCase, as in the tables below. An unknown key is an error (with a "did you mean"
  hint for a misspelling), never silently ignored.
- Names (of the project, services and environments) are lower-case letters, digits and `-`,
  start with a letter, do not end with `-`, and have at most 40 characters: `orders`, `web-2`.
- Every environment listed in `shipyard.yaml` has a file in `environments/`, and every file there is listed.

## Environments and overlays

A service runs in an environment only when the environment lists it under `services`. Each entry
there is an *overlay*: any of the service's fields, merged onto its base file by three rules:

- **maps merge key by key** — an overlay's `env: {{A: "1"}}` adds or changes `A` and keeps the other variables;
- **lists replace** — an overlay's `needs: [catalog]` is the whole list, not an addition;
- **`null` removes a key** — the base's value is dropped and the default applies again.

`apiVersion`, `kind` and `name` cannot be changed by an overlay. An empty entry (`catalog:` or
`catalog: {{}}`) deploys the base as it is. Errors in the merged result are reported where the value
was written: in the environment's file if the overlay wrote it, in the service's file otherwise.

## Durations and quantities

| Kind | Written as | Notes |
|---|---|---|
| duration | `200ms`, `10s`, `5m`, `1h`, `1.5s` | a bare number is seconds |
| CPU quantity | `250m` (millicores), `0.5`, `2` (cores) | as Kubernetes writes it |
| memory quantity | `128Mi`, `1Gi`, `64Ki`, `500M`, `1G`, or a number of bytes | binary (`Mi`) and decimal (`M`) units, as Kubernetes writes them |
| percentage | `25%`, `12.5%` | a bare number is percent too: `20` is `20%` |
| count or percentage | `1`, `25%` | a percentage of `replicas`, as Kubernetes' `maxSurge` |

`shipyard render` writes every value back in this notation (`0.5` cores becomes `500m`, 300 seconds `5m`).

## What `validate` checks

Every problem in the project is reported at once, one line each, and the exit status is 1:

```
FILE:LINE:COL: error: FIELD.PATH: message
services/catalog.yaml:8:1: error: replcas: unknown field `replcas`; did you mean `replicas`?
environments/prod.yaml:17:9: error: services.catalog.strategy.canary.interval: must be greater than 0 (got '0s')
```

Besides each field's type and range (the tables below), `validate` checks, for each environment:
that every service it lists exists; that every service in a deployed service's `needs` is deployed
there too; that no two services share an endpoint `port`, or an ingress host and path; and that every
`artifact.path` is a directory inside the project (no absolute paths, no `..`). A service with an error of
its own still takes part in these checks, without its fields in error, so a typo in one field does not hide
a port clash beside it.

## Example

`services/catalog.yaml`, the base:

```yaml
apiVersion: shipyard/v1
kind: Service
name: catalog
version: "1.0.0"
artifact:
  path: apps/catalog
  command: [python3, app.py]
env:
  CATALOG_CURRENCY: EUR
resources: {{cpu: 100m, memory: 64Mi}}
```

`environments/prod.yaml`, deploying it with three replicas, a fixed port and canary releases:

```yaml
apiVersion: shipyard/v1
kind: Environment
name: prod
services:
  catalog:
    replicas: 3
    endpoint: {{port: 9101}}
    env:
      CATALOG_CURRENCY: USD
    strategy:
      type: canary
      canary:
        steps: [10, 50, 100]
        analysis:
          - {{metric: successRate, min: 99}}
          - {{metric: latencyP99, max: 500ms}}
```

with `shipyard.yaml`:

```yaml
apiVersion: shipyard/v1
kind: Project
name: shop
environments: [prod]
```

In `prod`, `catalog` runs 3 replicas on port 9101 with `CATALOG_CURRENCY=USD`, keeps `100m` CPU and
`64Mi` memory from its base, and has every other field at the default the tables below give — for
instance `health.readiness.interval: 5s` and `strategy.canary.interval: 10s`. `shipyard render DIR
--env prod` prints all of it. A complete project is in `examples/shop/`.

## Reference

Keys are written as paths from the top of the document: `health.readiness.interval` is `interval`
inside `readiness` inside `health`; `[]` stands for each entry of a list. *required* inside an optional
mapping means required whenever that mapping is written. A default is the value `shipyard render`
shows for a key that is not written; *unset* means the key is absent unless written.
"""


@dataclass(frozen=True)
class Row:
    """One line of a reference table."""

    key: str
    type: str
    default: str
    description: str


def reference() -> str:
    """The whole page: INTRO, then one table per kind and one per form of each tagged union."""
    unions: dict[Any, list[str]] = {}
    parts = [INTRO.format(regenerate=REGENERATE)]
    for model, title, where in ((Project, "Project", "shipyard.yaml"), (Service, "Service", "services/NAME.yaml"),
                                (Environment, "Environment", "environments/NAME.yaml")):
        parts.append(f"### {title} — `{where}`\n\n{_table(_rows(model, '', None, unions))}")
    for union, used_in in unions.items():
        title, text = UNION_SECTIONS.get(union, ("Entries", ""))
        parts.append(f"### {title}\n\n{text} Used in {', '.join(f'`{key}`' for key in used_in)}.")
        for variant in _variants(union):
            heading = VARIANT_TITLES.get(variant, variant.__name__)
            parts.append(f"#### {heading}\n\n{_table(_rows(variant, '', None, unions))}")
    return "\n\n".join(part.rstrip("\n") for part in parts) + "\n"


def _table(rows: list[Row]) -> str:
    lines = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    lines += [f"| `{r.key}` | {_cell(r.type)} | {_cell(r.default)} | {_cell(r.description)} |" for r in rows]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rows(model: type[BaseModel], prefix: str, defaults: dict[str, Any] | None,
          unions: dict[Any, list[str]]) -> list[Row]:
    """The rows of `model`'s fields under `prefix`; `defaults` is the parent's default of this mapping, if any."""
    rows: list[Row] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        annotation, metadata = _flatten(field.annotation, field.metadata)
        default = _default(field, defaults, field.alias or name)
        shown_type = TYPE_OVERRIDES.get((model, name)) or _type(annotation, metadata)
        rows.append(Row(key, shown_type, _show(default), description(model, name)))
        inner = _model_of(annotation)
        if inner is not None:
            rows += _rows(inner, f"{key}.", default if isinstance(default, dict) else None, unions)
        elif _union_of(annotation, metadata) is not None:
            unions.setdefault(_union_of(annotation, metadata), []).append(key)
        if typing.get_origin(annotation) is dict and typing.get_args(annotation)[1] is EnvEntry:
            rows += _rows(SecretRef, f"{key}.NAME.", None, unions)  # the one mapping form of an env value
        item = _list_item(annotation)
        if item is not None and _model_of(_flatten(item, [])[0]) is not None:
            rows += _rows(_model_of(_flatten(item, [])[0]), f"{key}[].", None, unions)  # type: ignore[arg-type]
        elif item is not None and _is_tagged_union(item):
            unions.setdefault(item, []).append(f"{key}[]")
    return rows


def description(model: type[BaseModel], name: str) -> str:
    """The field's own description, else the one kept here, else `Always X.` for a one-value literal."""
    field = model.model_fields[name]
    if field.description:
        return field.description
    for owner in model.__mro__:
        if (owner, name) in EXTRA_DESCRIPTIONS:
            return EXTRA_DESCRIPTIONS[(owner, name)]  # type: ignore[index]
    values = typing.get_args(field.annotation) if typing.get_origin(field.annotation) is Literal else ()
    return f"Always `{values[0]}`." if len(values) == 1 else ""


_REQUIRED = object()


def _default(field: FieldInfo, parent: dict[str, Any] | None, key: str) -> Any:
    """The default as `render` would print it: from the parent's default when it has one, else the field's."""
    if parent is not None and key in parent:
        return parent[key]
    if field.is_required():
        return _REQUIRED
    value = field.get_default(call_default_factory=True)
    return _adapter(field.annotation, field.metadata).dump_python(value, mode="json", by_alias=True)


def _adapter(annotation: Any, metadata: list[Any]) -> TypeAdapter[Any]:
    return TypeAdapter(Annotated[(annotation, *metadata)] if metadata else annotation)


def _show(value: Any) -> str:
    if value is _REQUIRED:
        return "*required*"
    if value is None:
        return "*unset*"
    if isinstance(value, dict) and value:
        return ""  # a mapping: its keys' defaults are in the rows below
    return f"`{_yaml(value)}`"


def _yaml(value: Any) -> str:
    """A value in YAML flow style: `10s`, `true`, `[5, 25, 50, 100]`, `{}`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str) and (not value or value[0] in "{[&*!|>'\"%@`#" or ": " in value):
        return json.dumps(value)
    return str(value)


# ---- types ---------------------------------------------------------------------------------------


def _flatten(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """The bare type and every constraint or validator on it, out of nested Annotated[...] and Field(...)."""
    collected = list(metadata)
    while typing.get_origin(annotation) is Annotated:
        annotation, *extra = typing.get_args(annotation)
        for item in extra:
            collected += item.metadata if isinstance(item, FieldInfo) else [item]
    return annotation, collected


def _type(annotation: Any, metadata: list[Any]) -> str:
    named = _named(metadata)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType) and type(None) in args and named is None:
        rest = [a for a in args if a is not type(None)]
        return _type(*_flatten(rest[0], metadata)) if len(rest) == 1 else "value"
    if named is not None:
        text = named
    elif origin is Union and any(isinstance(m, Discriminator) for m in metadata):
        return "one of the " + UNION_SECTIONS.get(_union_of(annotation, metadata), ("entries", ""))[0].lower()
    elif _model_of(annotation) is not None:
        return "mapping"
    elif origin is Literal:
        text = ", ".join(f"`{_yaml(a)}`" for a in args)
        return f"one of {text}" if len(args) > 1 else text
    elif origin is list:
        item = args[0]
        if _is_tagged_union(item):
            text = "list of " + UNION_SECTIONS.get(item, ("entries", ""))[0].lower()
        else:
            inner, inner_meta = _flatten(item, [])
            text = "list of " + _plural(_type(inner, inner_meta))
        return ("non-empty " if _limit(metadata, annotated_types.MinLen) else "") + text
    elif origin is dict:
        return f"map of string to {_plural(_type(*_flatten(args[1], [])))}"
    elif annotation is bool:
        return "boolean"
    elif annotation is int:
        text = "integer"
    elif annotation is float:
        text = "number"
    elif annotation is str:
        text = _string(metadata)
    else:
        text = getattr(annotation, "__name__", str(annotation))
    return text + _bounds(metadata, annotation)


def _union_of(annotation: Any, metadata: list[Any]) -> Any:
    """The tagged-union alias (as UNION_SECTIONS knows it) that annotation + metadata came from."""
    for union in UNION_SECTIONS:
        if typing.get_args(union)[0] == annotation and typing.get_args(union)[1] in metadata:
            return union
    return None


def _named(metadata: list[Any]) -> str | None:
    for named, text in NAMED_TYPES:
        marker = typing.get_args(named)[1]  # the type's validator
        if marker in metadata:
            return text
    return None


def _string(metadata: list[Any]) -> str:
    pattern = next((getattr(m, "pattern", None) for m in metadata if getattr(m, "pattern", None)), None)
    if pattern == NAME_PATTERN:
        return "name"
    if pattern == r"^/":
        return "string starting with `/`"
    if pattern:
        return f"string matching `{pattern}`"
    return "non-empty string" if _limit(metadata, annotated_types.MinLen) else "string"


def _bounds(metadata: list[Any], annotation: Any) -> str:
    """`, 0–1000`, ` ≥ 1`, ` > 0s`: the numeric constraints, in the type's own notation."""
    low = _limit(metadata, annotated_types.Ge), _limit(metadata, annotated_types.Gt)
    high = _limit(metadata, annotated_types.Le), _limit(metadata, annotated_types.Lt)
    shown = _shower(metadata, annotation)
    if low[0] is not None and high[0] is not None:
        return f", {shown(low[0])}–{shown(high[0])}"
    parts = []
    if low[0] is not None and not (low[0] == 0 and _named(metadata) is not None):  # `≥ 0s` goes without saying
        parts.append(f"≥ {shown(low[0])}")
    if low[1] is not None:
        parts.append(f"> {shown(low[1])}")
    if high[0] is not None:
        parts.append(f"≤ {shown(high[0])}")
    if high[1] is not None:
        parts.append(f"< {shown(high[1])}")
    return (" " + " and ".join(parts)) if parts else ""


def _shower(metadata: list[Any], annotation: Any) -> Any:
    """Formats a bound as the field's values are written (`0s`, `100%`), through the type's serializer."""
    adapter = _adapter(annotation, [m for m in metadata if not _is_constraint(m)])

    def show(bound: Any) -> str:
        return _yaml(adapter.dump_python(bound, mode="json"))
    return show


def _is_constraint(item: Any) -> bool:
    return isinstance(item, (annotated_types.BaseMetadata, annotated_types.GroupedMetadata)) \
        or type(item).__name__ == "_PydanticGeneralMetadata"


def _limit(metadata: list[Any], kind: type) -> Any:
    attribute = {annotated_types.Ge: "ge", annotated_types.Gt: "gt", annotated_types.Le: "le",
                 annotated_types.Lt: "lt", annotated_types.MinLen: "min_length"}[kind]
    return next((getattr(m, attribute) for m in metadata if isinstance(m, kind)), None)


def _plural(text: str) -> str:
    """`integer, 1–100` → `integers, 1–100`; `string` → `strings`."""
    head, rest = re.match(r"^(\w*)(.*)$", text).groups()  # type: ignore[union-attr]
    plural = {"name": "names", "string": "strings", "integer": "integers", "number": "numbers",
              "mapping": "mappings", "scalar": "scalars"}.get(head, head)
    return plural + rest


def _model_of(annotation: Any) -> type[BaseModel] | None:
    options = [annotation]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
    if len(options) == 1 and isinstance(options[0], type) and issubclass(options[0], BaseModel):
        return options[0]
    return None


def _list_item(annotation: Any) -> Any:
    return typing.get_args(annotation)[0] if typing.get_origin(annotation) is list else None


def _is_tagged_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) is Annotated and \
        typing.get_origin(typing.get_args(annotation)[0]) is Union


def _variants(union: Any) -> list[type[BaseModel]]:
    members = typing.get_args(typing.get_args(union)[0])
    return [typing.get_args(m)[0] if typing.get_origin(m) is Annotated else m for m in members]


def main() -> None:
    sys.stdout.write(reference())


if __name__ == "__main__":
    main()
