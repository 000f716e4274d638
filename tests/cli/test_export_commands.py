"""`shipyard export kubernetes` through the real CLI: refusals are one line and exit 1, nothing half-written."""

from __future__ import annotations

import shutil

from tests.controlplane import run_cli
from tests.export.conftest import SHOP


def test_a_directory_artifact_is_refused_with_what_to_do(tmp_path):
    result = run_cli("export", "kubernetes", str(SHOP), "-o", str(tmp_path / "out"), "--registry", "r.example.com/s",
                     check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "catalog: `artifact.path` is a directory" in result.stderr and "shipyard build" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_without_a_registry_the_export_says_where_images_must_come_from(tmp_path):
    result = run_cli("export", "kubernetes", str(SHOP), "-o", str(tmp_path / "out"), check=False,
                     env={"SHIPYARD_EXPORT_REGISTRY": ""})
    assert result.returncode == 1 and "--registry" in result.stderr and "Traceback" not in result.stderr


def test_an_invalid_project_is_reported_with_file_and_line(tmp_path):
    project = tmp_path / "shop"
    shutil.copytree(SHOP, project)
    path = project / "environments" / "prod.yaml"
    path.write_text(path.read_text().replace("replicas: 3\n    endpoint: {port: 9101}", "replicas: many\n    endpoint: {port: 9101}"))
    result = run_cli("export", "kubernetes", str(project), "-o", str(tmp_path / "out"), "--registry", "r.example.com/s",
                     check=False)
    assert result.returncode == 1 and "environments/prod.yaml:" in result.stderr and "replicas" in result.stderr


def test_help_shows_examples():
    result = run_cli("export", "kubernetes", "--help")
    assert "Examples:" in result.stdout and "--strict" in result.stdout
