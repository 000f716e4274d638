"""The machine-wide capacity ledger: what each environment's control plane on this machine holds.

One JSON file (`$SHIPYARD_LEDGER`, else `~/.shipyard/ledger.json`) beside a lock file. Every
reconcile pass takes the lock, reads the other environments' entries, plans within what they leave
and writes its own entry before letting go — so two environments planning at the same moment cannot
both take the same free core. An entry names its control plane by pid + start time; entries of
control planes that are gone are ignored (and dropped at the next write), so a crashed environment
never holds the machine hostage.

A file and `flock` rather than a service: every control plane on the machine can reach it with no
daemon to run, and the kernel drops the lock of a process that dies holding it.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from shipyard.errors import StateError

LEDGER_ENV = "SHIPYARD_LEDGER"
Alive = Callable[[int, int | None], bool]   # (pid, start time) → is that process still running


def ledger_path() -> Path:
    configured = os.environ.get(LEDGER_ENV)
    return Path(configured) if configured else Path.home() / ".shipyard" / "ledger.json"


@dataclass(frozen=True)
class Entry:
    """One environment's holding: cores and bytes its instances (and rollouts under way) have reserved."""

    environment: str
    state_dir: str
    pid: int
    start_time: int | None
    cpu: float
    memory: int
    updated_at: float = 0.0


class Ledger:
    """This control plane's view of the shared ledger."""

    def __init__(self, path: Path, state_dir: Path, environment: str, pid: int, start_time: int | None,
                 alive: Alive) -> None:
        self.path, self.key, self.environment = path, str(state_dir.resolve()), environment
        self.pid, self.start_time, self.alive = pid, start_time, alive
        self.others: list[Entry] = []      # as read by the last transaction
        self._written: tuple[float, int] | None = None
        self._entries: dict[str, Entry] = {}  # as read by the current transaction

    @contextmanager
    def transaction(self) -> Iterator[list[Entry]]:
        """Hold the lock; yield the live entries of the other environments; `hold` inside records ours."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateError(f"cannot open the capacity ledger {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._entries = self._read()
            self.others = [e for key, e in sorted(self._entries.items()) if key != self.key]
            yield self.others
        finally:
            os.close(fd)  # releases the lock

    def hold(self, cpu: float, memory: int) -> None:
        """Record what this environment holds (inside `transaction`); unchanged figures are not rewritten."""
        mine = self._entries.get(self.key)
        if self._written == (cpu, memory) and mine is not None and mine.pid == self.pid:
            return
        self._entries[self.key] = Entry(self.environment, self.key, self.pid, self.start_time, round(cpu, 6),
                                        memory, time.time())
        self._write(self._entries)
        self._written = (cpu, memory)

    def forget(self) -> None:
        """Drop this environment's entry (`down`: it holds nothing any more)."""
        with self.transaction():
            if self.key in self._entries:
                del self._entries[self.key]
                self._write(self._entries)
        self._written = None

    def _read(self) -> dict[str, Entry]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # a damaged ledger is rebuilt from the live control planes' next writes
        entries: dict[str, Entry] = {}
        for key, raw in (data.get("entries") or {}).items() if isinstance(data, dict) else ():
            try:
                entry = Entry(**raw)
            except TypeError:
                continue
            if key == self.key or self.alive(entry.pid, entry.start_time):
                entries[key] = entry
        return entries

    def _write(self, entries: dict[str, Entry]) -> None:
        temporary = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        try:
            with open(temporary, "w") as handle:
                json.dump({"version": 1, "entries": {k: asdict(e) for k, e in sorted(entries.items())}}, handle,
                          indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except OSError as exc:
            raise StateError(f"cannot write the capacity ledger {self.path}: {exc.strerror}") from exc


def live_entries(path: Path, alive: Alive) -> list[Entry]:
    """The entries of the control planes still running (read without the lock: a snapshot is enough)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    entries = []
    for raw in (data.get("entries") or {}).values() if isinstance(data, dict) else ():
        try:
            entry = Entry(**raw)
        except TypeError:
            continue
        if alive(entry.pid, entry.start_time):
            entries.append(entry)
    return sorted(entries, key=lambda e: (e.environment, e.state_dir))
