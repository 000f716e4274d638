"""The example shop's prod: `orders` keeps its orders in its own PostgreSQL database (issue 16's first "Done when").

A copy of examples/shop brought up as prod by a real control plane, trimmed for speed (catalog and
orders only, fewer replicas, free ports) and with a database for catalog too, so that catalog has a
role whose credentials can be tried against orders' database. The real PostgreSQL server of the
environment, the real sandboxed orders instances (their python3 + Debian's psycopg2). Committed rows
survive a restart of the control plane and a crash of PostgreSQL, and the crash fails no request.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import urllib.request
from pathlib import Path

import pytest

from shipyard.data.postgres import Grant, PostgresServer
from tests.controlplane import ControlPlane, free_port, http_get, pid_alive, wait_for
from tests.databases import psql as _psql

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shop"


def _prod_copy(target: Path) -> Path:
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("__pycache__", ".venv"))
    overlay = target / "environments" / "prod.yaml"
    text = re.sub(r"port: \d+", lambda _: f"port: {free_port()}", overlay.read_text())
    text = text.replace("replicas: 3", "replicas: 2").replace("  frontend:\n    replicas: 2", "  frontend:\n    replicas: 0")
    assert "databases: [{name: orders, engine: postgres}]" in text, "prod's orders declares its database"
    text = text.replace("    env:\n      CATALOG_CURRENCY: USD\n",
                        "    env:\n      CATALOG_CURRENCY: USD\n    databases: [{name: catalog}]\n", 1)
    overlay.write_text(text)
    return target


def _post_order(endpoint: str, product_id: int) -> dict:
    request = urllib.request.Request(f"http://{endpoint}/orders", method="POST",
                                     data=json.dumps({"product_id": product_id, "quantity": 2}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        return json.loads(response.read())


@pytest.fixture
def prod(tmp_path: Path):
    plane = ControlPlane(_prod_copy(tmp_path / "shop"), tmp_path / "state", environment="prod")
    yield plane
    try:
        plane.teardown()
    finally:
        PostgresServer(plane.state_dir).remove()


def test_prod_orders_writes_its_own_postgres_database_that_catalog_cannot_reach(prod: ControlPlane) -> None:
    prod.up()
    prod.wait_ready("orders", 2, timeout=60)
    endpoint = "127.0.0.1:" + prod.service("orders")["endpoint"].rsplit(":", 1)[1]
    placed = [_post_order(endpoint, product_id) for product_id in (1, 2, 3)]
    assert [order["product_id"] for order in placed] == [1, 2, 3] and placed[0]["total_cents"] > 0

    server = PostgresServer(prod.state_dir)  # the superuser, over the server's private socket
    rows = server.sql("SELECT id, product_id, quantity FROM orders ORDER BY id;", database="orders").split()
    assert rows == [f"{order['id']}|{order['product_id']}|2" for order in placed], "the rows are in PostgreSQL"
    assert not (prod.state_dir / "data" / "orders" / "orders.db").exists(), "prod's orders does not use SQLite"

    catalog = server.url(Grant("catalog", "catalog", "DATABASE_URL"))
    intruder = _psql(catalog, "SELECT count(*) FROM orders", database="orders")
    assert intruder.returncode != 0 and "no pg_hba.conf entry" in intruder.stderr, intruder
    assert _psql(catalog, "SELECT 1").stdout.strip() == "1", "catalog's credentials do work on its own database"

    killed = prod.control_pid()
    os.kill(killed, signal.SIGKILL)  # the control plane dies; PostgreSQL and the rows do not care
    wait_for(lambda: not pid_alive(killed), 10, 0.05, "the control plane to exit")
    prod.up()
    listed = wait_for(lambda: json.loads(http_get(f"http://{endpoint}/orders")[2]), 30, 0.2, "orders to answer")
    assert sorted(order["id"] for order in listed) == sorted(order["id"] for order in placed)
    assert _post_order(endpoint, 1)["id"] > max(order["id"] for order in placed)

    server.stop("immediate")  # PostgreSQL crashes: the control plane starts it again, it recovers from its WAL
    wait_for(lambda: "PostgreSQL is back" in prod.cli("events", "-o", "json").stdout, 60, 0.2, "PostgreSQL again")
    status, _, body = http_get(f"http://{endpoint}/orders")  # the instances' pooled connections were cut
    assert status == 200 and len(json.loads(body)) == len(placed) + 1, "no committed row lost, no failed request"
