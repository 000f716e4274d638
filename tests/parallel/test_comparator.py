"""The comparator against real processes: two live instances whose answers carry a changing timestamp, and a
candidate that changes one field; copies are acknowledged at once and compared off the caller's path."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import uvicorn

from shipyard.parallel.comparator import Comparator
from shipyard.parallel.compare import Settings, verdict
from tests.controlplane import free_port, wait_for

APP = '''
import json, os, time, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"item": self.path, "price": int(os.environ["PRICE"]), "currency": "EUR",
                           "timestamp": time.time_ns(), "request": str(uuid.uuid4())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_GET
    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
'''


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[dict[str, str]]:
    script = tmp_path / "app.py"
    script.write_text(APP)
    processes, urls = [], {}
    try:
        for name, price in (("primary", 10), ("secondary", 10), ("candidate", 12), ("same", 10)):
            port = free_port()
            processes.append(subprocess.Popen([sys.executable, str(script)], env={"PORT": str(port), "PRICE": str(price)}))
            urls[name] = f"http://127.0.0.1:{port}"
            wait_for(lambda u=urls[name]: httpx.get(u + "/").status_code == 200, timeout=10, what=f"{name} up")
        yield urls
    finally:
        for process in processes:
            process.kill()
            process.wait()


class Running:
    """A comparator served by uvicorn in a thread."""

    def __init__(self, comparator: Comparator) -> None:
        self.comparator = comparator
        self.url = f"http://127.0.0.1:{free_port()}"
        port = int(self.url.rsplit(":", 1)[1])
        self.server = uvicorn.Server(uvicorn.Config(comparator.app(), host="127.0.0.1", port=port,
                                                    log_level="warning", lifespan="off"))
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        await self.server.serve()
        await self.comparator.close()

    def __enter__(self) -> "Running":
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=10, what="the comparator")
        return self

    def settle(self, count: int) -> None:
        wait_for(lambda: self.comparator.report.compared + self.comparator.failed >= count, timeout=20,
                 what=f"{count} comparisons")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def test_a_changed_field_is_named_and_the_timestamp_is_noise(backends: dict[str, str]) -> None:
    settings = Settings(ignore_json=("$.request",), max_differences=0)
    comparator = Comparator(backends["primary"], backends["secondary"], backends["candidate"], settings)
    with Running(comparator) as running, httpx.Client() as client:
        started = time.perf_counter()
        for index in range(40):
            assert client.get(f"{running.url}/items/{index % 4}").status_code == 202
        acknowledged = time.perf_counter() - started
        assert client.post(f"{running.url}/orders", content=b"{}").status_code == 204  # POST is never duplicated
        running.settle(40)
    report = comparator.summary()
    assert report["failed"] == 0 and report["compared"] == 40 and report["differing"] == 40
    assert {(d["route"], d["field"]) for d in report["differences"]} == {
        (f"GET /items/{i}", "$.price") for i in range(4)}
    assert all(d["examples"][0] == {"primary": 10, "candidate": 12} for d in report["differences"])
    assert all(fields == ["$.timestamp"] for fields in report["noise"].values())
    passed, message = verdict(comparator.report, settings)
    assert not passed and "$.price" in message
    assert acknowledged < 20  # every copy was acknowledged without waiting for three answers each


def test_an_identical_candidate_passes(backends: dict[str, str]) -> None:
    settings = Settings(ignore_json=("$.request",), max_differences=0)
    comparator = Comparator(backends["primary"], backends["secondary"], backends["same"], settings)
    with Running(comparator) as running, httpx.Client() as client:
        for index in range(10):
            client.get(f"{running.url}/items/{index}")
        running.settle(10)
    assert comparator.summary()["differences"] == []
