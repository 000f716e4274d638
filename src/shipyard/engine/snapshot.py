"""Content-addressed snapshots of artifact directories, so a running release never changes under it."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

from shipyard.spec.artifact_path import IGNORED  # what validation does not check is not copied either


def tree_hash(directory: Path) -> str:
    """A hash of every file's relative path, exec bit and content (symlinks by their target)."""
    digest = hashlib.sha256()
    for path in _files(directory):
        relative = path.relative_to(directory).as_posix()
        if path.is_symlink():
            digest.update(f"L {relative} {os.readlink(path)}\n".encode())
            continue
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode):
            continue  # a FIFO, socket or device: never read (validation refuses them in artifacts)
        mode = "x" if info.st_mode & stat.S_IXUSR else "-"
        digest.update(f"F {relative} {mode} ".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def ensure_snapshot(source: Path, snapshots: Path, content_hash: str) -> Path:
    """Copy `source` to `snapshots/<hash>` once; the copy is made read-only and never modified.

    Using a snapshot again marks it recent (its mtime), so garbage collection (engine/gc.py) keeps it and its
    release while a desired state that names it is being installed.
    """
    target = snapshots / content_hash
    if target.is_dir():
        try:
            os.utime(target)
        except OSError:
            pass  # only protection from an early collection; the snapshot itself is fine
        return target
    snapshots.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{content_hash}-", dir=snapshots))
    try:
        shutil.copytree(source, staging / "tree", symlinks=True, ignore=_not_copied, dirs_exist_ok=False)
        os.rename(staging / "tree", target)  # atomic: a snapshot is there completely or not at all
    except FileExistsError:
        pass  # another pass made it meanwhile
    except OSError as exc:
        if not target.is_dir():
            raise
        del exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _not_copied(directory: str, names: list[str]) -> set[str]:
    """What a snapshot leaves out: the IGNORED dirs, and anything but regular files, dirs and symlinks."""
    skipped = set()
    for name in names:
        if name in IGNORED:
            skipped.add(name)
            continue
        mode = os.lstat(os.path.join(directory, name)).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
            skipped.add(name)
    return skipped


def _files(directory: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED)
        for name in sorted(files):
            found.append(Path(root) / name)
        for name in dirs:
            if (Path(root) / name).is_symlink():
                found.append(Path(root) / name)
    return found
