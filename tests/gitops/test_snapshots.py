"""Snapshots of followed commits: exported clean, verified by hash, and put back in place when edited."""

from __future__ import annotations

import os
from pathlib import Path

from shipyard.engine.snapshot import tree_hash
from shipyard.gitops.snapshots import _sync_tree, export_revision, prune_revisions, revision_dir, verified_revision
from shipyard.source.git import Mirror
from tests.source.conftest import Origin


def test_export_then_verify_restores_an_edited_snapshot(origin: Origin, tmp_path: Path):
    sha = origin.commit("one", {"deploy/shipyard.yaml": "name: a\n", "README": "x\n"}, "2024-01-01T12:00:00+00:00")
    mirror = Mirror(tmp_path / "cache", origin.path)
    mirror.fetch("main")
    state = tmp_path / "state"
    root, content = export_revision(mirror, sha, "deploy", state)
    assert root == revision_dir(state, sha) and sorted(os.listdir(root)) == ["shipyard.yaml"]
    assert verified_revision(mirror, sha, "deploy", state, content) == (root, content, False)
    (root / "shipyard.yaml").write_text("name: changed by hand\n")
    (root / "extra").write_text("x")
    again, again_content, restored = verified_revision(mirror, sha, "deploy", state, content)
    assert restored and again_content == content and (again / "shipyard.yaml").read_text() == "name: a\n"
    assert not (again / "extra").exists()


def test_sync_tree_puts_files_back_in_place(tmp_path: Path):
    source, target = tmp_path / "source", tmp_path / "target"
    (source / "lib").mkdir(parents=True)
    (source / "app.py").write_text("print('hi')\n")
    (source / "lib" / "util.py").write_text("x = 1\n")
    (source / "run").write_text("#!/bin/sh\n")
    (source / "run").chmod(0o755)
    (source / "link").symlink_to("app.py")
    target.mkdir()
    (target / "app.py").write_text("print('tampered')\n")
    inode = (target / "app.py").stat().st_ino
    (target / "stray.txt").write_text("x")
    (target / "lib").write_text("a file where a directory belongs")
    _sync_tree(source, target)
    assert tree_hash(target) == tree_hash(source)
    assert (target / "app.py").stat().st_ino == inode  # in place: a mount of the directory sees it
    assert not (target / "stray.txt").exists() and os.readlink(target / "link") == "app.py"


def test_prune_keeps_the_newest_and_the_applied(tmp_path: Path):
    root = tmp_path / "revisions"
    for n in range(8):
        (root / f"r{n}").mkdir(parents=True)
        (root / f".r{n}.source").write_text("x")
        os.utime(root / f"r{n}", (n, n))
    prune_revisions(tmp_path, keep={"r0"})
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["r0", "r3", "r4", "r5", "r6", "r7"]
    assert not (root / ".r1.source").exists()
