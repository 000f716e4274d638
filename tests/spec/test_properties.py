"""Property tests: whatever the files of a project contain, loading, checking and rendering it
only ever report Problems or raise SpecError — never any other exception."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from shipyard.errors import SpecError
from shipyard.spec.render import check, render

from .conftest import copy_example

FILES = ["shipyard.yaml", "services/catalog.yaml", "services/frontend.yaml", "services/orders.yaml",
         "environments/dev.yaml", "environments/prod.yaml"]

# Modest by default, to keep the suite fast. A deeper search (no pytest timeout, a few minutes):
#   PROPERTY_EXAMPLES=1000 .venv/bin/python -m pytest --timeout=0 tests/spec/test_properties.py
SETTINGS = settings(max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "30")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield copy_example(tmp_path_factory.mktemp("prop") / "shop")


def assert_only_spec_errors(root: Path, environment: str = "prod") -> None:
    """Checking and rendering `root` end in Problems or SpecError, never another exception; the Problems are sane.

    (Two loads per example, as parsing dominates the time: check() renders every environment, render()
    one — and, when it succeeds, what `render -o json` prints.)
    """
    problems = check(root)
    try:
        desired = render(root, environment)
    except SpecError as exc:
        assert exc.problems, "a SpecError must carry at least one Problem"
        problems += exc.problems
    else:
        json.dumps(desired.to_dict(), allow_nan=False)
    for problem in problems:
        assert problem.line >= 1 and problem.column >= 1, problem
        assert problem.file and not Path(problem.file).is_absolute() and ".." not in Path(problem.file).parts, problem
        assert problem.message, problem


def run_with(project: Path, file: str, text: str) -> None:
    path = project / file
    original = path.read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    try:
        assert_only_spec_errors(project, "dev" if "dev" in file else "prod")
    finally:
        path.write_text(original, encoding="utf-8")


# ---- random text -------------------------------------------------------------------------------------

YAML_ISH = st.text(alphabet=st.sampled_from(list("abkm019 :-_[]{},#&*!|>'\"\n\t%@`?.~") + ["\x00", "é", "\ufeff"]),
                   max_size=120)


@SETTINGS
@given(file=st.sampled_from(FILES), text=st.one_of(st.text(max_size=80), YAML_ISH))
def test_random_text(project: Path, file: str, text: str) -> None:
    run_with(project, file, text)


# ---- random documents --------------------------------------------------------------------------------

KEYS = ["apiVersion", "kind", "name", "version", "artifact", "path", "command", "replicas", "endpoint", "port",
        "ingress", "host", "env", "needs", "resources", "cpu", "memory", "health", "readiness", "interval",
        "strategy", "type", "canary", "steps", "analysis", "metric", "compare", "services", "catalog", "orders",
        "environments", "dev", "prod", "min", "max", "approval", "url", "replcas"]

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["shipyard/v1", "Service", "Environment", "Project", "catalog", "orders", "dev", "prod",
                     "10s", "0s", "500ms", "250m", "128Mi", "25%", "/", "apps/catalog", "canary", "successRate"]),
)

def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=6))
    return st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5))


DOCUMENTS = st.recursive(SCALARS, _containers, max_leaves=25)


def dump(data: Any) -> str:
    yaml = YAML(typ="safe", pure=True)
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


@SETTINGS
@given(file=st.sampled_from(FILES), data=DOCUMENTS, header=st.booleans())
def test_random_documents(project: Path, file: str, data: Any, header: bool) -> None:
    if header and isinstance(data, dict):
        # Most documents then get past the kind check and reach the models.
        kind = "Project" if file == "shipyard.yaml" else "Service" if file.startswith("services") else "Environment"
        data = {"apiVersion": "shipyard/v1", "kind": kind, "name": Path(file).stem, **data}
    run_with(project, file, dump(data))


# ---- mutations of the example's files ----------------------------------------------------------------

def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        data = data[step]
    return data


def _mutate(data: Any, path: tuple[Any, ...], operation: str, value: Any) -> Any:
    parent = _parent(data, path)
    key = path[-1]
    if operation == "delete":
        del parent[key]
    elif operation == "replace":
        parent[key] = value
    elif operation == "insert" and isinstance(parent, dict):
        parent[f"{key}x" if isinstance(key, str) else "x"] = value
    elif operation == "insert":
        parent.insert(key, value)
    elif operation == "null":
        parent[key] = None
    return data


MUTATION = st.tuples(st.sampled_from(["delete", "replace", "insert", "null"]), st.integers(min_value=0),
                     st.one_of(SCALARS, DOCUMENTS))


def _example(file: str) -> str:
    return (Path(__file__).resolve().parents[2] / "examples" / "shop" / file).read_text(encoding="utf-8")


@SETTINGS
@given(file=st.sampled_from(FILES), mutations=st.lists(MUTATION, min_size=1, max_size=3))
def test_mutated_documents(project: Path, file: str, mutations: list[tuple[str, int, Any]]) -> None:
    data = YAML(typ="safe", pure=True).load(_example(file))
    for operation, index, value in mutations:
        paths = _paths(data)
        if paths:
            data = _mutate(data, paths[index % len(paths)], operation, value)
    run_with(project, file, dump(data))


GARBAGE = st.sampled_from(["\t", "  ", ":", ": ", "- ", "[", "]", "{", "}", "&a ", "*a", "*nope", "!!binary ", "|",
                           "'", '"', "#", "---\n", "\n", "\x00", "%YAML 1.1\n", "? ", "<<: *a\n", "~", "\ufeff"])


@SETTINGS
@given(file=st.sampled_from(FILES), data=st.data())
def test_mutated_text(project: Path, file: str, data: st.DataObject) -> None:
    text = _example(file)
    lines = text.splitlines(keepends=True)
    operation = data.draw(st.sampled_from(["truncate", "garbage", "duplicate line", "tab indent", "swap lines",
                                           "merge key"]))
    if operation == "truncate":
        text = text[: data.draw(st.integers(0, len(text)))]
    elif operation == "garbage":
        at = data.draw(st.integers(0, len(text)))
        text = text[:at] + data.draw(GARBAGE) + text[at:]
    elif operation == "duplicate line":
        at = data.draw(st.integers(0, len(lines) - 1))
        text = "".join(lines[: at + 1] + [lines[at]] + lines[at + 1:])
    elif operation == "merge key":
        at = data.draw(st.integers(0, len(lines) - 1))
        indent = lines[at][: len(lines[at]) - len(lines[at].lstrip(" "))]
        lines.insert(at, indent + data.draw(st.sampled_from(["<<: {replicas: 2}\n", "<<: {x: 1}\n", "<<: []\n"])))
        text = "".join(lines)
    elif operation == "tab indent":
        at = data.draw(st.integers(0, len(lines) - 1))
        lines[at] = "\t" + lines[at].lstrip(" ")
        text = "".join(lines)
    else:
        a, b = data.draw(st.integers(0, len(lines) - 1)), data.draw(st.integers(0, len(lines) - 1))
        lines[a], lines[b] = lines[b], lines[a]
        text = "".join(lines)
    run_with(project, file, text)


def test_the_unmutated_example_passes_the_property(project: Path) -> None:
    for environment in ("dev", "prod", "nope"):
        assert_only_spec_errors(project, environment)
    assert check(project) == []
