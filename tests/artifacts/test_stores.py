"""Choosing a store (pure precedence rules, and reading the nearest shipyard.yaml)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from shipyard.artifacts.build import build_image
from shipyard.artifacts.layout import LayoutStore
from shipyard.artifacts.registry import RegistryStore
from shipyard.artifacts.stores import is_registry
from shipyard.artifacts.stores import (cli_store_location, nearest_project_store, open_store, resolve_as_of,
                                      store_location)
from tests.artifacts.sources import source  # noqa: F401 - the fixture


@pytest.mark.parametrize(("location", "registry"), [
    ("127.0.0.1:5000/shop", True), ("registry.example.com/team/shop", True), ("localhost:5000/x", True),
    ("http://registry.internal/shop", True), ("/srv/artifacts", False), ("./my.dir/x", False),
    ("artifacts", False), ("~/.shipyard/artifacts", False), ("store/sub", False),
])
def test_is_registry(location: str, registry: bool) -> None:
    assert is_registry(location) is registry


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIPYARD_STORE", raising=False)
    monkeypatch.delenv("SHIPYARD_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert store_location() == str(tmp_path / "home" / ".shipyard" / "artifacts")
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "shipyard-home"))
    assert store_location() == str(tmp_path / "shipyard-home" / "artifacts")
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


def test_the_embedded_store_answers_what_a_version_pointed_at_then(source: Path, tmp_path: Path) -> None:  # noqa: F811
    store = LayoutStore(tmp_path / "store")
    _, image = build_image(source, "1.0.0")
    first = store.push("hello", "1.0.0", image)
    between = datetime.now(timezone.utc)
    (source / "app.py").write_text("print('changed')\n")
    _, changed = build_image(source, "1.0.0")
    second = store.push("hello", "1.0.0", changed)
    with (tmp_path / "store" / "hello" / "tags.jsonl").open("a") as log:
        log.write('{"version": "1.0.0", "digest": "sha256:torn')  # a crash in the middle of a line
    assert second != first and store.resolve("hello", "1.0.0") == second
    assert resolve_as_of(store, "hello", "1.0.0", between) == first
    assert resolve_as_of(store, "hello", "1.0.0", datetime.now(timezone.utc)) == second
    assert resolve_as_of(store, "hello", "1.0.0", None) == second
    assert store.digest_at("hello", "1.0.0", between - timedelta(days=1)) is None   # before it existed
