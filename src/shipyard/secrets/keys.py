"""age keys: where an environment's private key lives, creating one, and wrapping the SOPS data key (pyrage).

The private key never enters git: it is read from `$SHIPYARD_AGE_KEY_FILE`, else `<state dir>/age.key`.
The file is in age-keygen's format (so `SOPS_AGE_KEY_FILE` can point at the same file) and must not
be readable by group or others.
"""

from __future__ import annotations

import datetime
import os
import stat
from pathlib import Path

import pyrage

from shipyard.secrets.errors import SecretsError

KEY_FILE_ENV = "SHIPYARD_AGE_KEY_FILE"
KEY_FILE_NAME = "age.key"


def key_file_path(state_dir: Path | None) -> Path:
    """`$SHIPYARD_AGE_KEY_FILE`, else `<state dir>/age.key`."""
    configured = os.environ.get(KEY_FILE_ENV)
    if configured:
        return Path(configured)
    if state_dir is None:
        raise SecretsError(f"no age key: set {KEY_FILE_ENV} or --state-dir (the key is <state dir>/{KEY_FILE_NAME})")
    return state_dir / KEY_FILE_NAME


def load_identities(path: Path) -> list[pyrage.x25519.Identity]:
    """The identities in an age key file; refuses a missing, empty or group/world-readable file."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretsError(f"no age key at {path}: create one with `shipyard secrets keygen` "
                           f"or point {KEY_FILE_ENV} at the environment's key") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretsError(f"cannot read age key {path}: {exc.__class__.__name__}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsError(f"age key {path} is readable by others (mode {stat.S_IMODE(mode):o}); run chmod 600 {path}")
    identities = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            # The message names the line, never its content: it is a private key.
            raise SecretsError(f"age key {path}: line {number} is not an AGE-SECRET-KEY") from None
    if not identities:
        raise SecretsError(f"age key {path} holds no AGE-SECRET-KEY line")
    return identities


def generate_key_file(path: Path, now: datetime.datetime) -> str:
    """Write a new age key (0600, never overwriting) in age-keygen's format; returns its public key."""
    identity = pyrage.x25519.Identity.generate()
    public = str(identity.to_public())
    text = (f"# created: {now.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}\n"
            f"# public key: {public}\n{identity}\n")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a state dir is 0700
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SecretsError(f"{path} already exists; remove it first if you really mean to replace the key") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return public


def public_keys(identities: list[pyrage.x25519.Identity]) -> list[str]:
    return [str(identity.to_public()) for identity in identities]


def parse_recipient(text: str) -> pyrage.x25519.Recipient:
    try:
        return pyrage.x25519.Recipient.from_str(text.strip())
    except pyrage.RecipientError:
        raise SecretsError(f"{text.strip()!r} is not an age recipient (age1...)") from None


def wrap_data_key(data_key: bytes, recipients: list[str]) -> list[dict[str, str]]:
    """One `{recipient, enc}` entry per recipient: the data key age-encrypted with ASCII armour, as sops writes."""
    if not recipients:
        raise SecretsError("no age recipients: give --recipient age1... or add a creation rule to .sops.yaml")
    entries = []
    for recipient in recipients:
        armored = pyrage.encrypt(data_key, [parse_recipient(recipient)], armored=True).decode("ascii")
        entries.append({"recipient": recipient.strip(), "enc": armored if armored.endswith("\n") else armored + "\n"})
    return entries


def unwrap_data_key(entries: list[dict[str, str]], identities: list[pyrage.x25519.Identity], name: str) -> bytes:
    """The data key from the first `sops.age` entry one of our identities opens."""
    for entry in entries:
        try:
            key = pyrage.decrypt(entry["enc"].encode("ascii"), identities)
        except (pyrage.DecryptError, UnicodeEncodeError):
            continue
        if len(key) != 32:
            raise SecretsError(f"{name}: the data key for {entry['recipient']} is not 32 bytes")
        return key
    listed = ", ".join(entry["recipient"] for entry in entries) or "none"
    mine = ", ".join(public_keys(identities))
    raise SecretsError(f"{name}: none of its age recipients ({listed}) matches our key ({mine}); "
                       "ask someone who can decrypt it to run `shipyard secrets rotate` with your public key")
