"""The example shop's artifacts for tests: its services run `image:` artifacts, so a store must hold them.

`pytest_configure` (tests/conftest.py) points SHIPYARD_HOME at a directory of the run's own and publishes
the three apps at the shop's version into its default store, so every command and control plane a test
starts finds them.
Tests that bump a service to another version publish that version first with `publish_shop`."""

from __future__ import annotations

from pathlib import Path

from shipyard.artifacts.build import build_image
from shipyard.artifacts.stores import default_location, open_store

REPO = Path(__file__).resolve().parents[1]
SHOP = REPO / "examples" / "shop"
APPS = ("catalog", "frontend", "orders")
SHOP_VERSION = "1.0.0"


def publish_shop(versions: tuple[str, ...] = (SHOP_VERSION,), store: str | None = None,
                 apps: tuple[str, ...] = APPS) -> dict[tuple[str, str], str]:
    """Build each app of the shop once per version and push it; returns {(name, version): digest}."""
    target = open_store(store or default_location())
    digests = {}
    for app in apps:
        for version in versions:
            descriptor, image = build_image(SHOP / "apps" / app, version)
            digests[(descriptor.name, version)] = target.push(descriptor.name, version, image)
    return digests


def use_paths(project: Path, apps: tuple[str, ...] = APPS) -> Path:
    """Turn a copy of the shop into its inner-loop form: each service runs `artifact.path: apps/NAME` (a snapshot
    of the directory, built on the fly) instead of the published image. For tests of path semantics."""
    for app in apps:
        spec = project / "services" / f"{app}.yaml"
        lines = spec.read_text(encoding="utf-8").splitlines(keepends=True)
        at = lines.index("artifact:\n")
        assert lines[at + 1].startswith(f"  image: {app}"), f"{spec}: has the example changed?"
        lines[at + 1:at + 3] = [f"  path: apps/{app}\n", "  command: [python3, app.py]\n"]   # the same lines
        spec.write_text("".join(lines), encoding="utf-8")
    return project
