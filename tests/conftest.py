"""Suite-wide isolation: tests run in parallel (pytest-xdist), so nothing machine-wide is shared between workers."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Mirrors of remote repositories default to ~/.cache/shipyard: give each worker its own.
    if "SHIPYARD_CACHE_DIR" not in os.environ:
        cache = tempfile.mkdtemp(prefix="shipyard-test-cache-")
        os.environ["SHIPYARD_CACHE_DIR"] = cache
        config.add_cleanup(lambda: shutil.rmtree(cache, ignore_errors=True))
    # The example shop runs `image:` artifacts from the default store ($SHIPYARD_HOME/artifacts): the run
    # publishes them into a home of its own (a project's `store:` and SHIPYARD_STORE still take precedence).
    if "SHIPYARD_HOME" not in os.environ:
        home = tempfile.mkdtemp(prefix="shipyard-test-home-")
        os.environ["SHIPYARD_HOME"] = home
        config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))
        from tests.shop import publish_shop
        publish_shop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With `--dist loadgroup` (make test) tests spread one by one over the workers, except that a file whose
    tests share a module- or class-scoped fixture (a Prometheus, the shop's apps…) stays on one worker, so
    that fixture starts once."""
    for item in items:
        definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        if any(d.scope in ("module", "class", "package") for defs in definitions.values() for d in defs):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


@pytest.fixture(autouse=True)
def private_capacity_ledger(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's control planes share a ledger of their own, never the machine's (tests run in parallel)."""
    path = tmp_path_factory.mktemp("ledger") / "ledger.json"
    monkeypatch.setenv("SHIPYARD_LEDGER", str(path))
    return path
