"""Choosing a store (pure precedence rules, and reading the nearest shipyard.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.artifacts.layout import LayoutStore
from shipyard.artifacts.registry import RegistryStore, is_registry
from shipyard.artifacts.stores import cli_store_location, nearest_project_store, open_store, store_location


@pytest.mark.parametrize(("location", "registry"), [
    ("127.0.0.1:5000/shop", True), ("registry.example.com/team/shop", True), ("localhost:5000/x", True),
    ("http://registry.internal/shop", True), ("/srv/artifacts", False), ("./my.dir/x", False),
    ("artifacts", False), ("~/.shipyard/artifacts", False), ("store/sub", False),
])
def test_is_registry(location: str, registry: bool) -> None:
    assert is_registry(location) is registry


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIPYARD_STORE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert store_location() == str(tmp_path / "home" / ".shipyard" / "artifacts")
    assert store_location(None, "arts", tmp_path) == str(tmp_path / "arts")
    assert store_location(None, "127.0.0.1:5000/p", tmp_path) == "127.0.0.1:5000/p"
    monkeypatch.setenv("SHIPYARD_STORE", "/env")
    assert store_location(None, "arts", tmp_path) == "/env"
    assert store_location("/flag", "arts", tmp_path) == "/flag"
    assert isinstance(open_store("/flag"), LayoutStore)
    assert isinstance(open_store("127.0.0.1:5000/p"), RegistryStore)


def test_the_nearest_project_names_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIPYARD_STORE", raising=False)
    (tmp_path / "apps" / "x").mkdir(parents=True)
    assert nearest_project_store(tmp_path / "apps" / "x") == (None, None)
    (tmp_path / "shipyard.yaml").write_text("apiVersion: shipyard/v1\nkind: Project\nname: p\n"
                                            "environments: [dev]\nstore: arts\n")
    assert nearest_project_store(tmp_path / "apps" / "x") == ("arts", tmp_path)
    assert cli_store_location(None, tmp_path / "apps" / "x") == str(tmp_path / "arts")
    assert cli_store_location("/flag", tmp_path / "apps" / "x") == "/flag"
