"""Loopback ports: one that is free, and whether another socket holds one."""

from __future__ import annotations

import socket

from shipyard.proxy.ports import free_port, port_in_use


def test_a_listening_or_bound_port_is_in_use_a_closed_one_is_not() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        assert port_in_use(port)
    assert not port_in_use(port)
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", free_port()))
        assert port_in_use(bound.getsockname()[1])


def test_a_port_left_with_a_closed_connection_is_free_for_a_server() -> None:
    """A dead instance's port: its connections linger in TIME_WAIT, yet its replacement may bind it."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: its end of the connection goes to TIME_WAIT
        client.close()
    assert not port_in_use(port)
