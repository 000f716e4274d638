"""Whether an artifact directory is safe to snapshot: inside the project, with nothing in it that leads out.

Checked at validation, before anything reads the tree: a path or symlink that leaves the project would
let a config repository copy (and hash, and serve to an instance) any file of the machine; a FIFO, socket
or device would hang or leak the copy. Symlinks that stay inside the project are kept as links.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

IGNORED = {"__pycache__", ".git", ".venv", "node_modules"}  # never snapshotted, so never checked either
_SPECIAL = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}


def artifact_problem(root: Path, relative: str) -> str | None:
    """Why ROOT/RELATIVE cannot be an artifact directory, or None when it can."""
    path = Path(relative)
    if path.is_absolute() or ".." in path.parts:
        return f"must be a directory inside the project, got {relative!r}"
    project = root.resolve()
    directory = root / path
    if not _inside(directory.resolve(), project):
        return f"{relative!r} leaves the project (through a symlink to {directory.resolve()})"
    if not directory.is_dir():
        return f"no directory {relative!r} in the project"
    for current, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED)
        for name in sorted(files) + dirs:
            problem = _entry_problem(Path(current) / name, project, root)
            if problem:
                return problem
    return None


def _entry_problem(entry: Path, project: Path, root: Path) -> str | None:
    shown = entry.relative_to(root).as_posix()
    if entry.is_symlink():
        target = entry.resolve()
        if not _inside(target, project):
            return f"{shown} is a symlink that leaves the project (to {os.readlink(entry)})"
        if not target.exists():
            return None  # a dangling link inside the project: copied as it is, read by nobody
        kind = _SPECIAL.get(stat.S_IFMT(target.stat().st_mode))
        return f"{shown} is a symlink to {kind}: only regular files and directories can be snapshotted" if kind else None
    kind = _SPECIAL.get(stat.S_IFMT(entry.lstat().st_mode))
    return f"{shown} is {kind}: only regular files and directories can be snapshotted" if kind else None


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents
