"""Suite-wide isolation: tests run in parallel (pytest-xdist), so nothing machine-wide is shared between workers."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Mirrors of remote repositories default to ~/.cache/shipyard: give each worker its own.
    if "SHIPYARD_CACHE_DIR" not in os.environ:
        cache = tempfile.mkdtemp(prefix="shipyard-test-cache-")
        os.environ["SHIPYARD_CACHE_DIR"] = cache
        config.add_cleanup(lambda: shutil.rmtree(cache, ignore_errors=True))
