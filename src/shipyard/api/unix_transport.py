"""The HTTP transport every client of a control plane's Unix socket uses (the CLI, discovery, the tests).

httpx's own `HTTPTransport(uds=...)` leaves the socket of a failed connect to the garbage collector: httpcore's
sync backend opens it and raises without closing it (encode/httpcore 1.0.9, `connect_unix_socket`; redis-py and
anyio fixed the same leak in theirs). The traceback keeps it alive in a cycle, so it is closed — with a
ResourceWarning — at some later collection, in whatever code runs then. Waiting for a control plane to come up
fails to connect many times, so this is common, not rare. The backend below closes the socket when connect fails.
"""

from __future__ import annotations

import socket
import typing

import httpcore
import httpx
from httpcore._backends.sync import SyncBackend, SyncStream  # no public name for them


class _ClosingUnixBackend(SyncBackend):
    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: typing.Iterable[typing.Any] | None = None) -> httpcore.NetworkStream:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(timeout)
            sock.connect(path)
        except socket.timeout as exc:
            sock.close()
            raise httpcore.ConnectTimeout(exc) from exc
        except OSError as exc:
            sock.close()
            raise httpcore.ConnectError(exc) from exc
        return SyncStream(sock)


def unix_transport(path: str) -> httpx.HTTPTransport:
    """A transport to the HTTP server listening on the Unix socket at PATH."""
    transport = httpx.HTTPTransport(uds=path)
    transport._pool = httpcore.ConnectionPool(uds=path, network_backend=_ClosingUnixBackend())
    return transport
