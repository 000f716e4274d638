"""Fixtures of the spec tests: a writable copy of the example shop, to break one thing at a time."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shipyard.errors import Problem
from shipyard.spec.render import check
from tests.shop import use_paths

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shop"


class ShopCopy:
    """A copy of examples/shop in a temporary directory, with small editing helpers."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def edit(self, file: str, old: str, new: str) -> None:
        """Replace the one occurrence of `old` in `file` (fails loudly if the example changed)."""
        path = self.root / file
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{file}: expected {old!r} exactly once; has the example changed?"
        path.write_text(text.replace(old, new), encoding="utf-8")

    def write(self, file: str, text: str) -> None:
        path = self.root / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def read(self, file: str) -> str:
        return (self.root / file).read_text(encoding="utf-8")

    def remove(self, file: str) -> None:
        (self.root / file).unlink()

    def problems(self, environment: str | None = None) -> list[Problem]:
        return check(self.root, environment)


def copy_example(target: Path, paths: bool = False) -> Path:
    """A copy of the shop; with PATHS its services run their source directories (the inner loop), not images."""
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return use_paths(target) if paths else target


@pytest.fixture
def shop(tmp_path: Path) -> ShopCopy:
    return ShopCopy(copy_example(tmp_path / "shop"))


@pytest.fixture
def shop_paths(tmp_path: Path) -> ShopCopy:
    """The shop in its inner-loop form: services run `artifact.path` snapshots of apps/*."""
    return ShopCopy(copy_example(tmp_path / "shop", paths=True))
