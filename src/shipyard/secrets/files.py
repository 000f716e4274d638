"""An environment's secrets file, `secrets/<env>.yaml`: read, write, set one value, rotate recipients.

Writes keep the file's data key and metadata (as `sops edit` does) unless `rotate` asks for a new one;
a new file gets its recipients from the caller, else a matching `.sops.yaml` creation rule, else our
own public key. Files are replaced atomically.
"""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path
from typing import Any

import pyrage
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from shipyard.secrets import comments, sopsfile
from shipyard.secrets.errors import SecretsError
from shipyard.secrets.keys import public_keys, unwrap_data_key, wrap_data_key

SECRETS_DIR = "secrets"
Identities = list[pyrage.x25519.Identity]


def secrets_file(root: Path, environment: str) -> Path:
    return root / SECRETS_DIR / f"{environment}.yaml"


def relative_name(environment: str) -> str:
    return f"{SECRETS_DIR}/{environment}.yaml"


def read_document(root: Path, environment: str) -> sopsfile.SopsFile:
    path = secrets_file(root, environment)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretsError(f"no secrets file {relative_name(environment)}: create it with "
                           f"`shipyard secrets set {environment} KEY`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretsError(f"cannot read {relative_name(environment)}: {exc.__class__.__name__}") from exc
    return sopsfile.parse(text, relative_name(environment))


def read_secrets(root: Path, environment: str, identities: Identities) -> dict[str, Any]:
    """The decrypted, MAC-verified tree of `secrets/<env>.yaml`."""
    document = read_document(root, environment)
    name = relative_name(environment)
    return sopsfile.decrypt(document, unwrap_data_key(document.metadata.age, identities, name), name)


def read_comments(root: Path, environment: str, identities: Identities,
                  ivs: sopsfile.IvStash | None = None) -> list[comments.Comment]:
    """The file's comments, decrypted (sops encrypts them), anchored to the keys they precede."""
    path = secrets_file(root, environment)
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    document = sopsfile.parse(text, relative_name(environment))
    data_key = unwrap_data_key(document.metadata.age, identities, relative_name(environment))
    return comments.decrypt(comments.find(text), data_key, text, ivs)


def write_secrets(root: Path, environment: str, plain: dict[str, Any], identities: Identities, now: datetime.datetime,
                  recipients: list[str] | None = None, rotate: bool = False,
                  notes: list[comments.Comment] | None = None) -> list[str]:
    """Encrypt PLAIN into `secrets/<env>.yaml`; returns the recipients it is encrypted for.

    An existing file keeps its data key and recipients, unless `rotate` (new data key) or `recipients`
    (re-encrypt for exactly these) is given. It keeps its comments too (encrypted, as sops writes them),
    unless NOTES gives the comments to write instead (`secrets edit`: those of the edited copy).
    """
    path = secrets_file(root, environment)
    name = relative_name(environment)
    ivs: sopsfile.IvStash = {}
    kept: list[comments.Comment] = []
    if path.exists():
        document = read_document(root, environment)
        metadata = document.metadata
        data_key = unwrap_data_key(metadata.age, identities, name)
        sopsfile.decrypt(document, data_key, name, ivs)  # never write over a file that does not verify
        kept = read_comments(root, environment, identities, ivs)
    else:
        metadata = sopsfile.Metadata(age=[], lastmodified="", mac="")
        data_key = b""
    if rotate or recipients is not None or not data_key:
        chosen = recipients or (metadata.recipients if data_key else None) \
            or creation_rule_recipients(root, name) or public_keys(identities)
        data_key = os.urandom(32)  # a new recipient list gets a new data key, as `sops rotate` does
        metadata.age = wrap_data_key(data_key, chosen)
        ivs = {}
    document = sopsfile.encrypt(_check_plain(plain, name), data_key, metadata, now, ivs)
    text = comments.place(sopsfile.dump(document), kept if notes is None else notes, comments.sealer(data_key, ivs))
    _write_atomic(path, text)
    return document.metadata.recipients


def set_value(root: Path, environment: str, dotted: str, value: str, identities: Identities,
              now: datetime.datetime, recipients: list[str] | None = None) -> None:
    """Set one value (`payments.api_key` → nested keys), creating the file if needed."""
    path = secrets_file(root, environment)
    plain = read_secrets(root, environment, identities) if path.exists() else {}
    keys = dotted.split(".")
    if not all(keys):
        raise SecretsError(f"{dotted!r} is not a key path like `payments.api_key`")
    node = plain
    for index, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise SecretsError(f"{'.'.join(keys[:index + 1])} holds a value, not a mapping; cannot set {dotted}")
        node = child
    node[keys[-1]] = value
    write_secrets(root, environment, plain, identities, now, recipients=recipients)


def lookup(tree: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted key path, or None when there is none."""
    node: Any = tree
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def creation_rule_recipients(root: Path, relative: str) -> list[str] | None:
    """The age recipients of the first `.sops.yaml` creation rule matching RELATIVE, as sops picks them."""
    config = root / ".sops.yaml"
    if not config.exists():
        return None
    try:
        data = YAML(typ="safe", pure=True).load(config.read_text(encoding="utf-8")) or {}
    except (OSError, YAMLError) as exc:
        raise SecretsError(f".sops.yaml: cannot read: {exc.__class__.__name__}") from exc
    for rule in data.get("creation_rules") or []:
        pattern = rule.get("path_regex")
        if pattern and not re.search(pattern, relative):
            continue
        age = rule.get("age")
        if isinstance(age, list):
            return [str(item).strip() for item in age if str(item).strip()]
        if isinstance(age, str):
            return [item.strip() for item in age.split(",") if item.strip()]
        return None
    return None


def _check_plain(plain: Any, name: str) -> dict[str, Any]:
    if not isinstance(plain, dict):
        raise SecretsError(f"{name}: the secrets must be a mapping of keys to values")
    if "sops" in plain:
        raise SecretsError(f"{name}: `sops` is reserved for the file's metadata; use another key")
    return plain


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
