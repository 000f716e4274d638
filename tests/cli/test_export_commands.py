"""`shipyard export kubernetes` through the real CLI: refusals are one line and exit 1, nothing half-written."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from shipyard.export.yamltext import load_documents
from tests.controlplane import run_cli
from tests.export.conftest import CRD_DIR, SHOP
from tests.shop import use_paths


def test_a_directory_artifact_is_refused_with_what_to_do(tmp_path):
    project = use_paths(shutil.copytree(SHOP, tmp_path / "shop"))
    result = run_cli("export", "kubernetes", str(project), "-o", str(tmp_path / "out"), "--registry",
                     "r.example.com/s", check=False)
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


def shop_on_images(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the example shop and the store holding its artifacts (published by tests/conftest.py)."""
    return Path(shutil.copytree(SHOP, tmp_path / "shop")), Path(os.environ["SHIPYARD_STORE"])


def test_the_example_shop_exports_with_digests_and_strict_refuses_gaps(tmp_path):
    project, store = SHOP, Path(os.environ["SHIPYARD_STORE"])
    out = tmp_path / "out"
    strict = run_cli("export", "kubernetes", str(project), "-o", str(out), "--registry", "r.example.com/shop",
                     "--strict", check=False)
    assert strict.returncode == 1 and "nothing written (--strict)" in strict.stderr and not out.exists()
    assert "gap: catalog (prod): strategy.canary.analysis[2] (compare errorRate" in strict.stderr

    crds = ["--crds", str(CRD_DIR)] if CRD_DIR.is_dir() else []
    result = run_cli("export", "kubernetes", str(project), "-o", str(out), "--registry", "r.example.com/shop", *crds)
    assert "gap: " in result.stderr and f"listed in {out / 'GAPS.md'}" in result.stderr
    digest = json.loads(run_cli("artifacts", "inspect", "catalog:1.0.0", "--store", str(store), "-o", "json").stdout)["digest"]
    deployment = load_documents((out / "apps/base/catalog/deployment.yaml").read_text())[0]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == f"r.example.com/shop/catalog:1.0.0@{digest}"
    images = load_documents((out / "apps/prod/kustomization.yaml").read_text())[0]["images"]
    assert {"name": "r.example.com/shop/catalog", "newTag": "1.0.0", "digest": digest} in images
    assert "compare errorRate" in (out / "GAPS.md").read_text()


def test_a_non_empty_directory_that_is_not_an_export_is_left_alone(tmp_path):
    project, _ = shop_on_images(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    result = run_cli("export", "kubernetes", str(project), "-o", str(tmp_path / "out"), "--registry", "r.example.com/s",
                     check=False)
    assert result.returncode == 1 and "not empty" in result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["notes.txt"]
