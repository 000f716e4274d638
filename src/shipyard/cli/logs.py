"""Reading instance log files from the state dir (works whether or not the control plane runs).

Each stream is `stdout.log` plus the files the log writer rotated it into (`stdout.log.1` newest …,
see runtime/logwriter.py); they are read oldest first, and a follower notices a rotation (the file at
the path is a new one) and finishes the renamed file before it starts on the new one.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import click

from shipyard.errors import ControlPlaneError
from shipyard.state.store import Store

MAX_ROTATED = 100  # more than any configured SHIPYARD_LOG_FILES


def instance_log_files(state: Path, service: str, instance_id: str | None) -> list[tuple[str, Path]]:
    """(label, path) of the stdout/stderr files of the service's current instances."""
    if not (state / "state.db").exists():  # opening the store would create it
        raise ControlPlaneError(f"no control plane has run in {state}: start one with `shipyard up`")
    store = Store(state / "state.db")
    try:
        instances = [i for i in store.instances() if i.service == service]
    finally:
        store.close()
    if instance_id:
        instances = [i for i in instances if i.id == instance_id]
        if not instances:
            raise ControlPlaneError(f"no instance {instance_id} of {service}; see `shipyard status`")
    if not instances:
        raise ControlPlaneError(f"no instances of service {service!r}; see `shipyard status`")
    files = []
    for instance in instances:
        for stream in ("stdout", "stderr"):
            files.append((instance.id, state / "instances" / instance.id / f"{stream}.log"))
    return files


def rotated_files(path: Path) -> list[Path]:
    """The files of one stream that exist, oldest first: `X.N` … `X.1`, `X`."""
    older = []
    for n in range(1, MAX_ROTATED + 1):
        candidate = path.with_name(f"{path.name}.{n}")
        if not candidate.exists():
            break
        older.append(candidate)
    return [*reversed(older), *([path] if path.exists() else [])]


def tail_lines(path: Path, count: int) -> list[str]:
    """The last COUNT lines of a stream, across its rotated files."""
    lines: list[str] = []
    for part in reversed(rotated_files(path)):
        if len(lines) >= count:
            break
        lines = part.read_text(errors="replace").splitlines() + lines
    return lines[-count:] if count else []


def last_lines(state: Path, instance_id: str, count: int) -> list[str]:
    """The last lines an instance printed: its stdout's, then its stderr's (each at most COUNT)."""
    run_dir = state / "instances" / instance_id
    return [line for stream in ("stdout", "stderr") for line in tail_lines(run_dir / f"{stream}.log", count)]


@dataclass
class _Position:
    inode: int
    offset: int


def follow_logs(files: list[tuple[str, Path]], tail: int, follow: bool) -> None:
    prefix = len({label for label, _ in files}) > 1

    def show(label: str, data: bytes) -> None:
        for line in data.decode(errors="replace").splitlines():
            click.echo(f"[{label}] {line}" if prefix else line)

    positions: dict[Path, _Position | None] = {}
    for label, path in files:
        for line in tail_lines(path, tail):
            click.echo(f"[{label}] {line}" if prefix else line)
        positions[path] = _position(path)
    while follow:
        time.sleep(0.25)
        for label, path in files:
            show(label, _read_new(path, positions))


def _position(path: Path) -> _Position | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return _Position(stat.st_ino, stat.st_size)


def _read_new(path: Path, positions: dict[Path, _Position | None]) -> bytes:
    """What was appended to the stream since the last call, across a rotation."""
    known = positions.get(path)
    text = b""
    try:
        current = os.stat(path).st_ino
    except FileNotFoundError:
        return b""
    if known is not None and known.inode != current:  # rotated: finish the file it was renamed to
        renamed = path.with_name(f"{path.name}.1")
        try:
            if os.stat(renamed).st_ino == known.inode:
                text += _read_from(renamed, known.offset)
        except FileNotFoundError:
            pass
        known = None
    offset = known.offset if known is not None else 0
    chunk = _read_from(path, offset)
    positions[path] = _Position(current, offset + len(chunk))
    return text + chunk


def _read_from(path: Path, offset: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read()
