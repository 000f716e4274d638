"""`shipyard export kubernetes` through the real CLI: refusals are one line and exit 1, nothing half-written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from shipyard.artifacts.stores import default_location
from shipyard.export.yamltext import load_documents
from shipyard.secrets.files import write_secrets
from tests.controlplane import run_cli
from tests.export.conftest import CRD_DIR, SHOP
from tests.projects import probe_service, write_project
from tests.secrets.conftest import NOW, Keyring, make_keyring
from tests.shop import use_paths


def test_a_directory_artifact_is_refused_with_what_to_do(tmp_path):
    project = use_paths(shutil.copytree(SHOP, tmp_path / "shop"))
    result = run_cli("export", "kubernetes", str(project), "-o", str(tmp_path / "out"), "--registry",
                     "r.example.com/s", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "catalog: `artifact.path` is a directory" in result.stderr and "shipyard build" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_without_a_registry_the_shop_exports_bare_names_and_a_gap_says_where_images_must_come_from(tmp_path):
    out = tmp_path / "out"
    result = run_cli("export", "kubernetes", str(SHOP), "-o", str(out), env={"SHIPYARD_EXPORT_REGISTRY": ""})
    digest = json.loads(run_cli("artifacts", "inspect", "orders:1.0.0", "-o", "json").stdout)["digest"]
    deployment = load_documents((out / "apps/base/orders/deployment.yaml").read_text())[0]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == f"orders:1.0.0@{digest}"
    assert "gap: project (all): images without --registry" in result.stderr and "--registry" in (out / "GAPS.md").read_text()
    strict = run_cli("export", "kubernetes", str(SHOP), "-o", str(tmp_path / "strict"), "--strict", check=False,
                     env={"SHIPYARD_EXPORT_REGISTRY": ""})
    assert strict.returncode == 1 and "images without --registry" in strict.stderr and not (tmp_path / "strict").exists()


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
    return Path(shutil.copytree(SHOP, tmp_path / "shop")), Path(default_location())


def test_the_example_shop_exports_with_digests_and_strict_refuses_gaps(tmp_path):
    project, store = SHOP, Path(default_location())
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


SECRET = "sk_live_cli-export-value"


def secret_project(tmp_path: Path) -> tuple[Path, Keyring, Keyring]:
    """One service on a built image whose env takes a secret; the environment's key and the cluster's."""
    project, store = tmp_path / "p", tmp_path / "store"
    run_cli("build", str(SHOP / "apps" / "catalog"), "--version", "1.0.0", "--store", str(store))
    write_project(project, [probe_service("catalog", artifact={"image": "catalog"},
                                          env={"MODE": "live", "API_KEY": {"secret": "payments.api_key"}})])
    with (project / "shipyard.yaml").open("a") as handle:
        handle.write(f"store: {store}\n")
    env_key, cluster = make_keyring(tmp_path / "env-key"), make_keyring(tmp_path / "cluster-key")
    write_secrets(project, "dev", {"payments": {"api_key": SECRET}}, env_key.identities, NOW,
                  recipients=[env_key.public])
    return project, env_key, cluster


def test_secrets_are_exported_for_the_clusters_key_never_in_clear_and_the_same_bytes_twice(tmp_path):
    project, env_key, cluster = secret_project(tmp_path)
    out, env = tmp_path / "out", {"SHIPYARD_AGE_KEY_FILE": str(env_key.key_file)}
    refused = run_cli("export", "kubernetes", str(project), "-o", str(out), "--registry", "r.example.com/s",
                      check=False, env=env)
    assert refused.returncode == 1 and not out.exists() and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("Error: environment dev: its services use secrets (payments.api_key)")
    assert "--age-recipient" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1

    args = ("export", "kubernetes", str(project), "-o", str(out), "--registry", "r.example.com/s",
            "--age-recipient", f"dev={cluster.public}")
    keyless = run_cli(*args, check=False, cwd=tmp_path, env={"SHIPYARD_AGE_KEY_FILE": ""})
    assert keyless.returncode == 1 and not out.exists() and "Traceback" not in keyless.stderr
    assert "no age key at .shipyard/dev/age.key" in keyless.stderr   # the environment's key decrypts secrets/dev.yaml
    crds = ["--crds", str(CRD_DIR)] if CRD_DIR.is_dir() else []
    first = run_cli(*args, *crds, env=env)
    assert SECRET not in first.stdout + first.stderr
    files = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert not [name for name, data in files.items() if SECRET.encode() in data]
    decrypted = cluster.sops("decrypt", "apps/dev/secrets.yaml", cwd=out).stdout
    assert load_documents(decrypted)[0]["stringData"] == {"payments.api_key": SECRET}

    second = run_cli(*args, env=env)
    assert SECRET not in second.stdout + second.stderr
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == files


def test_an_age_recipient_for_an_unknown_environment_is_a_usage_error(tmp_path):
    project, _, cluster = secret_project(tmp_path)
    result = run_cli("export", "kubernetes", str(project), "-o", str(tmp_path / "out"), "--registry", "r.example.com/s",
                     "--age-recipient", f"prod={cluster.public}", check=False)
    assert result.returncode == 2 and "no environment prod" in result.stderr
