"""The pipeline for real: stages as processes in bubblewrap, the component stage against the built artifact."""

from __future__ import annotations

import json
from pathlib import Path

from shipyard.artifacts.pipeline import junit_counts
from tests.controlplane import run_cli

UNIT_TEST = '''import unittest
class T(unittest.TestCase):
    def test_ok(self): self.assertTrue(True)
    def test_also(self): self.assertEqual(1, 1)
'''
COMPONENT_TEST = '''import os, sys, urllib.request
body = urllib.request.urlopen(os.environ["TARGET_URL"] + "/").read()
sys.exit(0 if body == b"v1" else 1)
'''
JUNIT = '''import os
open(os.environ["SHIPYARD_JUNIT_XML"], "w").write(
    '<testsuites><testsuite name="u" tests="2" failures="0" errors="0" skipped="1"/></testsuites>')
'''


def _pipeline(source: Path, unit: str) -> None:
    (source / "test_unit.py").write_text(UNIT_TEST)
    (source / "component_test.py").write_text(COMPONENT_TEST)
    (source / "junit.py").write_text(JUNIT)
    (source / "artifact.yaml").write_text(
        "apiVersion: shipyard/v1\nkind: Artifact\nname: hello\ncommand: [python3, app.py]\n"
        "health: {readiness: /}\n"
        "pipeline:\n  stages:\n"
        f"    - {{name: unit, command: '{unit}', timeout: 60s}}\n"
        "    - {name: component, command: [python3, component_test.py], timeout: 60s}\n"
        "    - {name: contract, command: [python3, junit.py]}\n")


def test_a_passing_pipeline_publishes_every_stage_result(source: Path, tmp_path: Path) -> None:
    _pipeline(source, "python3 -m unittest -q test_unit && touch wrote-here && ! touch /etc/shipyard-escape")
    env = {"SHIPYARD_STORE": str(tmp_path / "store")}
    result = run_cli("pipeline", "run", str(source), "--version", "1.0.0", env=env)
    assert "▶ unit" in result.stderr and "✓ component passed" in result.stderr
    assert result.stderr.index("✓ unit") < result.stderr.index("▶ build") < result.stderr.index("▶ component")
    assert (source / "wrote-here").exists()          # the source dir is writable, the host is not
    assert not Path("/etc/shipyard-escape").exists()
    record = json.loads(run_cli("artifacts", "inspect", "hello:1.0.0", "-o", "json", env=env).stdout)
    assert record["digest"] == result.stdout.strip().split("@")[1]
    assert [(s["stage"], s["result"]) for s in record["pipeline"]] == [
        ("unit", "passed"), ("contract", "passed"), ("component", "passed")]
    assert all(s["seconds"] >= 0 for s in record["pipeline"])
    assert record["pipeline"][1]["tests"] == {"tests": 2, "failures": 0, "errors": 0, "skipped": 1}


def test_a_failing_unit_stage_publishes_nothing(source: Path, tmp_path: Path) -> None:
    _pipeline(source, "python3 -c \"import sys; sys.exit(3)\"")
    env = {"SHIPYARD_STORE": str(tmp_path / "store")}
    result = run_cli("pipeline", "run", str(source), "--version", "1.0.0", env=env, check=False)
    assert result.returncode == 1
    assert "Error: pipeline failed at stage `unit`; nothing was published" in result.stderr
    assert "▶ build" not in result.stderr
    assert not (tmp_path / "store").exists() or run_cli("artifacts", "list", env=env).stdout.count("hello") == 0


def test_a_component_stage_tests_the_built_artifact_not_the_source(source: Path, tmp_path: Path) -> None:
    # app.py is left out of the artifact (but still in the source dir): the component stage must fail
    _pipeline(source, "true")
    (source / "artifact.yaml").write_text((source / "artifact.yaml").read_text() + "exclude: [app.py]\n")
    env = {"SHIPYARD_STORE": str(tmp_path / "store")}
    result = run_cli("pipeline", "run", str(source), "--version", "1.0.0", env=env, check=False)
    assert result.returncode == 1
    assert "the artifact exited" in result.stderr and "app.py" in result.stderr


def test_junit_counts(tmp_path: Path) -> None:
    path = tmp_path / "j.xml"
    assert junit_counts(path) is None
    path.write_text('<testsuite tests="5" failures="1" errors="0" skipped="2"/>')
    assert junit_counts(path) == {"tests": 5, "failures": 1, "errors": 0, "skipped": 2}
