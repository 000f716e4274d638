"""Clean snapshots of followed commits in the state dir, and putting back what someone changed in them.

`<state>/revisions/<sha>/` holds the project as the commit has it, exported from the mirror (never a
working tree); the engine copies each artifact from there into `<state>/snapshots/<hash>/`. Both are
verified by content hash before a revision is (re)applied, and restored when they differ.
"""

from __future__ import annotations

import filecmp
import os
import shutil
from pathlib import Path

from shipyard.engine.desired import DesiredState
from shipyard.engine.snapshot import IGNORED, tree_hash
from shipyard.source.git import Mirror

REVISIONS = "revisions"
KEEP_REVISIONS = 5  # snapshots of older commits are removed; the applied one is always kept


def revision_dir(state_dir: Path, sha: str) -> Path:
    return state_dir / REVISIONS / sha


def export_revision(mirror: Mirror, sha: str, subdir: str, state_dir: Path) -> tuple[Path, str]:
    """The project at commit SHA as a clean snapshot, and its content hash; an altered one is exported again."""
    dest = revision_dir(state_dir, sha)
    mirror.export(sha, subdir or None, dest)
    return dest, tree_hash(dest)


def verified_revision(mirror: Mirror, sha: str, subdir: str, state_dir: Path,
                      expected: str | None) -> tuple[Path, str, bool]:
    """The snapshot of SHA if it still hashes to EXPECTED, else exported afresh (True: it was restored)."""
    dest = revision_dir(state_dir, sha)
    if expected is not None and dest.is_dir() and tree_hash(dest) == expected:
        return dest, expected, False
    existed = dest.exists()
    remove_revision(dest)
    path, content = export_revision(mirror, sha, subdir, state_dir)
    return path, content, existed


def changed_artifacts(state_dir: Path, desired: DesiredState) -> list[str]:
    """The services whose artifact snapshot no longer matches its content hash (edited, added or deleted files)."""
    changed = []
    for name, service in sorted(desired.services.items()):
        if service.release.digest:
            continue  # an artifact image's root: verified by digest when pulled, not a copy of the repository
        target = state_dir / "snapshots" / service.release.snapshot
        if not target.is_dir() or tree_hash(target) != service.release.snapshot:
            changed.append(name)
    return changed


def restore_artifacts(state_dir: Path, desired: DesiredState, root: Path, services: list[str]) -> None:
    """Put SERVICES' artifact snapshots back as ROOT (the revision's snapshot) has them, file by file in place.

    In place, because running instances have the directory mounted: a replaced directory would not reach them.
    """
    for name in services:
        release = desired.services[name].release
        if release.digest or desired.specs[name].artifact.path is None:
            continue
        source = root / desired.specs[name].artifact.path
        target = state_dir / "snapshots" / release.snapshot
        target.mkdir(parents=True, exist_ok=True)
        _sync_tree(source, target)


def prune_revisions(state_dir: Path, keep: set[str]) -> None:
    """Remove the snapshots of all but the KEEP_REVISIONS newest commits, never one named in KEEP."""
    root = state_dir / REVISIONS
    if not root.is_dir():
        return
    snapshots = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                       key=lambda p: p.stat().st_mtime, reverse=True)
    for old in snapshots[KEEP_REVISIONS:]:
        if old.name not in keep:
            remove_revision(old)


def remove_revision(dest: Path) -> None:
    """Delete a revision's snapshot and the export's marker beside it."""
    shutil.rmtree(dest, ignore_errors=True)
    (dest.parent / f".{dest.name}.source").unlink(missing_ok=True)  # the export's marker


def _sync_tree(source: Path, target: Path) -> None:
    wanted = _relative_files(source)
    for relative in sorted(_relative_files(target) - wanted, reverse=True):
        path = target / relative
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    for relative in sorted(wanted):
        src, dst = source / relative, target / relative
        if src.is_symlink():
            if not dst.is_symlink() or os.readlink(dst) != os.readlink(src):
                _clear(dst)
                dst.symlink_to(os.readlink(src))
        elif src.is_dir():
            if dst.is_symlink() or (dst.exists() and not dst.is_dir()):
                _clear(dst)
            dst.mkdir(exist_ok=True)
        else:
            if dst.is_symlink() or dst.is_dir():
                _clear(dst)
            if not dst.is_file() or not filecmp.cmp(src, dst, shallow=False):
                if dst.exists():
                    dst.chmod(dst.stat().st_mode | 0o200)
                shutil.copyfile(src, dst)  # the same inode when it exists: mounts of the directory see it
            shutil.copymode(src, dst)


def _clear(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _relative_files(root: Path) -> set[Path]:
    """Every file, directory and symlink below ROOT (relative), skipping what tree_hash ignores."""
    found: set[Path] = set()
    for current, dirs, files in os.walk(root):
        base = Path(current)
        dirs[:] = [d for d in dirs if d not in IGNORED]
        for name in [*dirs, *files]:
            found.add((base / name).relative_to(root))
    return found
