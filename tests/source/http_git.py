"""A real smart-HTTP git server for tests: `git http-backend` behind HTTP Basic auth, in a thread."""

from __future__ import annotations

import base64
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class _Threading(ThreadingMixIn, WSGIServer):
    daemon_threads = True


@contextmanager
def serving_git(root: Path, user: str, password: str, delay: float = 0.0) -> Iterator[str]:
    """Serve the repositories under ROOT at the yielded http://127.0.0.1:PORT; each answer waits DELAY s."""
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    authorizations: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        time.sleep(delay)
        authorizations.append(environ.get("HTTP_AUTHORIZATION", ""))
        if environ.get("HTTP_AUTHORIZATION") != expected:
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Length", "0")])
            return [b""]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        env = {"GIT_PROJECT_ROOT": str(root), "GIT_HTTP_EXPORT_ALL": "1", "REMOTE_USER": user,
               "PATH": "/usr/bin:/bin", **{key: environ.get(key, "") for key in (
                   "PATH_INFO", "QUERY_STRING", "REQUEST_METHOD", "CONTENT_TYPE", "HTTP_CONTENT_ENCODING",
                   "HTTP_GIT_PROTOCOL")}, "CONTENT_LENGTH": str(len(body))}
        output = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=True).stdout
        head, _, content = output.partition(b"\r\n\r\n") if b"\r\n\r\n" in output else output.partition(b"\n\n")
        headers = [tuple(line.split(": ", 1)) for line in head.decode().splitlines() if ": " in line]
        status = next((value for name, value in headers if name.lower() == "status"), "200 OK")
        start_response(status, [(n, v) for n, v in headers if n.lower() != "status"])
        return [content]

    server = make_server("127.0.0.1", 0, app, server_class=_Threading, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
