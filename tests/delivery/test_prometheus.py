"""Tests of the Prometheus provider: answer parsing with MockTransport, then a real server."""

from __future__ import annotations

import asyncio
import math
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from shipyard.errors import NoData, ProviderError
from shipyard.delivery.prometheus import query
from shipyard.proxy.window import WindowStats
from shipyard.errors import ShipyardError
from tests.prometheus import running_prometheus


def _run(base_url: str, promql: str, timeout: float = 5.0,
         transport: httpx.AsyncBaseTransport | None = None) -> float:
    return asyncio.run(query(base_url, promql, timeout, transport=transport))


def _answering(status: int, body: Any) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/query"
        assert request.url.params["query"] == "q"
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)
    return httpx.MockTransport(handle)


def _vector(*values: str) -> dict[str, Any]:
    result = [{"metric": {"i": str(i)}, "value": [1.0, v]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


@pytest.mark.parametrize(("body", "expected"), [
    (_vector("1.5"), 1.5),
    (_vector("+Inf"), math.inf),
    ({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "42"]}}, 42.0),
])
def test_values(body: dict[str, Any], expected: float) -> None:
    assert _run("http://prom/", "q", transport=_answering(200, body)) == expected


@pytest.mark.parametrize("body", [
    _vector(),
    _vector("NaN"),
    {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "NaN"]}},
])
def test_no_data(body: dict[str, Any]) -> None:
    with pytest.raises(NoData):
        _run("http://prom", "q", transport=_answering(200, body))


@pytest.mark.parametrize(("status", "body", "match"), [
    (200, _vector("1", "2"), "2 series"),
    (400, {"status": "error", "errorType": "bad_data", "error": "parse error"},
     "rejected query 'q' \\(HTTP 400\\): bad_data: parse error"),
    (503, "Service Unavailable", "not JSON"),
    (200, {"status": "success", "data": {"resultType": "matrix", "result": []}}, "a matrix"),
    (200, {"status": "success", "data": {"resultType": "vector", "result": [{"value": []}]}},
     "malformed"),
    (200, {"status": "success"}, "without data"),
    (200, [1, 2], "rejected"),
])
def test_provider_errors(status: int, body: Any, match: str) -> None:
    with pytest.raises(ProviderError, match=match):
        _run("http://prom", "q", transport=_answering(status, body))


def test_timeouts_and_connection_errors_are_provider_errors() -> None:
    def time_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(ProviderError, match="within 0.5s"):
        _run("http://prom", "q", 0.5, httpx.MockTransport(time_out))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    with pytest.raises(ProviderError, match="cannot reach prometheus") as caught:
        _run(f"http://127.0.0.1:{closed_port}", "up", 2.0)
    assert isinstance(caught.value, ShipyardError)
    assert not issubclass(NoData, ProviderError)


# --- a real Prometheus server scraping a /metrics page this test controls ---------------------

METRICS = {"text": ""}
HISTOGRAMS = {
    "shipyard_test_latency": ((100.0, 50), (200.0, 90), (500.0, 100), (math.inf, 100)),
    "shipyard_test_overflow": ((1.0, 0), (5.0, 0), (10.0, 4), (100.0, 10), (math.inf, 20)),
}


def _metrics_text(gauge: float) -> str:
    lines = [f"shipyard_test_gauge {gauge}",
             'shipyard_test_requests_total{release="canary"} 30',
             'shipyard_test_requests_total{release="primary"} 70']
    for name, buckets in HISTOGRAMS.items():
        for bound, count in buckets:
            le = "+Inf" if math.isinf(bound) else f"{bound:g}"
            lines.append(f'{name}_bucket{{le="{le}"}} {count}')
    return "\n".join(lines) + "\n"


class _MetricsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = METRICS["text"].encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def _eventually(promql: str, url: str, expected: float, deadline: float) -> float:
    """Query until the value is `expected` (scrapes are asynchronous) or the deadline passes."""
    value: float | None = None
    while time.monotonic() < deadline:
        try:
            value = _run(url, promql, 2.0)
            if value == pytest.approx(expected):
                return value
        except (NoData, ProviderError):
            pass
        time.sleep(0.2)
    pytest.fail(f"prometheus never returned {expected} for {promql!r} (last: {value})")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    METRICS["text"] = _metrics_text(42.5)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MetricsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    target = f"127.0.0.1:{server.server_address[1]}"
    try:
        with running_prometheus(tmp_path_factory.mktemp("prometheus"), [target]) as url:
            _eventually("shipyard_test_gauge", url, 42.5, time.monotonic() + 15)
            yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_real_prometheus_values(prometheus: str) -> None:
    assert _run(prometheus, "shipyard_test_gauge") == 42.5
    assert _run(prometheus, "sum(shipyard_test_requests_total)") == 100.0
    assert _run(prometheus, "scalar(shipyard_test_gauge) * 2") == 85.0
    assert _run(prometheus, 'shipyard_test_requests_total{release="canary"}') == 30.0


def test_real_prometheus_follows_new_scrapes(prometheus: str) -> None:
    METRICS["text"] = _metrics_text(7.0)
    try:
        _eventually("shipyard_test_gauge", prometheus, 7.0, time.monotonic() + 8)
    finally:
        METRICS["text"] = _metrics_text(42.5)


def test_real_prometheus_histogram_quantile_matches_window_quantile(prometheus: str) -> None:
    for name, buckets in HISTOGRAMS.items():
        window = WindowStats(requests=100, errors_5xx=0, seconds=60, latency_buckets=buckets)
        for q in (0.1, 0.25, 0.5, 0.7, 0.9, 0.95, 0.99, 1.0):
            promql = f"histogram_quantile({q}, {name}_bucket)"
            assert _run(prometheus, promql) == pytest.approx(window.quantile(q)), (name, q)


def test_real_prometheus_no_data_and_errors(prometheus: str) -> None:
    with pytest.raises(NoData, match="matched no series"):
        _run(prometheus, "shipyard_test_missing_metric")
    with pytest.raises(NoData, match="NaN"):
        _run(prometheus, "(shipyard_test_gauge - shipyard_test_gauge) / 0")
    with pytest.raises(ProviderError, match="2 series"):
        _run(prometheus, "shipyard_test_requests_total")
    with pytest.raises(ProviderError, match="bad_data"):
        _run(prometheus, "sum(")
    with pytest.raises(ProviderError, match="matrix"):
        _run(prometheus, "shipyard_test_gauge[1m]")
