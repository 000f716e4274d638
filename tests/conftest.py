"""Settings every test shares."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def private_capacity_ledger(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's control planes share a ledger of their own, never the machine's (tests run in parallel)."""
    path = tmp_path_factory.mktemp("ledger") / "ledger.json"
    monkeypatch.setenv("SHIPYARD_LEDGER", str(path))
    return path
