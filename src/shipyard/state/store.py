"""The control plane's durable state: one SQLite database (WAL) in the state dir.

Every change of instances, rollouts and desired state is written here as it happens, so a control
plane that is killed at any moment resumes from exactly where it was.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from shipyard.engine.model import Instance, Release, Rollout, State
from shipyard.errors import StateError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS endpoints (service TEXT PRIMARY KEY, port INTEGER NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS releases (id TEXT PRIMARY KEY, service TEXT NOT NULL, created_at REAL NOT NULL,
                                     data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS instances (id TEXT PRIMARY KEY, service TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rollouts (service TEXT NOT NULL, started_at REAL NOT NULL, target TEXT NOT NULL,
                                     data TEXT NOT NULL, PRIMARY KEY (service, started_at));
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, type TEXT NOT NULL,
                                   object TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL,
                                   data TEXT NOT NULL DEFAULT '{}', count INTEGER NOT NULL DEFAULT 1,
                                   first_seen REAL);
CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY AUTOINCREMENT, applied_at REAL NOT NULL,
                                    revision TEXT NOT NULL, result TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (name TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, scope TEXT NOT NULL,
                                   created_at REAL NOT NULL, expires_at REAL, revoked_at REAL);
CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, who TEXT NOT NULL,
                                  action TEXT NOT NULL, target TEXT NOT NULL, outcome TEXT NOT NULL,
                                  status INTEGER NOT NULL);
"""
MAX_EVENTS = 5000  # rows kept in the events table (docs/engine.md)
MAX_HISTORY = 1000
MAX_AUDIT = 20000
_TOKEN_COLUMNS = "name, digest, scope, created_at, expires_at, revoked_at"


class Store:
    """Typed access to the state database. Thread-safe: one connection behind a lock."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A short busy timeout: the store is written from the event loop, and a database locked by
            # someone else must become a visible failure (ReconcileFailed) rather than a frozen control plane.
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=2)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            _migrate(self._db)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open the state database {path}: {exc}") from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _execute(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # ---- meta -------------------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        rows = self._execute("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def put(self, key: str, value: Any) -> None:
        self._execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                      (key, json.dumps(value)))

    # ---- endpoints --------------------------------------------------------------------------------
    def endpoints(self) -> dict[str, int]:
        return {service: port for service, port in self._execute("SELECT service, port FROM endpoints")}

    def set_endpoint(self, service: str, port: int) -> None:
        self._execute("INSERT INTO endpoints (service, port) VALUES (?, ?) "
                      "ON CONFLICT(service) DO UPDATE SET port = excluded.port", (service, port))

    def forget_endpoint(self, service: str) -> None:
        self._execute("DELETE FROM endpoints WHERE service = ?", (service,))

    # ---- releases ---------------------------------------------------------------------------------
    def save_release(self, release: Release) -> None:
        self._execute("INSERT OR IGNORE INTO releases (id, service, created_at, data) VALUES (?, ?, ?, ?)",
                      (release.id, release.service, time.time(), json.dumps(release.to_dict())))

    def release(self, release_id: str) -> Release | None:
        rows = self._execute("SELECT data FROM releases WHERE id = ?", (release_id,))
        return Release.from_dict(json.loads(rows[0][0])) if rows else None

    def releases(self, service: str) -> list[tuple[float, Release]]:
        rows = self._execute("SELECT created_at, data FROM releases WHERE service = ? ORDER BY created_at", (service,))
        return [(created, Release.from_dict(json.loads(data))) for created, data in rows]

    def all_releases(self) -> list[tuple[float, Release]]:
        """Every release with when it was recorded (for garbage collection)."""
        rows = self._execute("SELECT created_at, data FROM releases ORDER BY created_at")
        return [(created, Release.from_dict(json.loads(data))) for created, data in rows]

    def delete_releases(self, release_ids: list[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM releases WHERE id = ?", [(i,) for i in release_ids])

    # ---- instances --------------------------------------------------------------------------------
    def save_instance(self, instance: Instance) -> None:
        self._execute("INSERT INTO instances (id, service, data) VALUES (?, ?, ?) "
                      "ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                      (instance.id, instance.service, json.dumps(_instance_dict(instance))))

    def delete_instance(self, instance_id: str) -> None:
        self._execute("DELETE FROM instances WHERE id = ?", (instance_id,))

    def instances(self) -> list[Instance]:
        return [_instance_from(json.loads(data)) for (data,) in self._execute("SELECT data FROM instances ORDER BY id")]

    # ---- rollouts ---------------------------------------------------------------------------------
    def save_rollout(self, rollout: Rollout) -> None:
        self._execute("INSERT INTO rollouts (service, started_at, target, data) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT(service, started_at) DO UPDATE SET data = excluded.data, target = excluded.target",
                      (rollout.service, rollout.started_at, rollout.target, json.dumps(dataclasses.asdict(rollout))))

    def current_rollouts(self) -> dict[str, Rollout]:
        rows = self._execute("SELECT data FROM rollouts r WHERE started_at = "
                             "(SELECT MAX(started_at) FROM rollouts WHERE service = r.service)")
        rollouts = [Rollout(**json.loads(data)) for (data,) in rows]
        return {r.service: r for r in rollouts}

    def rollout_history(self, service: str) -> list[Rollout]:
        rows = self._execute("SELECT data FROM rollouts WHERE service = ? ORDER BY started_at DESC", (service,))
        return [Rollout(**json.loads(data)) for (data,) in rows]

    def all_rollouts(self) -> list[Rollout]:
        rows = self._execute("SELECT data FROM rollouts ORDER BY service, started_at")
        return [Rollout(**json.loads(data)) for (data,) in rows]

    def delete_rollouts(self, keys: list[tuple[str, float]]) -> None:
        """Delete the rollout records with these (service, started_at)."""
        with self._lock:
            self._db.executemany("DELETE FROM rollouts WHERE service = ? AND started_at = ?", keys)

    # ---- events -----------------------------------------------------------------------------------
    def add_event(self, type_: str, obj: str, reason: str, message: str, data: dict[str, Any] | None = None,
                  at: float | None = None) -> int:
        """Record an event; a repeat of one already kept (same object, reason and message) is counted, not kept twice.

        Like Kubernetes' `count`: the repeat replaces the earlier row under a new id (so `events -f`, which reads
        by id, sees it again with its count) and keeps `first_seen`; `time` and `last_seen` are the latest
        occurrence. At most MAX_EVENTS rows are kept, the oldest (by last occurrence) pruned first.
        """
        now = at or time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                previous = self._db.execute("SELECT id, count, first_seen FROM events WHERE object = ? AND reason = ? "
                                            "AND message = ? ORDER BY id DESC LIMIT 1",
                                            (obj, reason, message)).fetchone()
                count, first_seen = (previous[1] + 1, previous[2]) if previous else (1, now)
                if previous:
                    self._db.execute("DELETE FROM events WHERE id = ?", (previous[0],))
                cursor = self._db.execute(
                    "INSERT INTO events (time, type, object, reason, message, data, count, first_seen) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (now, type_, obj, reason, message, json.dumps(data or {}),
                                                       count, first_seen))
                event_id = int(cursor.lastrowid or 0)
                if event_id % 100 == 0:  # bounded: drop the oldest, in batches to keep inserts cheap
                    self._db.execute("DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC "
                                     "LIMIT 1 OFFSET ?)", (MAX_EVENTS,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return event_id

    def events(self, after: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Events oldest first: without AFTER the newest LIMIT; with it the first LIMIT whose id is above it.

        A follower that asks again with the last id it saw therefore pages through a burst without a gap.
        """
        columns = "id, time, type, object, reason, message, data, count, first_seen"
        if after is None:
            rows = self._execute(f"SELECT {columns} FROM events ORDER BY id DESC LIMIT ?", (limit,))[::-1]
        else:
            rows = self._execute(f"SELECT {columns} FROM events WHERE id > ? ORDER BY id LIMIT ?", (after, limit))
        return [{"id": r[0], "time": r[1], "type": r[2], "object": r[3], "reason": r[4], "message": r[5],
                 "data": json.loads(r[6]), "count": r[7], "first_seen": r[8], "last_seen": r[1]} for r in rows]

    # ---- history of applied revisions ---------------------------------------------------------------
    def add_history(self, revision: str, result: str, data: dict[str, Any], at: float | None = None) -> int:
        """Record what happened to one revision (`applied` or `rejected`); the oldest go past MAX_HISTORY."""
        with self._lock:
            cursor = self._db.execute("INSERT INTO history (applied_at, revision, result, data) VALUES (?, ?, ?, ?)",
                                      (at or time.time(), revision, result, json.dumps(data)))
            entry_id = int(cursor.lastrowid or 0)
            self._db.execute("DELETE FROM history WHERE id <= ?", (entry_id - MAX_HISTORY,))
            return entry_id

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest LIMIT entries, newest first: id, applied_at, revision, result and the recorded data."""
        rows = self._execute("SELECT id, applied_at, revision, result, data FROM history ORDER BY id DESC LIMIT ?",
                             (limit,))
        return [{**json.loads(r[4]), "id": r[0], "applied_at": r[1], "revision": r[2], "result": r[3]} for r in rows]

    # ---- API tokens (only their SHA-256 digests) and the audit log (api/tokens.py, api/auth.py) ------
    def save_token(self, name: str, digest: str, scope: str, created_at: float, expires_at: float | None) -> None:
        """Record a token NAME by the digest of its secret, replacing a revoked one of that name."""
        self._execute("INSERT INTO tokens (name, digest, scope, created_at, expires_at, revoked_at) "
                      "VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT(name) DO UPDATE SET digest = excluded.digest, "
                      "scope = excluded.scope, created_at = excluded.created_at, expires_at = excluded.expires_at, "
                      "revoked_at = NULL", (name, digest, scope, created_at, expires_at))

    def token(self, *, name: str | None = None, digest: str | None = None) -> dict[str, Any] | None:
        column, value = ("name", name) if name is not None else ("digest", digest)
        rows = self._execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE {column} = ?", (value,))
        return _token_row(rows[0]) if rows else None

    def tokens(self) -> list[dict[str, Any]]:
        return [_token_row(r) for r in self._execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY name")]

    def revoke_token(self, name: str, at: float) -> bool:
        """Mark NAME revoked; False when there is no such token or it already was."""
        with self._lock:
            cursor = self._db.execute("UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                                      (at, name))
            return cursor.rowcount > 0

    def add_audit(self, who: str, action: str, target: str, outcome: str, status: int, at: float) -> int:
        with self._lock:
            cursor = self._db.execute("INSERT INTO audit (time, who, action, target, outcome, status) "
                                      "VALUES (?, ?, ?, ?, ?, ?)", (at, who, action, target, outcome, status))
            entry_id = int(cursor.lastrowid or 0)
            if entry_id % 100 == 0:
                self._db.execute("DELETE FROM audit WHERE id <= ?", (entry_id - MAX_AUDIT,))
            return entry_id

    def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest LIMIT audit entries, oldest first."""
        rows = self._execute("SELECT id, time, who, action, target, outcome, status FROM audit "
                             "ORDER BY id DESC LIMIT ?", (limit,))[::-1]
        return [{"id": r[0], "time": r[1], "who": r[2], "action": r[3], "target": r[4], "outcome": r[5],
                 "status": r[6]} for r in rows]


def _token_row(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(("name", "digest", "scope", "created_at", "expires_at", "revoked_at"), row))


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a database written by an older version up to SCHEMA (columns added later, their indexes)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
    if "count" not in columns:
        db.execute("ALTER TABLE events ADD COLUMN count INTEGER NOT NULL DEFAULT 1")
    if "first_seen" not in columns:
        db.execute("ALTER TABLE events ADD COLUMN first_seen REAL")
        db.execute("UPDATE events SET first_seen = time")
    db.execute("CREATE INDEX IF NOT EXISTS events_key ON events (object, reason, message)")


def _instance_dict(instance: Instance) -> dict[str, Any]:
    data = dataclasses.asdict(instance)
    data["state"] = instance.state.value
    return data


def _instance_from(data: dict[str, Any]) -> Instance:
    data["state"] = State(data["state"])
    return Instance(**data)


