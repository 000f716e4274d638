"""Orders service of the Shipyard example shop: prices orders via catalog, stores them in PostgreSQL or SQLite."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import re
import signal
import socket
import socketserver
import sqlite3
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlsplit

SERVICE = "orders"
DEFAULT_PORT = 9002

# ---- service kit: begin (identical in every service of the shop; see README.md) ----

VERSION = os.environ.get("SHIPYARD_VERSION") or "dev"
KEEPALIVE_TIMEOUT_S = 60.0  # idle keep-alive connections are closed after this long
DRAIN_TIMEOUT_S = 25.0  # on SIGTERM, wait at most this long for in-flight requests
MAX_BODY_BYTES = 1 << 20

_log_lock = threading.Lock()


def log(line: str) -> None:
    """Write one line to stdout and flush it (safe from many threads)."""
    with _log_lock:
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except (OSError, ValueError):
            pass


def fatal(message: str) -> None:
    """Report a configuration error and exit with status 2."""
    print(f"{SERVICE}: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def env_number(name: str, default: float, low: float, high: float) -> float:
    """Read a number in [low, high] from the environment, or exit with a clear message."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # also rejects nan
        fatal(f"{name} must be a number between {low:g} and {high:g}, got {raw!r}")
    return value


def env_url(name: str, default: str) -> str:
    """Read an http(s) base URL from the environment, or exit with a clear message."""
    raw = os.environ.get(name, "").strip() or default
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fatal(f"{name} must be an http:// or https:// URL, got {raw!r}")
    return raw.rstrip("/")


class HTTPError(Exception):
    """An error answered to the client as JSON: {"error": message}."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class Request:
    """One parsed HTTP request as seen by a service's app function."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes

    def param(self, name: str, default: str | None = None) -> str | None:
        """Return the last value of a query parameter."""
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self) -> Any:
        """Decode the body as JSON or answer 400."""
        try:
            return json.loads(self.body)
        except ValueError:
            raise HTTPError(400, "request body must be valid JSON") from None


@dataclass
class Response:
    """A complete response; the kit adds Content-Length and X-Service-Version."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    """Build a JSON response."""
    body = (json.dumps(payload) + "\n").encode()
    return Response(status, body, "application/json", headers or {})


def method_not_allowed(*allowed: str) -> HTTPError:
    """Build the 405 error for a known path."""
    return HTTPError(405, "method not allowed", {"Allow": ", ".join(allowed)})


App = Callable[[Request], Response]


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler: health, fault injection, logging, graceful drain."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall behind a proxy
    timeout = KEEPALIVE_TIMEOUT_S
    server: Server

    def version_string(self) -> str:
        return SERVICE

    def setup(self) -> None:
        super().setup()
        self._t0 = time.monotonic()
        self._requests = 0
        self.server.track(self.connection, busy=False)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def handle_one_request(self) -> None:
        draining = self.server.track(self.connection, busy=False)
        if draining and self._requests:
            self.close_connection = True  # idle keep-alive connection during drain: close it
            return
        super().handle_one_request()

    def parse_request(self) -> bool:
        self._t0 = time.monotonic()
        self._requests += 1
        self.server.track(self.connection, busy=True)
        return super().parse_request()

    def end_headers(self) -> None:
        self.send_header("X-Service-Version", VERSION)
        if self.server.draining and not self.close_connection:
            self.send_header("Connection", "close")  # also sets close_connection
        super().end_headers()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        elapsed_ms = (time.monotonic() - self._t0) * 1000
        log(f"{self.command or '-'} {getattr(self, 'path', '-')} {int(code)} {elapsed_ms:.1f}ms")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if not format.startswith("Request timed out"):  # idle keep-alive timeouts are normal
            print(f"{SERVICE}: {format % args}", file=sys.stderr, flush=True)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        try:
            body = self._read_body()
            if url.path == "/healthz":
                if self.command != "GET":
                    raise method_not_allowed("GET")
                response = Response(200, b"ok")
            else:
                if self.server.latency_s:
                    time.sleep(self.server.latency_s)
                if self.server.fail_rate and random.random() < self.server.fail_rate:
                    raise HTTPError(500, "injected failure (FAIL_RATE)")
                request = Request(self.command, url.path, parse_qs(url.query), self.headers, body)
                response = self.server.app(request)
        except HTTPError as e:
            response = json_response(e.status, {"error": e.message}, e.headers)
        except Exception:  # noqa: BLE001 - a bug answers 500, the service keeps running
            traceback.print_exc(file=sys.stderr)
            response = json_response(500, {"error": "internal error"})
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)
        except OSError:
            self.close_connection = True  # the client went away

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").strip().lower() == "chunked":
            return self._read_chunked()
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise HTTPError(501, "unsupported Transfer-Encoding")
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
            if length < 0:
                raise ValueError(raw)
        except ValueError:
            self.close_connection = True
            raise HTTPError(400, "invalid Content-Length") from None
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise HTTPError(413, "request body too large")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise HTTPError(400, "invalid chunked body") from None
            if size == 0:
                break
            total += size
            if total > MAX_BODY_BYTES:
                self.close_connection = True
                raise HTTPError(413, "request body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)  # CRLF after the chunk
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)


class Server(ThreadingHTTPServer):
    """Threading server that knows its connections so that it can drain them on SIGTERM."""

    daemon_threads = True
    block_on_close = False  # draining is done by drain(), which also handles idle keep-alives

    def __init__(self, address: tuple[str, int], app: App, fail_rate: float, latency_s: float) -> None:
        self.app = app
        self.fail_rate = fail_rate
        self.latency_s = latency_s
        self.draining = False
        self._connections: dict[socket.socket, bool] = {}  # connection -> busy
        self._cond = threading.Condition()
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # skips HTTPServer's slow getfqdn()
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, connection: socket.socket, busy: bool) -> bool:
        """Record whether a connection is in a request; return True when draining."""
        with self._cond:
            self._connections[connection] = busy
            return self.draining

    def untrack(self, connection: socket.socket) -> None:
        with self._cond:
            self._connections.pop(connection, None)
            self._cond.notify_all()

    def drain(self, timeout: float) -> bool:
        """Close idle connections, let busy ones finish their request; True if all finished."""
        with self._cond:
            self.draining = True
            for connection, busy in self._connections.items():
                if not busy:
                    try:
                        connection.shutdown(socket.SHUT_RD)  # wakes the blocked read with EOF
                    except OSError:
                        pass
            return self._cond.wait_for(lambda: not self._connections, timeout)


def serve(app: App, default_port: int) -> int:
    """Run the service until SIGTERM/SIGINT, then stop accepting, drain, and return 0."""
    port = int(env_number("PORT", default_port, 0, 65535))
    fail_rate = env_number("FAIL_RATE", 0.0, 0.0, 1.0)
    latency_s = env_number("LATENCY_MS", 0.0, 0.0, 600_000.0) / 1000
    try:
        server = Server(("127.0.0.1", port), app, fail_rate, latency_s)
    except OSError as e:
        print(f"{SERVICE}: cannot listen on 127.0.0.1:{port}: {e}", file=sys.stderr, flush=True)
        return 1
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        if not stopping.is_set():
            stopping.set()
            log(f"{SERVICE} received {signal.Signals(signum).name}, shutting down")
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    faults = f" fail_rate={fail_rate:g} latency_ms={latency_s * 1000:g}" if fail_rate or latency_s else ""
    log(
        f"{SERVICE} version={VERSION} listening on http://127.0.0.1:{server.server_port}"
        f" pid={os.getpid()}{faults}"
    )
    server.serve_forever(poll_interval=0.1)
    server.server_close()  # stop accepting: new connections are refused from now on
    finished = server.drain(DRAIN_TIMEOUT_S)
    log(f"{SERVICE} stopped" + ("" if finished else " (drain timed out)"))
    return 0


# ---- service kit: end ----

# ---- upstream client: begin (identical in orders and frontend) ----

UPSTREAM_TIMEOUT_S = 5.0
FORWARDED_HEADERS = ("X-Request-Id", "Traceparent", "Tracestate")


class UpstreamError(Exception):
    """A dependency could not be reached or did not answer HTTP."""


def forwarded_headers(request: Request) -> dict[str, str]:
    """Tracing headers of an incoming request to pass on to dependencies."""
    return {name: value for name in FORWARDED_HEADERS if (value := request.headers.get(name))}


def call(base_url: str, method: str, path: str, payload: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """Call a dependency (never through an HTTP proxy); return (status, decoded JSON or None)."""
    url = urlsplit(base_url)
    connection_class = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(url.hostname or "127.0.0.1", url.port, timeout=UPSTREAM_TIMEOUT_S)
    send_headers = {"Accept": "application/json", **(headers or {})}
    body = None
    if payload is not None:
        body = json.dumps(payload).encode()
        send_headers["Content-Type"] = "application/json"
    try:
        connection.request(method, url.path.rstrip("/") + path, body=body, headers=send_headers)
        response = connection.getresponse()
        raw = response.read()
    except (OSError, http.client.HTTPException) as e:
        raise UpstreamError(f"{base_url} unreachable: {e or type(e).__name__}") from None
    finally:
        connection.close()
    try:
        decoded = json.loads(raw) if raw else None
    except ValueError:
        decoded = None
    return response.status, decoded


# ---- upstream client: end ----

CATALOG_URL = env_url("CATALOG_URL", "http://127.0.0.1:9001")
# Where orders live: the environment's PostgreSQL when Shipyard gives a DATABASE_URL (prod declares
# `databases: [{name: orders, engine: postgres}]`), else SQLite in the data dir (dev and a laptop: no
# server to run, and each environment's data stays its own either way).
DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
DATA_DIR = os.environ.get("SHIPYARD_DATA_DIR") or "."
DB_PATH = os.path.join(DATA_DIR, "orders.db")
MAX_QUANTITY = 100
DEFAULT_LIMIT, MAX_LIMIT = 20, 100

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id               {id},
    product_id       INTEGER NOT NULL,
    product_name     TEXT    NOT NULL,
    quantity         INTEGER NOT NULL,
    unit_price_cents INTEGER NOT NULL,
    total_cents      INTEGER NOT NULL,
    currency         TEXT,
    created_at       TEXT    NOT NULL,
    orders_version   TEXT    NOT NULL
)
"""

if DATABASE_URL:
    try:
        import psycopg2
    except ImportError:  # the `python3` first on PATH may be a pyenv or venv one: Debian's python3-psycopg2
        sys.path.append("/usr/lib/python3/dist-packages")  # (scripts/system-deps.sh) fits any CPython 3.11
        try:
            import psycopg2
        except ImportError:
            fatal("DATABASE_URL is set but psycopg2 is missing: apt-get install python3-psycopg2")
    import psycopg2.extras
    import psycopg2.pool
    DatabaseError: type[Exception] = psycopg2.Error
else:
    DatabaseError = sqlite3.Error


_pool: Any = None  # PostgreSQL's connections, opened in init_database(): a SCRAM login per request costs ms
_pool_slots = threading.BoundedSemaphore(8)  # more requests than connections wait instead of failing


class Database:
    """One connection in autocommit mode; `?` placeholders and dict rows on both SQLite and PostgreSQL."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        if not DATABASE_URL:
            return [dict(row) for row in self.connection.execute(sql, args).fetchall()]
        with self.connection.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
            cursor.execute(sql.replace("?", "%s"), args)
            return [dict(row) for row in cursor.fetchall()] if cursor.description else []


@contextlib.contextmanager
def database() -> Iterator[Database]:
    """A connection for one request: a new one for SQLite (cheap), one from the pool for PostgreSQL."""
    if not DATABASE_URL:
        connection = sqlite3.connect(DB_PATH, timeout=5.0, isolation_level=None)
        connection.row_factory = sqlite3.Row
        try:
            yield Database(connection)
        finally:
            connection.close()
        return
    with _pool_slots:
        connection = _pool.getconn()
        try:  # a ping first (as SQLAlchemy's pool_pre_ping): a connection PostgreSQL cut when it restarted
            connection.autocommit = True  # is replaced before the request's statement is sent
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except psycopg2.Error:
            _pool.putconn(connection, close=True)
            connection = _pool.getconn()
            connection.autocommit = True
        try:
            yield Database(connection)
        finally:  # a connection broken during the request is dropped, not handed to the next one
            _pool.putconn(connection, close=bool(connection.closed))


def init_database() -> None:
    """Create the table (SQLite: the data directory too, in WAL mode)."""
    global _pool
    if DATABASE_URL:
        _pool = psycopg2.pool.ThreadedConnectionPool(1, 8, DATABASE_URL, connect_timeout=5)
        with database() as db:  # instances start together: the lock makes CREATE IF NOT EXISTS race-free
            db.connection.autocommit = False
            db.query("SELECT pg_advisory_xact_lock(7)")
            db.query(SCHEMA.format(id="BIGSERIAL PRIMARY KEY"))
            db.connection.commit()
        return
    os.makedirs(DATA_DIR, exist_ok=True)
    with database() as db:
        db.query("PRAGMA journal_mode=WAL")
        db.query(SCHEMA.format(id="INTEGER PRIMARY KEY AUTOINCREMENT"))


def positive_int(value: Any, name: str, maximum: int) -> int:
    """Validate an integer field of a request or answer 400."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise HTTPError(400, f"{name} must be an integer between 1 and {maximum}")
    return value


def create_order(request: Request) -> Response:
    """Price an order with catalog's current price and store it."""
    payload = request.json()
    if not isinstance(payload, dict):
        raise HTTPError(400, "request body must be a JSON object")
    product_id = positive_int(payload.get("product_id"), "product_id", 2**31 - 1)
    quantity = positive_int(payload.get("quantity", 1), "quantity", MAX_QUANTITY)
    try:
        status, product = call(CATALOG_URL, "GET", f"/products/{product_id}",
                               headers=forwarded_headers(request))
    except UpstreamError as e:
        raise HTTPError(502, f"catalog unavailable: {e}") from None
    if status == 404:
        raise HTTPError(400, f"unknown product {product_id}")
    if status != 200 or not isinstance(product, dict) or not isinstance(product.get("price_cents"), int):
        raise HTTPError(502, f"catalog answered {status} for product {product_id}")
    created_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    price = product["price_cents"]
    with database() as db:
        order = db.query(
            "INSERT INTO orders (product_id, product_name, quantity, unit_price_cents, total_cents,"
            " currency, created_at, orders_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
            (product_id, str(product.get("name", "")), quantity, price, price * quantity,
             product.get("currency"), created_at, VERSION),
        )[0]
    return json_response(201, order, {"Location": f"/orders/{order['id']}"})


def list_orders(request: Request) -> Response:
    """The most recent orders, newest first."""
    raw = request.param("limit", str(DEFAULT_LIMIT)) or ""
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise HTTPError(400, f"limit must be an integer between 1 and {MAX_LIMIT}")
    with database() as db:
        rows = db.query("SELECT * FROM orders ORDER BY id DESC LIMIT ?", (int(raw),))
    return json_response(200, rows)


def get_order(order_id: str) -> Response:
    """One order by id."""
    rows = []
    if order_id.isdigit() and int(order_id) < 2**63:
        with database() as db:
            rows = db.query("SELECT * FROM orders WHERE id = ?", (int(order_id),))
    if not rows:
        raise HTTPError(404, f"unknown order {order_id}")
    return json_response(200, rows[0])


def app(request: Request) -> Response:
    """Route a request of the orders service."""
    path = request.path
    if path == "/":
        if request.method != "GET":
            raise method_not_allowed("GET")
        return json_response(200, {"service": SERVICE, "version": VERSION, "catalog_url": CATALOG_URL})
    if path == "/orders":
        if request.method == "POST":
            return create_order(request)
        if request.method == "GET":
            return list_orders(request)
        raise method_not_allowed("GET", "POST")
    match = re.fullmatch(r"/orders/([^/]+)", path)
    if match:
        if request.method != "GET":
            raise method_not_allowed("GET")
        return get_order(match.group(1))
    raise HTTPError(404, f"no route for {path}")


def main() -> int:
    """Prepare the database and serve."""
    try:
        init_database()
    except (OSError, DatabaseError) as e:
        where = "DATABASE_URL (PostgreSQL)" if DATABASE_URL else DB_PATH  # never the URL: it holds a password
        print(f"{SERVICE}: cannot open database {where}: {e}", file=sys.stderr, flush=True)
        return 1
    return serve(app, DEFAULT_PORT)


if __name__ == "__main__":
    sys.exit(main())
