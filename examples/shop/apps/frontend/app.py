"""Frontend service of the Shipyard example shop: an HTML page over catalog and orders."""

from __future__ import annotations

import html
import http.client
import json
import os
import random
import signal
import socket
import socketserver
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

SERVICE = "frontend"
DEFAULT_PORT = 9000

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
ORDERS_URL = env_url("ORDERS_URL", "http://127.0.0.1:9002")
TITLE = os.environ.get("FRONTEND_TITLE") or "Shipyard Shop"
RECENT_ORDERS = 10
OFREP_URL = os.environ.get("SHIPYARD_OFREP_URL", "").strip().rstrip("/")  # feature flags, from Shipyard
RECOMMENDED = 3

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #1d2733; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1.5rem; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #dde3ea; }
td.num, th.num { text-align: right; }
.notice { padding: .6rem .9rem; border-radius: .3rem; margin: 1rem 0; }
.error { background: #fde8e8; color: #8a1c1c; }
.ok { background: #e6f6ea; color: #17612c; }
footer { color: #6b7785; font-size: .85rem; margin-top: 2rem; }
"""


def fetch_list(base_url: str, path: str, headers: dict[str, str]) -> tuple[list[Any] | None, str | None]:
    """GET a JSON list from a dependency; return (items, None) or (None, error message)."""
    try:
        status, payload = call(base_url, "GET", path, headers=headers)
    except UpstreamError as e:
        return None, str(e)
    if status != 200 or not isinstance(payload, list):
        detail = payload.get("error") if isinstance(payload, dict) else None
        return None, f"{base_url}{path} answered {status}" + (f": {detail}" if detail else "")
    return payload, None


def flag_on(key: str, context: dict[str, Any]) -> bool:
    """A boolean feature flag over OFREP (Shipyard's $SHIPYARD_OFREP_URL); off when flags cannot be reached."""
    if not OFREP_URL:
        return False
    try:
        status, payload = call(OFREP_URL, "POST", f"/ofrep/v1/evaluate/flags/{key}", {"context": context})
    except UpstreamError:
        return False
    return status == 200 and isinstance(payload, dict) and payload.get("value") is True


def flag_context(request: Request) -> dict[str, Any]:
    """Who is asking: `?user=` is the targeting key (splits stay stable per user), `?email=` an attribute."""
    context: dict[str, Any] = {"targetingKey": request.param("user") or "anonymous"}
    if request.param("email"):
        context["email"] = request.param("email")
    return context


def summary(request: Request) -> dict[str, Any]:
    """Products and recent orders, fetched in parallel; failures are reported, not raised."""
    headers = forwarded_headers(request)
    with ThreadPoolExecutor(max_workers=2) as pool:
        products_future = pool.submit(fetch_list, CATALOG_URL, "/products", headers)
        orders_future = pool.submit(fetch_list, ORDERS_URL, f"/orders?limit={RECENT_ORDERS}", headers)
        products, products_error = products_future.result()
        orders, orders_error = orders_future.result()
    errors = {name: error for name, error in (("catalog", products_error), ("orders", orders_error)) if error}
    return {"service": SERVICE, "version": VERSION, "products": products, "orders": orders, "errors": errors,
            "recommendations": flag_on("recommendations", flag_context(request))}


def money(cents: Any, currency: Any) -> str:
    """Format an amount in cents, e.g. '12.00 USD'."""
    if not isinstance(cents, int):
        return "?"
    return f"{cents // 100}.{cents % 100:02d} {currency or ''}".strip()


def esc(value: Any) -> str:
    """HTML-escape any value."""
    return html.escape(str(value))


def render_page(data: dict[str, Any], request: Request) -> str:
    """The shop's home page."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(TITLE)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(TITLE)}</h1>",
    ]
    ordered = request.param("ordered")
    if ordered and ordered.isdigit():
        parts.append(f'<p class="notice ok">Order #{esc(ordered)} placed.</p>')
    error = request.param("error")
    if error:
        parts.append(f'<p class="notice error">Could not place the order: {esc(error[:200])}</p>')
    for name, message in data["errors"].items():
        parts.append(f'<p class="notice error">The {esc(name)} service is unavailable right now ({esc(message)}).</p>')

    parts.append("<h2>Products</h2>")
    products = data["products"]
    if products is None:
        parts.append("<p>Products cannot be shown at the moment.</p>")
    else:
        parts.append('<table><tr><th>#</th><th>Product</th><th class="num">Price</th></tr>')
        for p in products:
            parts.append(
                f'<tr><td>{esc(p.get("id"))}</td><td>{esc(p.get("name"))}</td>'
                f'<td class="num">{esc(money(p.get("price_cents"), p.get("currency")))}</td></tr>'
            )
        parts.append("</table>")
        if products:
            options = "".join(f'<option value="{esc(p.get("id"))}">{esc(p.get("name"))}</option>' for p in products)
            parts.append(
                '<form method="post" action="/order">'
                f'<label>Product <select name="product_id">{options}</select></label> '
                '<label>Quantity <input type="number" name="quantity" value="1" min="1" max="100"></label> '
                '<button type="submit">Order</button></form>'
            )

    if data.get("recommendations") and products:
        parts.append('<section id="recommendations"><h2>Recommended for you</h2><ul>')
        parts.extend(f"<li>{esc(p.get('name'))}</li>" for p in products[:RECOMMENDED])
        parts.append("</ul></section>")

    parts.append("<h2>Recent orders</h2>")
    orders = data["orders"]
    if orders is None:
        parts.append("<p>Orders cannot be shown at the moment.</p>")
    elif not orders:
        parts.append("<p>No orders yet.</p>")
    else:
        parts.append('<table><tr><th>Order</th><th>Product</th><th class="num">Quantity</th>'
                     '<th class="num">Total</th><th>Placed</th></tr>')
        for o in orders:
            parts.append(
                f'<tr><td>Order #{esc(o.get("id"))}</td><td>{esc(o.get("product_name"))}</td>'
                f'<td class="num">{esc(o.get("quantity"))}</td>'
                f'<td class="num">{esc(money(o.get("total_cents"), o.get("currency")))}</td>'
                f'<td>{esc(o.get("created_at"))}</td></tr>'
            )
        parts.append("</table>")
    parts.append(f"<footer>{esc(SERVICE)} {esc(VERSION)}</footer></body></html>")
    return "\n".join(parts) + "\n"


def place_order(request: Request) -> Response:
    """Forward the order form to the orders service, then redirect back to the page."""
    form = parse_qs(request.body.decode("utf-8", "replace"))
    product_id = (form.get("product_id") or [""])[-1].strip()
    quantity = (form.get("quantity") or ["1"])[-1].strip() or "1"
    if not product_id.isdigit() or not quantity.isdigit():
        return redirect({"error": "product_id and quantity must be whole numbers"})
    try:
        status, payload = call(ORDERS_URL, "POST", "/orders",
                               {"product_id": int(product_id), "quantity": int(quantity)},
                               forwarded_headers(request))
    except UpstreamError:
        return redirect({"error": "the orders service is unavailable"})
    if status == 201 and isinstance(payload, dict):
        return redirect({"ordered": payload.get("id")})
    detail = payload.get("error") if isinstance(payload, dict) else None
    return redirect({"error": detail or f"the orders service answered {status}"})


def redirect(params: dict[str, Any]) -> Response:
    """303 See Other back to the page, with a notice in the query string."""
    return Response(303, b"", headers={"Location": "/?" + urlencode(params)})


def app(request: Request) -> Response:
    """Route a request of the frontend service."""
    routes = {"/": ("GET",), "/api/summary": ("GET",), "/order": ("POST",)}
    if request.path not in routes:
        raise HTTPError(404, f"no route for {request.path}")
    if request.method not in routes[request.path]:
        raise method_not_allowed(*routes[request.path])
    if request.path == "/order":
        return place_order(request)
    data = summary(request)
    if request.path == "/api/summary":
        return json_response(200, data)
    return Response(200, render_page(data, request).encode(), "text/html; charset=utf-8")


if __name__ == "__main__":
    sys.exit(serve(app, DEFAULT_PORT))
