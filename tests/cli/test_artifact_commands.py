from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.artifacts.sources import source  # noqa: F401 - the fixture
from tests.artifacts.registry import running_registry
from tests.controlplane import run_cli


def test_build_list_inspect_in_the_embedded_store(source: Path, tmp_path: Path) -> None:  # noqa: F811
    env = {"SHIPYARD_STORE": str(tmp_path / "store")}
    built = run_cli("build", str(source), "--version", "1.0.0", env=env)
    name, _, digest = built.stdout.strip().partition("@")
    assert name == "hello:1.0.0" and digest.startswith("sha256:")
    again = run_cli("build", str(source), "--version", "1.0.0", env=env)
    assert again.stdout == built.stdout
    listed = json.loads(run_cli("artifacts", "list", "-o", "json", env=env).stdout)
    assert [(r["name"], r["version"], r["digest"]) for r in listed] == [("hello", "1.0.0", digest)]
    record = json.loads(run_cli("artifacts", "inspect", "hello:1.0.0", "-o", "json", env=env).stdout)
    head = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert record["source"] == {"url": record["source"]["url"], "revision": head.strip(), "dirty": False}
    assert record["digest"] == digest and record["pipeline"] == [] and record["created"]
    table = run_cli("artifacts", "inspect", "hello:1.0.0", env=env).stdout
    assert digest in table


def test_publishing_a_version_again_with_other_code_warns_that_the_tag_moved(source: Path, tmp_path: Path) -> None:  # noqa: F811
    env = {"SHIPYARD_STORE": str(tmp_path / "store")}
    first = run_cli("build", str(source), "--version", "1.0.0", env=env).stdout.strip().split("@")[1]
    assert "moved" not in run_cli("build", str(source), "--version", "1.0.0", env=env).stderr  # same bytes: no move
    (source / "app.py").write_text((source / "app.py").read_text() + "\n# changed\n")
    again = run_cli("build", str(source), "--version", "1.0.0", env=env)
    second = again.stdout.strip().split("@")[1]
    assert second != first
    assert f"warning: hello:1.0.0 moved from {first[:19]} to {second[:19]}" in again.stderr


def test_unknown_version_and_bad_reference(source: Path, tmp_path: Path) -> None:  # noqa: F811
    env = {"SHIPYARD_STORE": str(tmp_path / "store")}
    run_cli("build", str(source), "--version", "1.0.0", env=env)
    missing = run_cli("artifacts", "inspect", "hello:2.0.0", env=env, check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"Error: hello:2.0.0 is not in the store {tmp_path / 'store'} (versions: 1.0.0)"
    assert run_cli("artifacts", "inspect", "hello", env=env, check=False).returncode == 2
    no_descriptor = run_cli("build", str(tmp_path), "--version", "1", env=env, check=False)
    assert no_descriptor.returncode == 1 and "artifact.yaml: not found" in no_descriptor.stderr
    assert "Traceback" not in no_descriptor.stderr


def test_build_to_a_registry(source: Path, tmp_path: Path) -> None:  # noqa: F811
    with running_registry(tmp_path / "reg") as registry:
        store = f"{registry.host}/shop"
        digest = run_cli("build", str(source), "--version", "2.0.0", "--store", store).stdout.strip().split("@")[1]
        listed = json.loads(run_cli("artifacts", "list", "hello", "--store", store, "-o", "json").stdout)
        assert [(r["version"], r["digest"]) for r in listed] == [("2.0.0", digest)]


def test_the_nearest_projects_store_is_used(source: Path, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "shipyard.yaml").write_text("apiVersion: shipyard/v1\nkind: Project\nname: p\n"
                                            "environments: [dev]\nstore: artifacts\n")
    env = {"SHIPYARD_STORE": ""}
    digest = run_cli("build", str(source), "--version", "3.0.0", env=env).stdout.strip().split("@")[1]
    index = json.loads((tmp_path / "artifacts" / "hello" / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [digest]
