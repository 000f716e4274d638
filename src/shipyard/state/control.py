"""The control file of a state dir: which process runs its control plane, where its API listens, and its token."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

CONTROL_FILE = "control.json"
SOCKET_FILE = "api.sock"  # the CLI's way in: a Unix socket only the state dir's owner can open
TOKEN_FILE = "token"  # the bearer token a TCP listener (`up --api-listen`) demands


def read_control(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / CONTROL_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_control(state_dir: Path, data: dict[str, Any]) -> None:
    temporary = state_dir / (CONTROL_FILE + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(data))
    os.replace(temporary, state_dir / CONTROL_FILE)


def ensure_token(state_dir: Path) -> str:
    """The state dir's API token, created (0600, 256 random bits) at the first start."""
    path = state_dir / TOKEN_FILE
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if token:
        return token
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token


PRIVATE_UMASK = 0o077  # what a control plane creates in its state dir is its owner's alone


def secure_state_dir(state_dir: Path) -> None:
    """Make STATE_DIR 0700 and what a control plane keeps at its top (store, logs, token, control file,
    proxy and git dirs) 0600/0700, also when an older version created them more open."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(state_dir, 0o700)
    for entry in state_dir.iterdir():
        if entry.is_symlink():
            continue
        if entry.is_dir():
            os.chmod(entry, 0o700)
        elif entry.is_file():
            os.chmod(entry, 0o600)
