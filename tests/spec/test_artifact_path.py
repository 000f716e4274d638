"""Artifact paths: nothing in an artifact may lead out of the project or be other than a file, dir or link."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from shipyard.engine.snapshot import ensure_snapshot, tree_hash
from shipyard.spec.render import check

from .conftest import ShopCopy

CATALOG = "services/catalog.yaml"
ARTIFACT_LINE = 6  # `path: apps/catalog` in the inner-loop form of the example's catalog.yaml


@pytest.fixture
def shop(shop_paths: ShopCopy) -> ShopCopy:
    """Path semantics need the shop's inner-loop form (services run apps/* directly)."""
    return shop_paths


def only_problem(shop: ShopCopy) -> str:
    [problem] = [p for p in check(shop.root, "dev")]
    assert (problem.file, problem.line, problem.field) == (CATALOG, ARTIFACT_LINE, "artifact.path")
    return problem.message


def test_a_symlink_out_of_the_project_is_a_validation_error(shop: ShopCopy) -> None:
    (shop.root / "apps/catalog/passwd").symlink_to("/etc/passwd")
    assert only_problem(shop) == "apps/catalog/passwd is a symlink that leaves the project (to /etc/passwd)"


def test_a_relative_symlink_climbing_out_is_an_error_and_one_inside_is_fine(shop: ShopCopy) -> None:
    link = shop.root / "apps/catalog/shared"
    link.symlink_to("../../services")
    assert check(shop.root, "dev") == []
    link.unlink()
    link.symlink_to("../../../")
    assert "apps/catalog/shared is a symlink that leaves the project" in only_problem(shop)


def test_an_artifact_path_that_is_a_symlink_out_of_the_project_is_an_error(shop: ShopCopy, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.rename(shop.root / "apps/catalog", tmp_path / "moved")
    (shop.root / "apps/catalog").symlink_to(outside)
    assert only_problem(shop).startswith("'apps/catalog' leaves the project (through a symlink to ")


@pytest.mark.parametrize("kind", ["fifo", "socket", "device", "link to a fifo"])
def test_special_files_are_validation_errors_and_never_read(shop: ShopCopy, kind: str, tmp_path: Path) -> None:
    target = shop.root / "apps/catalog/special"
    if kind in ("fifo", "link to a fifo"):
        fifo = shop.root / "fifo" if kind == "link to a fifo" else target
        os.mkfifo(fifo)
        if kind == "link to a fifo":
            target.symlink_to(fifo)
        expected = "a symlink to a FIFO" if kind == "link to a fifo" else "a FIFO"
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(target))
        server.close()
        expected = "a socket"
    else:
        target.symlink_to("/dev/null")
        expected = "a symlink that leaves the project"
    started = time.monotonic()
    assert f"apps/catalog/special is {expected}" in only_problem(shop)
    # snapshotting and hashing skip it too (a FIFO read would block for ever)
    snapshot = ensure_snapshot(shop.root / "apps/catalog", tmp_path / "snapshots", tree_hash(shop.root / "apps/catalog"))
    assert time.monotonic() - started < 5
    leftover = snapshot / "special"
    assert not leftover.exists() or leftover.is_symlink()
