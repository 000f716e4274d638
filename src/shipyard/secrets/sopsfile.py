"""The SOPS file format (YAML flavour) with age recipients: encrypt, decrypt and verify like `sops` does.

What is written here is the *format*, not cryptography: AES-256-GCM comes from `cryptography`, age
from `pyrage`. The format follows getsops/sops (`sops.go` Tree.Encrypt/Decrypt, `aes/cipher.go`,
`stores/stores.go`, `cmd/sops/common`):

- every leaf value becomes `ENC[AES256_GCM,data:<b64>,iv:<b64>,tag:<b64>,type:<str|int|float|bool>]`,
  with a 32-byte random IV and the key path joined by `:` plus a trailing `:` as additional data
  (items of a list share their parent's path); an empty string stays empty;
- the MAC is the upper-case hex SHA-512 over the plaintext of the values in document order
  (`True`/`False` for booleans), encrypted with the data key and `lastmodified` as additional data;
- the 32-byte data key is age-encrypted (ASCII armour) to each recipient under `sops.age`.

Comments are encrypted too (`#ENC[…,type:comment]`) and kept when Shipyard rewrites a file: that is
`shipyard.secrets.comments`, applied to the text `dump` writes.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import io
import os
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import LiteralScalarString

from shipyard.secrets.errors import SecretsError

SOPS_VERSION = "3.9.0"  # the format version written; sops 3.x reads it
_NONCE_SIZE = 32
_TAG_SIZE = 16
_ENC_RE = re.compile(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
_MAC_ONLY_ENCRYPTED_INIT = bytes([0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1,
                                  0x47, 0xbe, 0x0b, 0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad,
                                  0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69])
_UNSUPPORTED = ("key_groups", "shamir_threshold", "unencrypted_comment_regex", "encrypted_comment_regex")

Leaf = str | int | float | bool
Tree = dict[str, Any]
IvStash = dict[tuple[str, bytes], bytes]  # (additional data, plaintext) → IV, as sops' cipher stash


@dataclass
class Metadata:
    """The `sops:` block. `age` holds `{recipient, enc}` entries; other key sources are kept as written."""

    age: list[dict[str, str]]
    lastmodified: str
    mac: str
    version: str = SOPS_VERSION
    unencrypted_suffix: str | None = None
    encrypted_suffix: str | None = None
    unencrypted_regex: str | None = None
    encrypted_regex: str | None = None
    mac_only_encrypted: bool = False
    other: dict[str, Any] = field(default_factory=dict)

    @property
    def recipients(self) -> list[str]:
        return [entry["recipient"] for entry in self.age]

    def should_encrypt(self, path: list[str]) -> bool:
        """sops' shouldBeEncrypted, for the path-based rules (comment rules are refused on load)."""
        encrypted = True
        if self.unencrypted_suffix and any(key.endswith(self.unencrypted_suffix) for key in path):
            encrypted = False
        if self.encrypted_suffix:
            encrypted = any(key.endswith(self.encrypted_suffix) for key in path)
        if self.unencrypted_regex and any(re.search(self.unencrypted_regex, key) for key in path):
            encrypted = False
        if self.encrypted_regex:
            encrypted = any(re.search(self.encrypted_regex, key) for key in path)
        return encrypted


@dataclass
class SopsFile:
    """A parsed, still encrypted file: the tree of `ENC[...]` strings and the metadata."""

    tree: Tree
    metadata: Metadata


def parse(text: str, name: str) -> SopsFile:
    """Read a SOPS YAML document; `name` is used in messages. Raises SecretsError if it is not one."""
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        raise SecretsError(f"{name}: not valid YAML: {' '.join(str(exc).split())[:200]}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("sops"), dict):
        raise SecretsError(f"{name}: not a SOPS file (no `sops:` block); encrypt it with `shipyard secrets set` or sops")
    raw = dict(data.pop("sops"))
    for key in _UNSUPPORTED:
        if raw.get(key):
            raise SecretsError(f"{name}: sops option `{key}` is not supported by Shipyard; use age recipients only")
    age = [{"recipient": str(e.get("recipient", "")), "enc": str(e.get("enc", ""))} for e in raw.pop("age", None) or []]
    try:
        metadata = Metadata(
            age=age, lastmodified=str(raw.pop("lastmodified")), mac=str(raw.pop("mac")),
            version=str(raw.pop("version", SOPS_VERSION)),
            unencrypted_suffix=raw.pop("unencrypted_suffix", None), encrypted_suffix=raw.pop("encrypted_suffix", None),
            unencrypted_regex=raw.pop("unencrypted_regex", None), encrypted_regex=raw.pop("encrypted_regex", None),
            mac_only_encrypted=bool(raw.pop("mac_only_encrypted", False)), other=raw)
    except KeyError as exc:
        raise SecretsError(f"{name}: the sops block has no `{exc.args[0]}`") from exc
    _check_keys(data, name)
    return SopsFile(tree=data, metadata=metadata)


def _check_keys(tree: Any, name: str) -> None:
    if isinstance(tree, dict):
        for key, value in tree.items():
            if not isinstance(key, str):
                raise SecretsError(f"{name}: key {key!r} is not a string; sops supports string keys only")
            _check_keys(value, name)
    elif isinstance(tree, list):
        for item in tree:
            _check_keys(item, name)


def decrypt(document: SopsFile, data_key: bytes, name: str, ivs: IvStash | None = None) -> Tree:
    """The plaintext tree, after verifying the MAC. Raises SecretsError on any mismatch.

    IVS, when given, collects each value's IV so that re-encrypting an unchanged value yields the same
    ciphertext (sops does the same): a diff of the file then shows only what really changed.
    """
    meta = document.metadata
    digest = hashlib.sha512(_MAC_ONLY_ENCRYPTED_INIT if meta.mac_only_encrypted else b"")

    def leaf(value: Any, path: list[str]) -> Any:
        encrypted = meta.should_encrypt(path)
        if encrypted:
            if not isinstance(value, str):
                raise SecretsError(f"{name}: value at {'.'.join(path)} is not encrypted (plaintext in a secrets file)")
            encrypted_text = value
            value = decrypt_value(value, data_key, _aad(path), name, ".".join(path))
            match = _ENC_RE.match(encrypted_text)
            if ivs is not None and match:
                ivs[(_aad(path), to_bytes(value))] = base64.standard_b64decode(match.group(2))
        if encrypted or not meta.mac_only_encrypted:
            digest.update(to_bytes(value))
        return value

    plain = _walk(document.tree, [], leaf)
    computed = digest.hexdigest().upper()
    stored = decrypt_value(meta.mac, data_key, meta.lastmodified, name, "sops.mac")
    if stored != computed:
        raise SecretsError(f"{name}: MAC mismatch: the file was changed without its key (tampered or edited by hand); "
                           "restore it from git or re-create it with `shipyard secrets edit`")
    return plain


def encrypt(plain: Tree, data_key: bytes, metadata: Metadata, now: datetime.datetime,
            ivs: IvStash | None = None) -> SopsFile:
    """Encrypt every value under `metadata`'s rules and compute the MAC; `now` becomes `lastmodified`.

    IVS (from `decrypt` with the same data key) keeps unchanged values' ciphertext as it was.
    """
    digest = hashlib.sha512(_MAC_ONLY_ENCRYPTED_INIT if metadata.mac_only_encrypted else b"")

    def leaf(value: Any, path: list[str]) -> Any:
        encrypted = metadata.should_encrypt(path)
        if encrypted or not metadata.mac_only_encrypted:
            digest.update(to_bytes(value))
        return encrypt_value(value, data_key, _aad(path), ivs) if encrypted else value

    tree = _walk(plain, [], leaf)
    lastmodified = now.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    mac = encrypt_value(digest.hexdigest().upper(), data_key, lastmodified)
    meta = Metadata(age=metadata.age, lastmodified=lastmodified, mac=mac, version=metadata.version,
                    unencrypted_suffix=metadata.unencrypted_suffix, encrypted_suffix=metadata.encrypted_suffix,
                    unencrypted_regex=metadata.unencrypted_regex, encrypted_regex=metadata.encrypted_regex,
                    mac_only_encrypted=metadata.mac_only_encrypted, other=metadata.other)
    return SopsFile(tree=tree, metadata=meta)


def dump(document: SopsFile) -> str:
    """The YAML text of an encrypted file, laid out like sops writes it (4-space indent, `sops:` last)."""
    meta = document.metadata
    block: dict[str, Any] = dict(meta.other)
    if meta.age:
        block["age"] = [{"recipient": e["recipient"], "enc": LiteralScalarString(e["enc"])} for e in meta.age]
    block["lastmodified"] = meta.lastmodified
    block["mac"] = meta.mac
    for key in ("unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex"):
        if getattr(meta, key):
            block[key] = getattr(meta, key)
    if meta.mac_only_encrypted:
        block["mac_only_encrypted"] = True
    block["version"] = meta.version
    yaml = YAML()
    yaml.indent(mapping=4, sequence=4, offset=2)
    yaml.width = 4096
    out = io.StringIO()
    yaml.dump({**document.tree, "sops": block}, out)
    return out.getvalue()


def walk_leaves(tree: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (key path, value) of a tree in document order; list items share their parent's path."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from walk_leaves(value, (*path, str(key)))
    elif isinstance(tree, list):
        for item in tree:
            yield from walk_leaves(item, path)
    elif tree is not None:
        yield path, tree


def _walk(tree: Any, path: list[str], leaf: Callable[[Any, list[str]], Any]) -> Any:
    if isinstance(tree, dict):
        return {key: _walk(value, [*path, key], leaf) for key, value in tree.items()}
    if isinstance(tree, list):
        return [_walk(item, path, leaf) for item in tree]
    if tree is None:
        return None
    if isinstance(tree, (datetime.date, bytes)):
        tree = tree.isoformat() if isinstance(tree, datetime.date) else tree.decode("utf-8", "replace")
    return leaf(tree, path)


def _aad(path: list[str]) -> str:
    return ":".join(path) + ":"


def to_bytes(value: Leaf) -> bytes:
    """sops' ToBytes: how a value enters the MAC and the ciphertext."""
    if isinstance(value, bool):
        return b"True" if value else b"False"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        return _go_float(value).encode()
    return str(value).encode("utf-8")


def _go_float(value: float) -> str:
    # Go's strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, never an exponent.
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def encrypt_value(value: Leaf, key: bytes, aad: str, ivs: IvStash | None = None) -> str:
    """One `ENC[AES256_GCM,...]` string (an empty string stays empty, as in sops)."""
    if value == "":
        return ""
    kind = "bool" if isinstance(value, bool) else "int" if isinstance(value, int) else \
        "float" if isinstance(value, float) else "str"
    iv = (ivs or {}).get((aad, to_bytes(value))) or os.urandom(_NONCE_SIZE)
    sealed = AESGCM(key).encrypt(iv, to_bytes(value), aad.encode())
    data, tag = sealed[:-_TAG_SIZE], sealed[-_TAG_SIZE:]
    b64 = base64.standard_b64encode
    return f"ENC[AES256_GCM,data:{b64(data).decode()},iv:{b64(iv).decode()},tag:{b64(tag).decode()},type:{kind}]"


def decrypt_value(text: str, key: bytes, aad: str, name: str, where: str) -> Leaf:
    """The plaintext of one `ENC[...]` string, typed as its `type:` says."""
    if text == "":
        return ""
    match = _ENC_RE.match(text)
    if match is None:
        raise SecretsError(f"{name}: value at {where} is not an ENC[AES256_GCM,...] string (plaintext in a secrets file?)")
    try:
        data, iv, tag = (base64.standard_b64decode(part) for part in match.groups()[:3])
        plain = AESGCM(key).decrypt(iv, data + tag, aad.encode())
    except (ValueError, InvalidTag) as exc:
        raise SecretsError(f"{name}: value at {where} does not decrypt (tampered, moved to another key, "
                           "or encrypted with another data key)") from exc
    kind = match.group(4)
    text_value = plain.decode("utf-8", "replace")
    try:
        if kind == "int":
            return int(text_value)
        if kind == "float":
            return float(text_value)
        if kind == "bool":
            return _go_bool(text_value)
    except ValueError as exc:
        raise SecretsError(f"{name}: value at {where} is not a valid {kind}") from exc
    if kind not in ("str", "bytes", "time", "comment"):
        raise SecretsError(f"{name}: value at {where} has an unknown type {kind!r}")
    return text_value


def _go_bool(text: str) -> bool:
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(text)
