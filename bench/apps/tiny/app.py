"""The benchmarks' tiny service: every path answers 200 with its instance id and version.

Run with PORT set (Shipyard sets it, and SHIPYARD_INSTANCE / SHIPYARD_VERSION). Headers and body go out
with TCP_NODELAY: http.server writes them separately, and without it each answer on a keep-alive
connection (Envoy's upstream pool) waits ~40 ms for the peer's delayed ACK (Nagle). SIGTERM stops
accepting, lets in-flight requests finish, then exits.
"""

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INSTANCE = os.environ.get("SHIPYARD_INSTANCE", "")
VERSION = os.environ.get("SHIPYARD_VERSION", "dev")
BODY = (json.dumps({"instance": INSTANCE, "version": VERSION, "pid": os.getpid()}) + "\n").encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    in_flight = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        with Handler.lock:
            Handler.in_flight += 1
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(BODY)))
            self.send_header("X-Service-Version", VERSION)
            self.send_header("X-Instance", INSTANCE)
            self.end_headers()
            self.wfile.write(BODY)
        finally:
            with Handler.lock:
                Handler.in_flight -= 1

    def log_message(self, *args: object) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
server.daemon_threads = True


def terminate(*_: object) -> None:
    server.socket.close()  # stop accepting; requests in flight go on in their threads
    deadline = time.monotonic() + 5
    while Handler.in_flight and time.monotonic() < deadline:
        time.sleep(0.005)
    os._exit(0)


signal.signal(signal.SIGTERM, terminate)
print(f"listening on {os.environ['PORT']}", flush=True)
try:
    server.serve_forever(poll_interval=0.05)
except OSError:
    pass  # the listening socket was closed by terminate
sys.exit(0)
