"""Bad input to the API is a 4xx with a JSON error on every route, never a 500 (a real in-process control plane)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.api.app import build_app
from shipyard.api.input import MAX_BODY
from shipyard.daemon import ControlPlane
from shipyard.engine.model import Capacity
from tests.api.test_auth import every_route


class Client:
    """Requests straight into the ASGI app (the whole middleware stack, no socket)."""

    def __init__(self, app: Any) -> None:
        self.transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url="http://api") as http:
                return await http.request(method, path, **kwargs)

        return asyncio.run(send())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)


@pytest.fixture
def client(tmp_path: Path) -> Client:
    plane = ControlPlane(tmp_path / "state", tmp_path, "dev", Capacity(cpu=1.0, memory=2**30))
    return Client(build_app(plane))


def refused(response, status: int, words: str = "") -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "message"} and words in body["message"], body


@pytest.mark.parametrize(("path", "words"), [
    ("/events?after=x", "'after' must be an integer"),
    ("/events?limit=1.5", "'limit' must be an integer"),
    ("/events?limit=-1", "'limit' must be between 0"),
    ("/history?limit=many", "'limit' must be an integer"),
])
def test_non_integer_query_parameters_are_400(client: Client, path: str, words: str) -> None:
    refused(client.get(path), 400, words)


@pytest.mark.parametrize(("path", "content", "words"), [
    ("/apply", b"{not json", "not JSON"),
    ("/apply", b"[1, 2]", "expected a JSON object"),
    ("/apply", b'{"directory": 5}', "'directory' must be a string"),
    ("/scale", b"\xff\xfe", "not JSON"),
    ("/scale", b"", "expected a JSON object"),
    ("/scale", b'{"service": "a", "replicas": true}', "expected"),
    ("/scale", b'{"service": "a", "replicas": 1e9}', "expected"),
    ("/rollouts/alpha/undo", b"nope", "not JSON"),
    ("/rollouts/alpha/undo", b'{"to": ["x"]}', "'to' must be a string"),
    ("/rollouts/alpha/promote", b"nope", "not JSON"),
    ("/rollouts/alpha/abort", b'"abort"', "expected a JSON object"),
])
def test_malformed_bodies_are_400(client: Client, path: str, content: bytes, words: str) -> None:
    refused(client.post(path, content=content, headers={"Content-Type": "application/json"}), 400, words)


@pytest.mark.parametrize(("method", "path"), every_route())
def test_a_body_over_1_mib_is_413_on_every_route(client: Client, method: str, path: str) -> None:
    refused(client.request(method, path, content=b"x" * (MAX_BODY + 1)), 413, "larger than 1 MiB")


def test_a_streamed_body_over_1_mib_is_413_too(client: Client) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"{" + b" " * (MAX_BODY // 2)

    refused(client.post("/apply", content=chunks()), 413, "larger than 1 MiB")


def test_unknown_routes_and_methods_answer_json(client: Client) -> None:
    refused(client.get("/nothing-here"), 404)
    refused(client.get("/down"), 405)
