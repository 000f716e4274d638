"""Writing an export to a directory: only into an empty one or over a previous export (never over other files)."""

from __future__ import annotations

import os
from pathlib import Path

from shipyard.export.images import ExportError

MANIFEST = ".shipyard-export"  # the files the previous export wrote, so a new one can replace exactly those


def write_export(directory: Path, files: dict[str, str]) -> None:
    if directory.exists() and not directory.is_dir():
        raise ExportError(f"{directory} exists and is not a directory")
    previous = _previous(directory)
    for relative in previous - set(files):
        (directory / relative).unlink(missing_ok=True)
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(text)
        os.replace(temporary, path)
    (directory / MANIFEST).write_text("".join(f"{name}\n" for name in sorted(files)))
    _remove_empty_dirs(directory)


def previous_file(directory: Path, relative: str) -> str | None:
    """The text of RELATIVE as an earlier export wrote it into DIRECTORY; None if it wrote no such file."""
    manifest = directory / MANIFEST
    if not manifest.is_file() or relative not in manifest.read_text().splitlines():
        return None
    path = directory / relative
    return path.read_text() if path.is_file() else None


def _previous(directory: Path) -> set[str]:
    if not directory.exists() or not any(directory.iterdir()):
        return set()
    manifest = directory / MANIFEST
    if not manifest.is_file():
        raise ExportError(f"{directory} is not empty and holds no earlier export: choose an empty or new directory")
    return {line for line in manifest.read_text().splitlines() if line and ".." not in Path(line).parts}


def _remove_empty_dirs(directory: Path) -> None:
    for root, dirs, files in sorted(os.walk(directory), key=lambda entry: -len(entry[0])):
        if root != str(directory) and not dirs and not files:
            os.rmdir(root)
