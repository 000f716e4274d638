"""A real OCI distribution registry for tests: Debian's `docker-registry`, on a free port, optionally with
basic auth (bcrypt htpasswd made by `htpasswd`); stopped by pid when the test ends."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.controlplane import free_port, http_get, wait_for


@dataclass(frozen=True)
class Registry:
    host: str           # 127.0.0.1:PORT
    root: Path          # the registry's storage directory


def need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/system-deps.sh installs it)")


@contextmanager
def running_registry(tmp: Path, user: str | None = None, password: str | None = None) -> Iterator[Registry]:
    need("docker-registry")
    port = free_port()
    storage = tmp / "registry-data"
    storage.mkdir(parents=True)
    auth = ""
    if user and password:
        need("htpasswd")
        htpasswd = tmp / "htpasswd"
        subprocess.run(["htpasswd", "-Bbc", str(htpasswd), user, password], check=True, capture_output=True)
        auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n"
    config = tmp / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n{auth}")
    log = open(tmp / "registry.log", "wb")
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/v2/")[0] in (200, 401), timeout=20,
                 what="the registry to answer")
        yield Registry(f"127.0.0.1:{port}", storage)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
