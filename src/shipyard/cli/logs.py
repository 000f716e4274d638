"""Reading instance log files from the state dir (works whether or not the control plane runs)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from shipyard.errors import ControlPlaneError
from shipyard.state.store import Store


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


def follow_logs(files: list[tuple[str, Path]], tail: int, follow: bool) -> None:
    prefix = len({label for label, _ in files}) > 1
    offsets: dict[Path, int] = {}
    for label, path in files:
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        for line in lines[-tail:] if tail else []:
            click.echo(f"[{label}] {line}" if prefix else line)
        offsets[path] = path.stat().st_size if path.exists() else 0
    while follow:
        time.sleep(0.25)
        for label, path in files:
            if not path.exists():
                continue
            with open(path, "rb") as handle:
                handle.seek(offsets[path])
                chunk = handle.read()
            offsets[path] += len(chunk)
            for line in chunk.decode(errors="replace").splitlines():
                click.echo(f"[{label}] {line}" if prefix else line)
