"""`shipyard validate`, `render` and `schema` as a user runs them: the real CLI in a subprocess.

The invocations are independent, so a module fixture starts them all at once and the tests read the results.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from ruamel.yaml import YAML

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shop"
PROBLEM_LINE = re.compile(r"^[^:]+:\d+:\d+: error: ")
COUNT_LINE = re.compile(r"^\d+ errors?$")


def _broken_project(root: Path) -> Path:
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__"))

    def edit(file: str, old: str, new: str) -> None:
        path = root / file
        text = path.read_text()
        assert text.count(old) == 1, f"{file}: expected {old!r} once; has the example changed?"
        path.write_text(text.replace(old, new))

    edit("services/frontend.yaml", "needs:", '"multi\\nline": 1\nneeds:')   # a key with a newline in it
    edit("services/orders.yaml", "needs: [catalog]", "needs: [catalgo]")
    edit("environments/dev.yaml", "port: 8102", "port: 8101")
    edit("environments/prod.yaml", "interval: 10s", "interval: 0s")
    edit("environments/prod.yaml", "replicas: 2", "replcas: 2")
    (root / "services" / "broken.yaml").write_text("apiVersion: shipyard/v1\nkind: [Service\n")
    return root


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "shipyard.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=60)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    broken = str(_broken_project(tmp_path_factory.mktemp("cli") / "shop"))
    missing = str(tmp_path_factory.mktemp("cli") / "no-such-dir")
    shop = str(EXAMPLE)
    invocations = {
        "validate": ["validate", shop],
        "validate broken": ["validate", broken],
        "validate broken --env": ["validate", broken, "--env", "dev"],
        "render broken": ["render", broken, "--env", "prod"],
        "validate unknown env": ["validate", shop, "--env", "staging"],
        "validate missing dir": ["validate", missing],
        "render missing dir": ["render", missing, "--env", "dev"],
        "render json": ["render", shop, "--env", "prod", "-o", "json"],
        "render yaml": ["render", shop, "--env", "prod"],
        "schema": ["schema"],
        "validate help": ["validate", "--help"],
        "render help": ["render", "-h"],
        "schema help": ["schema", "--help"],
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(_run, *args) for name, args in invocations.items()}
        return {name: future.result() for name, future in futures.items()}


def test_no_invocation_prints_a_traceback(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    for name, run in runs.items():
        assert "Traceback" not in run.stderr + run.stdout, f"{name}:\n{run.stderr}"


def test_validate_of_a_valid_project(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    run = runs["validate"]
    assert run.returncode == 0, run.stderr
    assert "valid" in run.stderr and run.stdout == ""


@pytest.mark.parametrize("name", ["validate broken", "validate broken --env", "render broken"])
def test_problems_are_one_line_each_then_a_count(runs: dict[str, subprocess.CompletedProcess[str]],
                                                 name: str) -> None:
    run = runs[name]
    assert run.returncode == 1, run.stderr
    assert run.stdout == "", "problems go to stderr; stdout is for data only"
    *problems, count = run.stderr.splitlines()
    assert problems
    for line in problems:
        assert PROBLEM_LINE.match(line), f"not FILE:LINE:COL: error: …: {line!r}"
    assert COUNT_LINE.match(count) and int(count.split()[0]) == len(problems), count


def test_validate_reports_every_problem_with_paths_relative_to_the_project(
        runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    lines = runs["validate broken"].stderr.splitlines()
    expected = [
        "environments/dev.yaml:9:16: error: services.orders.endpoint.port: port 8101 is already the endpoint of "
        "`catalog`",
        "environments/prod.yaml:17:9: error: services.catalog.strategy.canary.interval: must be greater than 0 "
        "(got '0s')",
        "environments/prod.yaml:33:5: error: services.frontend.replcas: unknown field `replcas`; did you mean "
        "`replicas`?",
        "services/frontend.yaml:8:1: error: multi line: unknown field `multi line`",  # joined onto one line
        "services/orders.yaml:8:9: error: needs[0]: unknown service `catalgo`; did you mean `catalog`?",
    ]
    assert [line for line in lines[:-1] if not line.startswith("services/broken.yaml")] == expected, "\n".join(lines)
    assert any(line.startswith("services/broken.yaml:") and "YAML syntax" in line for line in lines)
    assert lines[-1] == f"{len(lines) - 1} errors"
    assert not any(str(EXAMPLE.parent) in line or line.startswith("/") for line in lines)


def test_validate_of_one_environment_reports_only_its_problems(
        runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    lines = runs["validate broken --env"].stderr.splitlines()
    assert not any(line.startswith("environments/prod.yaml") for line in lines)
    assert any(line.startswith("environments/dev.yaml") for line in lines)


def test_an_unknown_environment_is_one_clean_line(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    run = runs["validate unknown env"]
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        "environments:1:1: error: unknown environment `staging` (defined: dev, prod)", "1 error"]


@pytest.mark.parametrize("name", ["validate missing dir", "render missing dir"])
def test_a_missing_directory_is_a_usage_error(runs: dict[str, subprocess.CompletedProcess[str]], name: str) -> None:
    run = runs[name]
    assert run.returncode == 2, run.stderr
    assert "no-such-dir" in run.stderr and run.stdout == ""


def test_render_json(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    run = runs["render json"]
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert set(data) == {"project", "environment", "services", "flags"}  # the shop has a flag (docs/flags.md)
    assert (data["project"], data["environment"]) == ("shop", "prod")
    assert sorted(data["flags"]["flags"]) == ["recommendations"]
    assert sorted(data["services"]) == ["catalog", "frontend", "orders"]
    assert data["services"]["catalog"]["replicas"] == 3
    assert data["services"]["catalog"]["resources"] == {"cpu": "100m", "memory": "128Mi"}


def test_render_yaml_is_the_same_data(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    run = runs["render yaml"]
    assert run.returncode == 0, run.stderr
    assert YAML(typ="safe", pure=True).load(run.stdout) == json.loads(runs["render json"].stdout)


def test_schema_is_json(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    run = runs["schema"]
    assert run.returncode == 0, run.stderr
    schema = json.loads(run.stdout)
    assert {"Project", "Service", "Environment", "ServiceOverlay"} <= set(schema["$defs"])


@pytest.mark.parametrize(("name", "example"), [
    ("validate help", "shipyard validate examples/shop"),
    ("render help", "shipyard render examples/shop --env prod"),
    ("schema help", "shipyard schema > shipyard.schema.json"),
])
def test_help_shows_examples(runs: dict[str, subprocess.CompletedProcess[str]], name: str, example: str) -> None:
    run = runs[name]
    assert run.returncode == 0, run.stderr
    assert "Example" in run.stdout and example in run.stdout
