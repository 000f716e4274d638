"""Redis as a second engine: a real redis-server per environment, an ACL user per service.

The `redis` PyPI client is the independent second client: it proves that another service's user cannot
read a service's keys, that the default user is off, and that acknowledged writes survive a crash of
Redis (append-only file) and a restart of the control plane.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis

from shipyard.data.postgres import Grant
from shipyard.data.redis import RedisServer
from tests.controlplane import SHIPYARD, ControlPlane, http_get, pid_alive, wait_for
from tests.projects import probe_service, write_project

CACHE = Grant("orders", "cache", "REDIS_URL")
SESSIONS = Grant("catalog", "sessions", "REDIS_URL")


@pytest.fixture
def server(tmp_path: Path):
    created = RedisServer(tmp_path / "state")
    yield created
    created.remove()


def _pid(server: RedisServer) -> int:
    return int((server.data / "redis.pid").read_text())


def test_each_service_user_reaches_only_its_own_keys(server: RedisServer) -> None:
    server.ensure([CACHE, SESSIONS])
    orders, catalog = redis.Redis.from_url(server.url(CACHE)), redis.Redis.from_url(server.url(SESSIONS))
    assert orders.set("cache:basket:1", "3") and orders.get("cache:basket:1") == b"3"
    for attempt in (lambda: catalog.get("cache:basket:1"), lambda: catalog.set("cache:basket:1", "0"),
                    lambda: orders.set("basket:1", "x"), lambda: orders.flushall(), lambda: orders.keys("*")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            attempt()
    assert catalog.set("sessions:a", "1")

    held = redis.Redis.from_url(server.url(CACHE), single_connection_client=True)
    assert held.get("cache:basket:1") == b"3"
    server.ensure([CACHE, Grant("payments", "payments", "REDIS_URL")])  # the next apply: a service in, one out
    assert held.get("cache:basket:1") == b"3", "an apply keeps a service's open connections"
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(server.url(SESSIONS)).ping()  # catalog no longer has a Redis database
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=server.port).get("cache:basket:1")  # the default user is off
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=server.port, username="orders", password="guess").ping()
    for address in _other_addresses():  # 127.0.0.1 only
        with pytest.raises(redis.exceptions.ConnectionError):
            redis.Redis(host=address, port=server.port, socket_connect_timeout=2).ping()

    password = urlparse(server.url(CACHE)).password or ""
    assert len(password) >= 24
    assert password not in (server.data / "users.acl").read_text(), "the ACL file holds hashes only"
    assert password not in Path(f"/proc/{_pid(server)}/cmdline").read_text()
    if os.geteuid() == 0:
        assert Path(f"/proc/{_pid(server)}/status").read_text().split("Uid:")[1].split()[0] == \
            str(__import__("pwd").getpwnam("redis").pw_uid), "root runs Redis as the unprivileged `redis` user"


def test_acknowledged_writes_survive_a_crash_and_a_rotation_locks_the_old_password_out(server: RedisServer) -> None:
    server.ensure([CACHE])
    old_url = server.url(CACHE)
    assert redis.Redis.from_url(old_url).set("cache:n", "41")
    os.kill(_pid(server), signal.SIGKILL)
    wait_for(lambda: not server.alive(), 10, 0.05, "Redis to die")
    server.ensure_running()
    assert redis.Redis.from_url(old_url).get("cache:n") == b"41", "appendfsync always: nothing acknowledged is lost"

    held = redis.Redis.from_url(old_url, single_connection_client=True)
    assert held.get("cache:n") == b"41"
    server.rotate("orders")
    assert held.get("cache:n") == b"41", "connections already authenticated keep working, as in PostgreSQL"
    assert server.url(CACHE) != old_url
    assert redis.Redis.from_url(server.url(CACHE)).incr("cache:n") == 42
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(old_url).ping()


def _other_addresses() -> list[str]:
    """This machine's IPv4 addresses that are not loopback (none on an isolated machine)."""
    found = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return [address for address in found if "." in address and not address.startswith("127.")]


@pytest.fixture
def plane(tmp_path: Path):
    services = [probe_service("orders", databases=[{"name": "cache", "engine": "redis"}]),
                probe_service("catalog", databases=[{"name": "sessions", "engine": "redis"}])]
    created = ControlPlane(write_project(tmp_path / "project", services), tmp_path / "state")
    yield created
    try:
        created.teardown()
    finally:
        RedisServer(created.state_dir).remove()


def _env(plane: ControlPlane, service: str) -> dict[str, str]:
    port = plane.wait_ready(service, 1)[0]["port"]
    return json.loads(http_get(f"http://127.0.0.1:{port}/")[2])["env"]


def test_the_control_plane_gives_redis_url_supervises_redis_and_keeps_the_keys(plane: ControlPlane) -> None:
    plane.up()
    orders_url, catalog_url = _env(plane, "orders")["REDIS_URL"], _env(plane, "catalog")["REDIS_URL"]
    assert "DATABASE_URL" not in _env(plane, "orders")
    assert urlparse(orders_url).hostname == "127.0.0.1" and urlparse(orders_url).username == "orders"
    redis.Redis.from_url(orders_url).set("cache:greeting", "hello")
    with pytest.raises(redis.exceptions.NoPermissionError):
        redis.Redis.from_url(catalog_url).get("cache:greeting")

    server = RedisServer(plane.state_dir)
    os.kill(_pid(server), signal.SIGKILL)  # Redis crashes: the control plane starts it again
    wait_for(lambda: "Redis is back" in plane.cli("events", "-o", "json").stdout, 60, 0.2,
             "the control plane to start Redis again")
    killed = plane.control_pid()
    os.kill(killed, signal.SIGKILL)  # the control plane dies: Redis does not care, the next one re-adopts it
    wait_for(lambda: not pid_alive(killed), 10, 0.05, "the control plane to exit")
    redis_pid = _pid(server)
    plane.up()
    assert _pid(server) == redis_pid and server.alive(), "re-adopted, not restarted"
    assert redis.Redis.from_url(orders_url).get("cache:greeting") == b"hello"

    shell = subprocess.run([*SHIPYARD, "db", "shell", "orders", "--state-dir", str(plane.state_dir)],
                           input="GET cache:greeting\nGET sessions:x\n", capture_output=True, text=True, timeout=60)
    assert shell.returncode == 0 and shell.stdout.splitlines()[0] == "hello", shell
    assert "NOPERM" in shell.stdout, "the shell is orders' user, not an admin"
    dump = plane.state_dir.parent / "cache.backup"
    client = redis.Redis.from_url(orders_url)
    client.set("cache:ttl", "soon", px=600_000)
    plane.cli("db", "backup", "orders", "-o", str(dump))
    client.delete("cache:greeting", "cache:ttl")
    client.set("cache:later", "kept")
    plane.cli("db", "restore", "orders", "-i", str(dump))
    assert client.get("cache:greeting") == b"hello" and client.get("cache:later") == b"kept"
    assert 0 < client.pttl("cache:ttl") <= 600_000, "the TTL comes back with the key"
    foreign = plane.state_dir.parent / "foreign.backup"
    entry = json.loads(dump.read_text().splitlines()[0])
    foreign.write_text(json.dumps({**entry, "key": base64.b64encode(b"sessions:stolen").decode()}) + "\n")
    refused = subprocess.run([*SHIPYARD, "db", "restore", "orders", "-i", str(foreign), "--state-dir",
                              str(plane.state_dir)], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and refused.stderr.startswith("Error: ") and "outside database" in refused.stderr
    assert redis.Redis.from_url(catalog_url).get("sessions:stolen") is None

    password = urlparse(orders_url).password or ""
    texts = [plane.cli("status", "-o", "json").stdout, plane.cli("events", "-o", "json").stdout, shell.stdout,
             shell.stderr, (plane.state_dir / "control-plane.log").read_text(errors="replace")]
    texts += [p.read_bytes().decode("latin-1") for p in plane.state_dir.glob("state.db*")]
    assert not [t for t in texts if password in t], "the password appears in an output, the store or a log"
