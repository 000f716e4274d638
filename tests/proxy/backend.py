"""A test backend: answers every request with its own id, over HTTP/1.1 keep-alive.

Run as `python backend.py PORT ID [DELAY_MS]`. SIGTERM stops accepting, lets in-flight requests
finish, then exits, like a well-behaved service. Prints "ready" once it listens.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    backend_id = ""
    delay_s = 0.0
    in_flight = 0
    lock = threading.Lock()

    def _answer(self) -> None:
        with Handler.lock:
            Handler.in_flight += 1
        try:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            if self.delay_s:
                time.sleep(self.delay_s)
            status = 500 if self.path.startswith("/fail") else 200
            body = f"{self.backend_id} {self.path}\n".encode()
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(body)))
            # headers and body in one write: a SIGKILL lands before an answer or after it, never inside it
            # (once headers are on their way no proxy can retry, and the client reads a short body)
            self._headers_buffer.append(b"\r\n" + body)
            self.flush_headers()
        finally:
            with Handler.lock:
                Handler.in_flight -= 1

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    port, backend_id = int(sys.argv[1]), sys.argv[2]
    Handler.backend_id = backend_id
    Handler.delay_s = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True

    def terminate(signum: int, frame: object) -> None:
        server.socket.close()  # stop accepting; in-flight requests go on in their threads
        while Handler.in_flight:
            time.sleep(0.005)
        os._exit(0)

    signal.signal(signal.SIGTERM, terminate)
    print("ready", flush=True)
    with contextlib.suppress(OSError):  # the listening socket was closed by terminate
        server.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    main()
