"""The API's listeners: parsing `--api-listen`, and refusing what cannot work with a clear message."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from shipyard.api.listeners import parse_listen, tcp_listener, unix_listener
from shipyard.errors import StateError
from tests.controlplane import run_cli


@pytest.mark.parametrize(("value", "expected"), [
    ("127.0.0.1:7070", ("127.0.0.1", 7070)),
    ("0.0.0.0:0", ("0.0.0.0", 0)),
    ("[::1]:7070", ("::1", 7070)),
    ("localhost:80", ("localhost", 80)),
])
def test_parse_listen(value, expected):
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["7070", ":7070", "host:", "host:port", "host:70000", "[::1]"])
def test_parse_listen_refuses(value):
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        parse_listen(value)


def test_a_bad_api_listen_is_a_usage_error(tmp_path: Path):
    result = run_cli("up", str(tmp_path), "--env", "dev", "--state-dir", str(tmp_path / "s"), "--api-listen", "7070",
                     check=False)
    assert result.returncode == 2 and "--api-listen" in result.stderr and "expected HOST:PORT" in result.stderr


def test_the_unix_socket_is_0600_and_replaces_a_stale_one(tmp_path: Path):
    path = tmp_path / "api.sock"
    path.write_text("stale")
    sock = unix_listener(path)
    try:
        assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        sock.close()
    with pytest.raises(StateError, match="too long for a Unix socket"):
        unix_listener(tmp_path / ("x" * 120))


def test_a_taken_port_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(StateError, match=r"cannot listen on 127.0.0.1:\d+ for the API"):
            tcp_listener("127.0.0.1", taken.getsockname()[1]).close()
