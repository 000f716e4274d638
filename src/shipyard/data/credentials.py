"""A database server's generated passwords (0600 files, one per user) and the port it is given once."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from shipyard.data.errors import DatabaseError


def password(directory: Path, user: str, create: bool, what: str) -> str:
    """USER's password in DIRECTORY; made (192 bits, 0600) when CREATE, else a missing one is an error."""
    path = directory / user
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        if not create:
            raise DatabaseError(f"no password for {what} {user!r}: apply the project first") from None
    value = secrets.token_urlsafe(24)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value)
    return value


def forget(directory: Path, user: str, what: str) -> None:
    """Drop USER's password so that the next `password(..., create=True)` makes a new one (rotation)."""
    path = directory / user
    if not path.exists():
        raise DatabaseError(f"no {what} {user!r} in this environment")
    path.unlink()
