"""Helpers of the database tests: psql as a service's role, from its URL (the password in PGPASSWORD)."""

from __future__ import annotations

import os
import subprocess
from urllib.parse import urlparse


def psql(url: str, sql: str, database: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run SQL with the credentials of URL (on DATABASE when given: another service's database)."""
    parts = urlparse(url)
    env = {"PATH": os.environ["PATH"], "PGPASSWORD": parts.password or "", "PGCONNECT_TIMEOUT": "5"}
    return subprocess.run(["psql", "-X", "-At", "-h", parts.hostname or "", "-p", str(parts.port), "-U",
                           parts.username or "", "-d", database or parts.path.lstrip("/"), "-c", sql],
                          env=env, capture_output=True, text=True, timeout=30)
