"""What a control plane follows (repository, branch, directory, interval, webhook secret), kept in the store."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shipyard.errors import ShipyardError
from shipyard.source.credentials import split_credentials
from shipyard.source.gitcli import normalize_url, redact_url
from shipyard.state.store import Store

SOURCE_KEY = "source"                  # the settings below, as a dict
APPLIED_KEY = "source.applied"         # {"sha", "snapshot_hash"} of the last commit applied
DEFAULT_INTERVAL = 30.0


@dataclass(frozen=True)
class SourceSettings:
    """The followed repository. URL is normalised (a local path made absolute) and may hold a token."""

    url: str
    ref: str = "main"
    path: str = ""                     # the project's directory in the repository, '' for its root
    interval: float = DEFAULT_INTERVAL
    secret_file: str | None = None     # the webhook secret is read from here at start, never stored

    @classmethod
    def create(cls, url: str, ref: str | None, path: str | None, interval: float,
               secret_file: Path | None) -> SourceSettings:
        if interval <= 0:
            raise ShipyardError(f"invalid --interval {interval:g}s: it must be positive")
        url, _ = split_credentials(normalize_url(url))  # a token is kept apart (source/credentials.py), never here
        return cls(url, ref or "main", (path or "").strip("/"), interval,
                   str(secret_file.resolve()) if secret_file else None)

    @property
    def label(self) -> str:
        """The URL without credentials, for messages and status."""
        return redact_url(self.url)

    def read_secret(self) -> bytes | None:
        """The webhook secret (surrounding whitespace stripped), or None when none is configured."""
        if self.secret_file is None:
            return None
        try:
            secret = Path(self.secret_file).read_bytes().strip()
        except OSError as exc:
            raise ShipyardError(f"cannot read the webhook secret file {self.secret_file}: {exc.strerror}") from None
        if not secret:
            raise ShipyardError(f"the webhook secret file {self.secret_file} is empty")
        return secret

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceSettings:
        return cls(**{key: data[key] for key in ("url", "ref", "path", "interval", "secret_file") if key in data})


def load_settings(store: Store) -> SourceSettings | None:
    data = store.get(SOURCE_KEY)
    return SourceSettings.from_dict(data) if data else None


def save_settings(store: Store, settings: SourceSettings | None) -> None:
    store.put(SOURCE_KEY, settings.to_dict() if settings else None)


def stored_settings(state_dir: Path) -> SourceSettings | None:
    """The source a state dir's control plane followed last, without creating a database where none is."""
    database = state_dir / "state.db"
    if not database.exists():
        return None
    store = Store(database)
    try:
        return load_settings(store)
    finally:
        store.close()
