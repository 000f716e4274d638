"""Validation of secrets without any key: files under `secrets/` must be encrypted, references must exist.

Only the structure of a SOPS file is read (its key paths are in clear); nothing is decrypted, so
`shipyard validate` works on a laptop without the environment's private key.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from shipyard.errors import Problem
from shipyard.secrets import sopsfile
from shipyard.secrets.errors import SecretsError
from shipyard.secrets.files import SECRETS_DIR, relative_name
from shipyard.spec.yamlfile import PathKey, Position, YamlDocument, YamlSyntaxError, read_yaml

ENCRYPT_HINT = "encrypt it with `shipyard secrets set ENV KEY` or `sops encrypt --in-place`"


def secret_files(root: Path) -> list[str]:
    """Every YAML file under `secrets/`, relative to the project."""
    folder = root / SECRETS_DIR
    if not folder.is_dir():
        return []
    return sorted(f"{SECRETS_DIR}/{p.relative_to(folder)}" for p in folder.rglob("*") if p.suffix in (".yaml", ".yml"))


def file_problems(root: Path, relative: str) -> tuple[list[Problem], dict[str, Any] | None]:
    """The problems of one secrets file (not SOPS, plaintext values) and, when it is sound, its encrypted tree."""
    try:
        document = read_yaml(root / relative, relative)
    except YamlSyntaxError as exc:
        return list(exc.problems), None
    data = document.data
    if not isinstance(data, dict) or not isinstance(data.get("sops"), dict):
        return [Problem(relative, 1, 1, "", f"plaintext secrets file: no `sops:` block; {ENCRYPT_HINT}")], None
    try:
        parsed = sopsfile.parse((root / relative).read_text(encoding="utf-8"), relative)
    except (SecretsError, OSError) as exc:
        return [Problem(relative, 1, 1, "sops", str(exc).removeprefix(f"{relative}: "))], None
    problems = [_plaintext(document, path) for path, value in _leaves(parsed.tree, ())
                if parsed.metadata.should_encrypt([str(k) for k in path if isinstance(k, str)])
                and not _is_encrypted(value)]
    return problems, (None if problems else parsed.tree)


Reference = tuple[str, Position, str]  # the key path referenced, where, the field's name


def reference_problems(root: Path, environment: str, refs: list[Reference]) -> list[Problem]:
    """A problem for each `{secret: KEY.PATH}` that `secrets/<env>.yaml` does not hold."""
    if not refs:
        return []
    relative = relative_name(environment)
    if not (root / relative).is_file():
        return [_at(where, field, f"secret `{ref}`: no {relative}; {ENCRYPT_HINT.replace('ENV', environment)}")
                for ref, where, field in refs]
    _, tree = file_problems(root, relative)
    if tree is None:
        return []  # the file's own problems are reported where the file is checked
    found: list[Problem] = []
    for ref, where, field in refs:
        node: Any = tree
        for key in ref.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            known = ", ".join(".".join(p) for p, _ in sopsfile.walk_leaves(tree)) or "none"
            found.append(_at(where, field, f"unknown secret `{ref}`: {relative} has no such key (keys: {known})"))
        elif isinstance(node, (dict, list)):
            found.append(_at(where, field, f"secret `{ref}` is a {'mapping' if isinstance(node, dict) else 'list'} "
                                           "in " + relative + "; reference one value"))
    return found


def _leaves(tree: Any, path: PathKey) -> list[tuple[PathKey, Any]]:
    if isinstance(tree, dict):
        return [leaf for key, value in tree.items() for leaf in _leaves(value, (*path, str(key)))]
    if isinstance(tree, list):
        return [leaf for index, item in enumerate(tree) for leaf in _leaves(item, (*path, index))]
    return [] if tree is None else [(path, tree)]


def _is_encrypted(value: Any) -> bool:
    return value == "" or (isinstance(value, str) and value.startswith("ENC[AES256_GCM,"))


def _plaintext(document: YamlDocument, path: PathKey) -> Problem:
    position = document.position(path)
    field = ".".join(str(k) for k in path)
    return Problem(position.file, position.line, position.column, field,
                   f"plaintext value in a secrets file (never commit a secret in clear); {ENCRYPT_HINT}")


def _at(where: Position, field: str, message: str) -> Problem:
    return Problem(where.file, where.line, where.column, field, message)


def with_secret_fingerprints(rendered: dict[str, Any], root: Path) -> dict[str, Any]:
    """Add `encrypted` (a hash of the ciphertext) to each `{secret: ...}` env entry of a rendering.

    `plan` compares renderings: a changed value then shows as a changed fingerprint, never as a value,
    and without the key. Writers keep an unchanged value's ciphertext (sops and Shipyard both reuse its IV).
    """
    tree: dict[str, Any] | None = None
    for service in rendered.get("services", {}).values():
        for entry in (service.get("env") or {}).values():
            if not (isinstance(entry, dict) and "secret" in entry):
                continue
            if tree is None:
                relative = relative_name(str(rendered.get("environment")))
                tree = file_problems(root, relative)[1] if (root / relative).is_file() else None
                tree = tree or {}
            node: Any = tree
            for key in str(entry["secret"]).split("."):
                node = node.get(key) if isinstance(node, dict) else None
            entry["encrypted"] = hashlib.sha256(node.encode()).hexdigest()[:12] if isinstance(node, str) else None
    return rendered
