"""The sockets the API listens on: the state dir's Unix socket, and TCP when `up --api-listen` asks."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from shipyard.errors import StateError


def unix_listener(path: Path) -> socket.socket:
    """A Unix socket bound at PATH (0600) for the CLI; its directory (the 0700 state dir) keeps others out."""
    if len(os.fsencode(path)) >= 108:
        raise StateError(f"the state directory's path is too long for a Unix socket ({path}): use a shorter "
                         f"--state-dir")
    path.unlink(missing_ok=True)  # left by a control plane that died; the state dir's lock is ours
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))  # in the 0700 state dir, so nobody else can reach it even before the chmod
    os.chmod(path, 0o600)
    return sock


def tcp_listener(host: str, port: int) -> socket.socket:
    """A bound TCP socket for `up --api-listen` (the bearer token is demanded by api/auth.py)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without it every keep-alive answer waits ~40 ms for a delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StateError(f"cannot listen on {host}:{port} for the API: {exc.strerror}") from None
    return sock


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 as `[::1]:PORT`) → (host, port); ValueError when malformed."""
    host, sep, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, e.g. 127.0.0.1:7070 or 0.0.0.0:7070, not {value!r}")
    return host, int(port)
