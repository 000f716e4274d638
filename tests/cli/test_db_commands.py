"""Backing databases end to end: a real PostgreSQL server per environment, real roles, real instances.

`orders` reaches its own database through DATABASE_URL; `catalog` cannot connect to it; committed rows
survive a restart of the control plane and a crash of PostgreSQL; backup, restore and rotate work.
One scenario, because initialising a PostgreSQL cluster is most of its cost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest

from shipyard.data.postgres import PostgresServer
from tests.controlplane import ControlPlane, http_get, pid_alive, wait_for
from tests.databases import psql as _psql
from tests.load import Load
from tests.projects import probe_service, write_project


def _env(plane: ControlPlane, service: str) -> dict[str, str]:
    port = plane.wait_ready(service, 1)[0]["port"]
    return json.loads(http_get(f"http://127.0.0.1:{port}/")[2])["env"]


@pytest.fixture
def plane(tmp_path: Path):
    migrate = ["sh", "-c", "psql -X -q \"$DATABASE_URL\" -c 'CREATE TABLE IF NOT EXISTS schema_version (v int)'"]
    services = [probe_service("orders", databases=[{"name": "orders"}], release={"command": migrate}),
                probe_service("catalog", databases=[{"name": "catalog"}])]
    created = ControlPlane(write_project(tmp_path / "project", services), tmp_path / "state")
    yield created
    try:
        created.teardown()
    finally:
        PostgresServer(created.state_dir).remove()  # even when `down` fails, no server or data is left behind


def test_each_service_reaches_only_its_own_database_keeps_its_rows_and_rotates(plane: ControlPlane, tmp_path: Path) -> None:
    plane.up()
    orders_url, catalog_url = _env(plane, "orders")["DATABASE_URL"], _env(plane, "catalog")["DATABASE_URL"]
    assert urlparse(orders_url).hostname == "127.0.0.1" and urlparse(orders_url).path == "/orders"
    created = _psql(orders_url, "CREATE TABLE orders (id int primary key); INSERT INTO orders VALUES (1), (2);")
    assert created.returncode == 0, created.stderr

    migrated = _psql(orders_url, "SELECT count(*) FROM schema_version")
    assert migrated.stdout.strip() == "0", "the release phase ran against the service's database: " + migrated.stderr

    intruder = _psql(catalog_url, "SELECT count(*) FROM orders", database="orders")
    assert intruder.returncode != 0 and "no pg_hba.conf entry" in intruder.stderr
    assert _psql(catalog_url, "SELECT 1").stdout.strip() == "1", "catalog reaches its own database"

    password = urlparse(orders_url).password or ""
    assert len(password) >= 24
    texts = [plane.cli("status", "-o", "json").stdout, plane.cli("events", "-o", "json").stdout,
             (plane.state_dir / "control-plane.log").read_text(errors="replace")]
    texts += [p.read_bytes().decode("latin-1") for p in plane.state_dir.glob("state.db*")]
    texts += [Path(f"/proc/{pid}/cmdline").read_bytes().decode("latin-1") for pid in plane.seen_pids if pid_alive(pid)]
    assert not [t for t in texts if password in t], "the password appears in an output, the store or argv"

    os.kill(plane.control_pid(), signal.SIGKILL)  # the control plane dies; the database does not care
    plane.up()
    server = PostgresServer(plane.state_dir)
    server.stop("immediate")                      # PostgreSQL crashes
    assert not server.alive()
    wait_for(lambda: "DatabaseStarted" in plane.cli("events", "-o", "json").stdout, 60, 0.5,
             "the control plane to start PostgreSQL again")
    assert server.alive()
    assert _psql(orders_url, "SELECT count(*) FROM orders").stdout.strip() == "2", "no committed row lost"

    dump = tmp_path / "orders.dump"
    plane.cli("db", "backup", "orders", "-o", str(dump))
    assert _psql(orders_url, "DELETE FROM orders").returncode == 0
    plane.cli("db", "restore", "orders", "-i", str(dump))
    assert _psql(orders_url, "SELECT count(*) FROM orders").stdout.strip() == "2"
    shell = subprocess.run([*__import__("tests.controlplane", fromlist=["SHIPYARD"]).SHIPYARD, "db", "shell",
                            "orders", "--state-dir", str(plane.state_dir)], input="SELECT max(id) FROM orders;\n",
                           capture_output=True, text=True, timeout=60)
    assert shell.returncode == 0 and "2" in shell.stdout

    # rotation: the instances roll onto the new password, with no failed request
    release = plane.service("orders")["release"]
    port = int(plane.service("orders")["endpoint"].rsplit(":", 1)[1])
    with Load(port) as load:
        plane.cli("db", "rotate", "orders")
        wait_for(lambda: plane.instances("orders", "ready") and all(
            i["release"] != release for i in plane.instances("orders")), 40, 0.2, "orders on a new release")
    assert load.result.ok > 20 and not load.result.failures, load.result.failures[:5]
    new_url = _env(plane, "orders")["DATABASE_URL"]
    assert new_url != orders_url
    assert _psql(new_url, "SELECT count(*) FROM orders").stdout.strip() == "2"
    assert "password authentication failed" in _psql(orders_url, "SELECT 1").stderr


def test_two_services_cannot_share_a_database(tmp_path: Path) -> None:
    from tests.controlplane import run_cli

    project = write_project(tmp_path / "project", [probe_service("orders", databases=[{"name": "shop"}]),
                                                    probe_service("catalog", databases=[{"name": "shop"}])])
    result = run_cli("validate", str(project), check=False)
    assert result.returncode == 1 and "database `shop` already belongs to `catalog`" in result.stderr
