"""Secret values of a release: resolved from `secrets/<env>.yaml`, fingerprinted, kept encrypted per release.

A release's identity must change when a secret value changes, without the value entering the store:
it carries a keyed hash (HMAC-SHA256, keyed by a digest of the environment's private age key) of its
secret environment. The values themselves are kept in `<state dir>/secrets/<release>.yaml`, a SOPS file
encrypted to the environment's own key, so an instance of any release (a rollback, a restart after the
control plane came back) can be started; they are decrypted only into the instance's environment.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.secrets import sopsfile
from shipyard.secrets.errors import SecretsError
from shipyard.secrets.files import lookup, read_secrets, relative_name
from shipyard.secrets.keys import key_file_path, load_identities, public_keys, unwrap_data_key, wrap_data_key

RELEASES_DIR = "secrets"


@dataclass(frozen=True)
class ResolvedSecrets:
    """One service's secret environment: `refs` (variable → key path) are public, `values` are not."""

    refs: tuple[tuple[str, str], ...]
    values: dict[str, str] = field(repr=False)
    digest: str

    def __repr__(self) -> str:  # never print the values, even in a traceback
        return f"ResolvedSecrets(refs={self.refs!r}, digest={self.digest!r})"


class SecretResolver:
    """Decrypts an environment's secrets file once, on first use, with the environment's key."""

    def __init__(self, root: Path, environment: str, state_dir: Path) -> None:
        self.root, self.environment, self.state_dir = root, environment, state_dir
        self._tree: dict[str, Any] | None = None
        self._identities: list[Any] | None = None

    def identities(self) -> list[Any]:
        if self._identities is None:
            self._identities = load_identities(key_file_path(self.state_dir))
        return self._identities

    def resolve(self, refs: dict[str, str]) -> ResolvedSecrets | None:
        """The values of REFS (variable → key path); None when there are none. Raises SecretsError."""
        if not refs:
            return None
        if self._tree is None:
            self._tree = read_secrets(self.root, self.environment, self.identities())
        values = {}
        for variable, ref in sorted(refs.items()):
            value = lookup(self._tree, ref)
            if value is None or isinstance(value, (dict, list)):
                raise SecretsError(f"{relative_name(self.environment)}: no value at `{ref}` (for ${variable})")
            values[variable] = _as_text(value)
        key = hashlib.sha256(b"shipyard release secrets\0" + "".join(sorted(map(str, self.identities()))).encode()).digest()
        digest = hmac.new(key, json.dumps(values, sort_keys=True).encode(), hashlib.sha256).hexdigest()[:16]
        return ResolvedSecrets(tuple(sorted(refs.items())), values, digest)

    def save(self, release_id: str, resolved: ResolvedSecrets, now: datetime.datetime) -> None:
        """Keep RELEASE_ID's values in the state dir, encrypted to our own key (0600); idempotent."""
        path = release_secrets_path(self.state_dir, release_id)
        if path.exists():
            return
        data_key = os.urandom(32)
        metadata = sopsfile.Metadata(age=wrap_data_key(data_key, public_keys(self.identities())[:1]),
                                     lastmodified="", mac="")
        text = sopsfile.dump(sopsfile.encrypt(dict(resolved.values), data_key, metadata, now))
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)


def release_secrets_path(state_dir: Path, release_id: str) -> Path:
    return state_dir / RELEASES_DIR / f"{release_id}.yaml"


def release_env(state_dir: Path, release_id: str) -> dict[str, str]:
    """The secret environment of a release, decrypted for an instance about to start. Raises SecretsError."""
    path = release_secrets_path(state_dir, release_id)
    name = f"secrets of release {release_id}"
    try:
        document = sopsfile.parse(path.read_text(encoding="utf-8"), name)
    except FileNotFoundError:
        raise SecretsError(f"{name} are not in the state dir: apply the project again") from None
    identities = load_identities(key_file_path(state_dir))
    tree = sopsfile.decrypt(document, unwrap_data_key(document.metadata.age, identities, name), name)
    return {str(key): _as_text(value) for key, value in tree.items()}


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return sopsfile.to_bytes(value).decode("utf-8")


def as_text(value: Any) -> str:
    """A secret value as the text an environment variable gets (also what the Kubernetes export writes)."""
    return _as_text(value)
