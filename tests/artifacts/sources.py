"""Service source directories for artifact tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

APP = '''import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"v1"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
'''


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A committed service source directory with an artifact.yaml."""
    src = tmp_path / "hello"
    src.mkdir()
    (src / "artifact.yaml").write_text("apiVersion: shipyard/v1\nkind: Artifact\nname: hello\n"
                                       "command: [python3, app.py]\nenv: {GREETING: hi}\n"
                                       "health: {readiness: /}\n")
    (src / "app.py").write_text(APP)
    (src / "run.sh").write_text("#!/bin/sh\nexec python3 app.py\n")
    (src / "run.sh").chmod(0o755)
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "x.pyc").write_bytes(b"junk")
    git = ["git", "-C", str(src), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    return src
