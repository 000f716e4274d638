"""End-to-end tests of the example shop's catalog, orders and frontend services as real processes."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

# ---- harness: run the services as real subprocesses on free ports ----

APPS_DIR = Path(__file__).resolve().parents[2] / "examples" / "shop" / "apps"
SERVICE_NAMES = ("catalog", "orders", "frontend")
# Variables the services read; cleared so that the developer's shell cannot leak into tests.
SERVICE_ENV_VARS = (
    "PORT", "SHIPYARD_VERSION", "SHIPYARD_DATA_DIR", "FAIL_RATE", "LATENCY_MS",
    "CATALOG_URL", "ORDERS_URL", "CATALOG_CURRENCY", "FRONTEND_TITLE", "DATABASE_URL",
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HTTPResult:
    """A complete HTTP response."""

    status: int
    headers: Message
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(url: str, method: str = "GET", body: bytes | str | None = None,
                 headers: dict[str, str] | None = None, timeout: float = 10.0) -> HTTPResult:
    """One request on a fresh connection (stdlib, never through a proxy)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target or "/", body=body, headers=headers or {})
        response = connection.getresponse()
        return HTTPResult(response.status, response.headers, response.read())
    finally:
        connection.close()


def post_json(url: str, payload: Any) -> HTTPResult:
    """POST a JSON document."""
    return http_request(url, "POST", json.dumps(payload), {"Content-Type": "application/json"})


@dataclass
class Service:
    """One running service process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        """Everything the service wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, wait, SIGKILL if needed; return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


@dataclass
class Launcher:
    """Starts services under a base directory and stops them all at the end."""

    base_dir: Path
    services: list[Service] = field(default_factory=list)

    def start(self, name: str, env: dict[str, str] | None = None, port: int | None = None,
              wait: bool = True) -> Service:
        """Start examples/shop/apps/<name>/app.py with cwd = its directory and wait for /healthz."""
        port = port or free_port()
        full_env = {k: v for k, v in os.environ.items() if k not in SERVICE_ENV_VARS}
        full_env.update({"PORT": str(port), **(env or {})})
        log_path = self.base_dir / f"{name}-{port}-{len(self.services)}.log"
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "app.py"], cwd=APPS_DIR / name, env=full_env,
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            )
        service = Service(name, port, process, log_path, full_env)
        self.services.append(service)
        if wait:
            wait_healthy(service)
        return service

    def close(self) -> None:
        for service in self.services:
            service.stop()


def wait_healthy(service: Service, timeout: float = 10.0) -> None:
    """Poll GET /healthz until it answers 200; fail with the service's output otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            pytest.fail(f"{service.name} exited with {service.process.returncode}:\n{service.output()}")
        try:
            if http_request(service.url + "/healthz", timeout=1.0).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.02)
    pytest.fail(f"{service.name} not healthy after {timeout}s:\n{service.output()}")


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    """A launcher whose services are stopped when the test ends."""
    launcher = Launcher(tmp_path)
    try:
        yield launcher
    finally:
        launcher.close()


@dataclass
class Shop:
    """The three services wired together."""

    catalog: Service
    orders: Service
    frontend: Service
    data_dir: Path


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """catalog, orders and frontend running together for a whole test module."""
    base = tmp_path_factory.mktemp("shop")
    launcher = Launcher(base)
    try:
        catalog = launcher.start("catalog", {"SHIPYARD_VERSION": "1.4.0", "CATALOG_CURRENCY": "EUR"}, wait=False)
        data_dir = base / "orders-data"
        orders = launcher.start("orders", {
            "SHIPYARD_VERSION": "2.0.1", "CATALOG_URL": catalog.url, "SHIPYARD_DATA_DIR": str(data_dir),
        }, wait=False)
        frontend = launcher.start("frontend", {
            "SHIPYARD_VERSION": "3.1.0", "CATALOG_URL": catalog.url, "ORDERS_URL": orders.url,
            "FRONTEND_TITLE": "Test Shop",
        }, wait=False)
        for service in launcher.services:
            wait_healthy(service)
        yield Shop(catalog, orders, frontend, data_dir)
    finally:
        launcher.close()


# ---- health, version, logging, keep-alive ----


def test_healthz_and_version_header_on_every_response(shop: Shop) -> None:
    for service, version in ((shop.catalog, "1.4.0"), (shop.orders, "2.0.1"), (shop.frontend, "3.1.0")):
        health = http_request(service.url + "/healthz")
        assert (health.status, health.body) == (200, b"ok")
        assert health.headers["X-Service-Version"] == version
        for method, path in (("GET", "/no-such-path"), ("DELETE", "/healthz"), ("BREW", "/")):
            result = http_request(service.url + path, method)
            assert result.status in (404, 405, 501)
            assert result.headers["X-Service-Version"] == version, (service.name, method, path)


def test_version_defaults_to_dev(launcher: Launcher) -> None:
    catalog = launcher.start("catalog")
    assert http_request(catalog.url + "/products").headers["X-Service-Version"] == "dev"


def test_logs_startup_line_and_one_line_per_request(shop: Shop) -> None:
    http_request(shop.catalog.url + "/products")
    output = shop.catalog.output()
    assert re.search(r"^catalog version=1\.4\.0 listening on http://127\.0\.0\.1:\d+", output, re.M)
    assert re.search(r"^GET /products 200 \d+\.\dms$", output, re.M)


def test_keep_alive_serves_many_requests_on_one_connection(shop: Shop) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", shop.catalog.port, timeout=5)
    try:
        connection.connect()
        sock = connection.sock
        for path in ("/healthz", "/products", "/products/1", "/nope", "/products"):
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            assert response.headers["Content-Length"] is not None
            assert response.headers.get("Connection") != "close"
        assert connection.sock is sock  # never reconnected
    finally:
        connection.close()


# ---- catalog ----


def test_catalog_products(shop: Shop) -> None:
    result = http_request(shop.catalog.url + "/products")
    assert result.status == 200
    assert result.headers["Content-Type"] == "application/json"
    products = result.json()
    assert isinstance(products, list) and len(products) >= 3
    for product in products:
        assert set(product) == {"id", "name", "price_cents", "currency"}
        assert isinstance(product["price_cents"], int)
        assert product["currency"] == "EUR"
    first = products[0]
    assert http_request(f"{shop.catalog.url}/products/{first['id']}").json() == first
    missing = http_request(shop.catalog.url + "/products/9999")
    assert missing.status == 404 and "error" in missing.json()


def test_catalog_currency_comes_from_environment(launcher: Launcher) -> None:
    catalog = launcher.start("catalog", {"CATALOG_CURRENCY": "gbp"})
    assert {p["currency"] for p in http_request(catalog.url + "/products").json()} == {"GBP"}


def test_invalid_configuration_exits_2(launcher: Launcher) -> None:
    for name, env in (("catalog", {"FAIL_RATE": "2"}), ("orders", {"CATALOG_URL": "not a url"})):
        service = launcher.start(name, env, wait=False)
        assert service.process.wait(10) == 2
        assert name in service.output()


# ---- orders ----


def test_create_order_prices_it_with_real_catalog(shop: Shop) -> None:
    product = http_request(shop.catalog.url + "/products/2").json()
    result = post_json(shop.orders.url + "/orders", {"product_id": 2, "quantity": 3})
    assert result.status == 201, result.text
    order = result.json()
    assert order["product_id"] == 2 and order["quantity"] == 3
    assert order["product_name"] == product["name"]
    assert order["unit_price_cents"] == product["price_cents"]
    assert order["total_cents"] == 3 * product["price_cents"]
    assert order["currency"] == "EUR"
    assert order["orders_version"] == "2.0.1"
    assert result.headers["Location"] == f"/orders/{order['id']}"
    assert http_request(f"{shop.orders.url}/orders/{order['id']}").json() == order
    assert re.search(r"^GET /products/2 200 ", shop.catalog.output(), re.M)  # it really asked catalog


def test_list_orders_newest_first_with_limit(shop: Shop) -> None:
    ids = [post_json(shop.orders.url + "/orders", {"product_id": 1, "quantity": 1}).json()["id"] for _ in range(3)]
    listed = http_request(shop.orders.url + "/orders?limit=2").json()
    assert [o["id"] for o in listed] == [ids[2], ids[1]]
    assert len(http_request(shop.orders.url + "/orders").json()) >= 3
    assert http_request(shop.orders.url + "/orders?limit=zero").status == 400


@pytest.mark.parametrize("payload", [
    {"product_id": 9999, "quantity": 1},
    {"product_id": "1", "quantity": 1},
    {"product_id": 1, "quantity": 0},
    {"quantity": 1},
    [1, 2],
])
def test_bad_orders_are_400_with_json_error(shop: Shop, payload: object) -> None:
    result = post_json(shop.orders.url + "/orders", payload)
    assert result.status == 400
    assert isinstance(result.json()["error"], str)


def test_unknown_product_error_names_it(shop: Shop) -> None:
    result = post_json(shop.orders.url + "/orders", {"product_id": 9999, "quantity": 1})
    assert result.json() == {"error": "unknown product 9999"}


def test_catalog_unreachable_gives_502(launcher: Launcher) -> None:
    orders = launcher.start("orders", {
        "CATALOG_URL": f"http://127.0.0.1:{free_port()}", "SHIPYARD_DATA_DIR": str(launcher.base_dir / "d"),
    })
    result = post_json(orders.url + "/orders", {"product_id": 1, "quantity": 1})
    assert result.status == 502
    assert "catalog" in result.json()["error"]
    assert http_request(orders.url + "/orders").json() == []


def test_orders_persist_across_restart_in_wal_mode(launcher: Launcher) -> None:
    catalog = launcher.start("catalog")
    data_dir = launcher.base_dir / "orders-data"
    env = {"CATALOG_URL": catalog.url, "SHIPYARD_DATA_DIR": str(data_dir)}
    orders = launcher.start("orders", env)
    created = [post_json(orders.url + "/orders", {"product_id": p, "quantity": 2}).json() for p in (1, 3)]
    assert orders.stop() == 0

    with contextlib.closing(sqlite3.connect(data_dir / "orders.db")) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    restarted = launcher.start("orders", env, port=orders.port)
    assert http_request(restarted.url + "/orders").json() == created[::-1]
    third = post_json(restarted.url + "/orders", {"product_id": 4, "quantity": 1}).json()
    assert third["id"] == created[-1]["id"] + 1


# ---- frontend ----


def test_frontend_order_form_creates_order_and_page_shows_it(shop: Shop) -> None:
    result = http_request(shop.frontend.url + "/order", "POST", "product_id=3&quantity=2",
                          {"Content-Type": "application/x-www-form-urlencoded"})
    assert result.status == 303
    match = re.fullmatch(r"/\?ordered=(\d+)", result.headers["Location"])
    assert match, result.headers["Location"]
    order_id = int(match.group(1))

    page = http_request(shop.frontend.url + f"/?ordered={order_id}")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "<title>Test Shop</title>" in page.text
    assert f"Order #{order_id} placed." in page.text
    product = http_request(shop.catalog.url + "/products/3").json()
    assert re.search(rf"<td>Order #{order_id}</td><td>{re.escape(product['name'])}</td>", page.text)
    assert '<form method="post" action="/order">' in page.text

    summary = http_request(shop.frontend.url + "/api/summary").json()
    assert summary["errors"] == {}
    assert summary["orders"][0]["id"] == order_id
    assert summary["products"] == http_request(shop.catalog.url + "/products").json()


def test_frontend_reports_rejected_order(shop: Shop) -> None:
    result = http_request(shop.frontend.url + "/order", "POST", "product_id=9999&quantity=1",
                          {"Content-Type": "application/x-www-form-urlencoded"})
    assert result.status == 303
    page = http_request(shop.frontend.url + result.headers["Location"])
    assert "Could not place the order: unknown product 9999" in page.text


def test_frontend_degrades_when_dependencies_fail(launcher: Launcher) -> None:
    failing_catalog = launcher.start("catalog", {"FAIL_RATE": "1"})
    frontend = launcher.start("frontend", {
        "CATALOG_URL": failing_catalog.url, "ORDERS_URL": f"http://127.0.0.1:{free_port()}",
        "FRONTEND_TITLE": "Degraded <Shop>",
    })
    page = http_request(frontend.url + "/")
    assert page.status == 200
    assert "<title>Degraded &lt;Shop&gt;</title>" in page.text
    assert "The catalog service is unavailable" in page.text
    assert "The orders service is unavailable" in page.text
    summary = http_request(frontend.url + "/api/summary").json()
    assert summary["products"] is None and summary["orders"] is None
    assert set(summary["errors"]) == {"catalog", "orders"}
    ordered = http_request(frontend.url + "/order", "POST", "product_id=1&quantity=1")
    assert ordered.status == 303 and "error=" in ordered.headers["Location"]


# ---- fault injection ----


def test_fail_rate_one_gives_500_except_healthz(launcher: Launcher) -> None:
    catalog = launcher.start("catalog", {"FAIL_RATE": "1", "SHIPYARD_VERSION": "9.9.9"})
    for _ in range(5):
        result = http_request(catalog.url + "/products")
        assert result.status == 500
        assert result.headers["X-Service-Version"] == "9.9.9"
        assert "injected" in result.json()["error"]
    assert http_request(catalog.url + "/healthz").status == 200

    orders = launcher.start("orders", {"CATALOG_URL": catalog.url, "SHIPYARD_DATA_DIR": str(launcher.base_dir)})
    assert post_json(orders.url + "/orders", {"product_id": 1, "quantity": 1}).status == 502


def test_latency_is_added_and_requests_run_concurrently(launcher: Launcher) -> None:
    catalog = launcher.start("catalog", {"LATENCY_MS": "300"})
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda _: http_request(catalog.url + "/products").status, range(6)))
    elapsed = time.monotonic() - started
    assert statuses == [200] * 6
    assert 0.3 <= elapsed < 1.2  # in parallel, not 6 x 0.3 s
    assert http_request(catalog.url + "/healthz", timeout=0.25).status == 200  # health is never delayed


# ---- graceful shutdown ----


def test_sigterm_finishes_in_flight_request_then_exits_0(launcher: Launcher) -> None:
    catalog = launcher.start("catalog", {"LATENCY_MS": "1500"})

    idle = http.client.HTTPConnection("127.0.0.1", catalog.port, timeout=5)  # an idle pooled connection
    idle.request("GET", "/healthz")
    idle.getresponse().read()

    results: list[HTTPResult | BaseException] = []

    def slow_request() -> None:
        try:
            results.append(http_request(catalog.url + "/products/1"))
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            results.append(e)

    thread = threading.Thread(target=slow_request)
    try:
        thread.start()
        time.sleep(0.3)  # the request is now in the server, sleeping LATENCY_MS
        sent_at = time.monotonic()
        catalog.process.terminate()
        time.sleep(0.4)
        assert catalog.process.poll() is None, "exited before the in-flight request finished"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", catalog.port), timeout=2).close()
        thread.join(5)
        assert len(results) == 1 and isinstance(results[0], HTTPResult), results
        assert results[0].status == 200
        assert results[0].json()["id"] == 1
        assert results[0].headers["Connection"] == "close"
        assert catalog.process.wait(5) == 0
        assert time.monotonic() - sent_at < 3.0  # the idle keep-alive connection did not hold it up
        output = catalog.output()
        assert "received SIGTERM" in output and "catalog stopped" in output and "timed out" not in output
        assert "Traceback" not in output
    finally:
        idle.close()
        thread.join(5)


def test_every_service_exits_0_on_sigterm(launcher: Launcher) -> None:
    services = [
        launcher.start("catalog", wait=False),
        launcher.start("orders", {"SHIPYARD_DATA_DIR": str(launcher.base_dir / "d")}, wait=False),
        launcher.start("frontend", wait=False),
    ]
    for service in services:
        wait_healthy(service)
    assert [service.stop() for service in services] == [0, 0, 0]


# ---- source layout ----


def _section(source: str, marker: str) -> str:
    match = re.search(rf"# ---- {marker}: begin.*?# ---- {marker}: end ----", source, re.S)
    assert match, marker
    return match.group(0)


def test_services_are_self_contained_and_share_an_identical_kit() -> None:
    sources = {name: (APPS_DIR / name / "app.py").read_text() for name in SERVICE_NAMES}
    kits = {_section(source, "service kit") for source in sources.values()}
    assert len(kits) == 1, "the service kit differs between services; keep the copies identical"
    assert _section(sources["orders"], "upstream client") == _section(sources["frontend"], "upstream client")
    for name, source in sources.items():
        imported = {m.split(".")[0] for m in re.findall(r"^(?:from|import) ([\w.]+)", source, re.M)}
        assert imported <= sys.stdlib_module_names | {"__future__"}, (name, imported - sys.stdlib_module_names)
    assert (APPS_DIR / "README.md").is_file()

