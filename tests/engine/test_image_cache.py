"""Pinning and garbage collection of artifact images in an environment (a real state store and real files)."""

from __future__ import annotations

from pathlib import Path

from shipyard.artifacts.build import build_image
from shipyard.artifacts.layout import LayoutStore
from shipyard.engine.images import collect_garbage, pinned_digest, prepare_image
from shipyard.engine.releases import build_release
from shipyard.spec.models import Service
from shipyard.state.store import Store
from tests.artifacts.sources import source  # noqa: F401 - the fixture


def _service(version: str) -> Service:
    return Service.model_validate({"apiVersion": "shipyard/v1", "kind": "Service", "name": "hello",
                                   "version": version, "artifact": {"image": "hello"}})


def test_a_version_keeps_its_first_digest_and_old_roots_are_collected(source: Path, tmp_path: Path) -> None:  # noqa: F811
    artifacts, state_dir = LayoutStore(tmp_path / "store"), tmp_path / "state"
    state_dir.mkdir()
    state = Store(state_dir / "state.db")
    releases = {}
    for version in ("1.0.0", "2.0.0"):
        (source / "app.py").write_text(f"print({version!r})\n")
        _, image = build_image(source, version)
        artifacts.push("hello", version, image)
        digest = pinned_digest(state, artifacts.location, "hello", version, artifacts.resolve("hello", version))
        snapshot, run = prepare_image(artifacts, "hello", digest, state_dir)
        assert (state_dir / "snapshots" / snapshot / "app.py").read_text() == f"print({version!r})\n"
        assert run.command == ("python3", "app.py") and not run.rootfs
        releases[version] = build_release(_service(version), snapshot, {}, run)
        state.save_release(releases[version])
    # re-tagging 1.0.0 does not move what this environment resolves it to
    (source / "app.py").write_text("print('re-tagged')\n")
    artifacts.push("hello", "1.0.0", build_image(source, "1.0.0")[1])
    assert pinned_digest(state, artifacts.location, "hello", "1.0.0",
                         artifacts.resolve("hello", "1.0.0")) == releases["1.0.0"].digest
    # with only 2.0.0 kept, 1.0.0's root and blobs go, 2.0.0's stay
    removed = collect_garbage(state, state_dir, [releases["2.0.0"]], keep_per_service=1)
    root_one = state_dir / "snapshots" / releases["1.0.0"].snapshot.split("/")[0]
    root_two = state_dir / "snapshots" / releases["2.0.0"].snapshot.split("/")[0]
    assert str(root_one) in removed and not root_one.exists() and root_two.is_dir()
    assert (state_dir / "artifacts" / "blobs" / releases["2.0.0"].digest.replace(":", "/")).is_file()
    assert not (state_dir / "artifacts" / "blobs" / releases["1.0.0"].digest.replace(":", "/")).exists()
    assert collect_garbage(state, state_dir, [releases["2.0.0"]], keep_per_service=1) == []
