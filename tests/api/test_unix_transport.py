"""A failed connect to a Unix socket closes its socket at once (httpx's own transport leaves it to the GC)."""

from __future__ import annotations

import gc
import socket
import threading
import warnings
from pathlib import Path

import httpx
import pytest

from shipyard.api.unix_transport import unix_transport


def unclosed_sockets_after_failed_get(transport: httpx.HTTPTransport) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with httpx.Client(transport=transport, timeout=2) as client:
            with pytest.raises(httpx.ConnectError):
                client.get("http://shipyard/status")
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.parametrize("kind", ["missing", "refused"])
def test_a_failed_connect_leaves_no_socket_to_the_collector(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "api.sock"
    if kind == "refused":  # a socket file nobody listens on: a control plane that died
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(str(path))
        stale.close()
    # the oracle: httpx's own transport does leak here (so this test can tell)
    assert any("unclosed <socket.socket" in m for m in unclosed_sockets_after_failed_get(httpx.HTTPTransport(uds=str(path))))
    assert unclosed_sockets_after_failed_get(unix_transport(str(path))) == []


def test_it_talks_http_over_the_socket(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen()
        with httpx.Client(transport=unix_transport(str(path)), timeout=5) as client:
            def answer() -> None:
                conn, _ = server.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

            thread = threading.Thread(target=answer)
            thread.start()
            assert client.get("http://shipyard/status").text == "ok"
            thread.join(timeout=5)
