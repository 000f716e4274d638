"""Who gets in: the Unix socket for the CLI, TCP only with the bearer token (real control plane, real sockets)."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from shipyard.api.app import build_app
from shipyard.api.auth import allowed
from tests.controlplane import ControlPlane, free_port, run_cli
from tests.projects import probe_service, write_project

TOKEN = "t0ken"


@pytest.mark.parametrize(("server", "method", "path", "authorization", "expected"), [
    (("/state/api.sock", None), "POST", "/down", None, True),  # the Unix socket: the file mode decides
    (("127.0.0.1", 7070), "GET", "/status", None, False),
    (("127.0.0.1", 7070), "POST", "/down", b"Bearer wrong", False),
    (("127.0.0.1", 7070), "GET", "/status", b"Basic dDBrZW4=", False),
    (("127.0.0.1", 7070), "GET", "/status", b"Bearer t0ken", True),
    (("127.0.0.1", 7070), "GET", "/healthz", None, True),
    (("127.0.0.1", 7070), "POST", "/hooks/git", None, True),  # its handler checks the HMAC signature
    (("127.0.0.1", 7070), "GET", "/hooks/git", None, False),
    (None, "GET", "/status", None, False),  # an unknown listener is treated as TCP
])
def test_allowed(server, method, path, authorization, expected):
    headers = [(b"authorization", authorization)] if authorization else []
    scope = {"type": "http", "server": server, "method": method, "path": path, "headers": headers}
    assert allowed(scope, TOKEN) is expected


def every_route() -> list[tuple[str, str]]:
    """(method, path) of every route the API serves, path parameters filled in."""
    app = build_app(SimpleNamespace(reconciler=None))  # type: ignore[arg-type]
    routes = []
    for route in app.routes:
        path = re.sub(r"\{verb(:\w+)?\}", "promote", re.sub(r"\{service(:\w+)?\}", "alpha", route.path))
        routes += [(method, path) for method in sorted(route.methods or {"GET"}) if method != "HEAD"]
    return routes


@pytest.fixture
def plane(tmp_path: Path):
    project = write_project(tmp_path / "project", [probe_service("alpha")])
    created = ControlPlane(project, tmp_path / "state")
    yield created
    created.teardown()


def test_tcp_needs_the_token_the_socket_does_not(plane, tmp_path):
    port = free_port()
    plane.up("--api-listen", f"127.0.0.1:{port}")
    state = plane.state_dir
    for name in ("api.sock", "token"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
    token = plane.token()
    assert len(token) >= 32
    url = f"http://127.0.0.1:{port}"
    assert plane.status()["api"] == url

    routes = every_route()
    assert ("POST", "/down") in routes and ("GET", "/status") in routes
    with httpx.Client(base_url=url, timeout=10) as http:
        for method, path in routes:
            for headers in ({}, {"Authorization": "Bearer not-the-token"}):
                response = http.request(method, path, headers=headers)
                if (method, path) == ("GET", "/healthz"):
                    assert response.status_code == 200
                elif (method, path) == ("POST", "/hooks/git"):
                    assert response.json()["error"] == "NotFollowing"  # the handler answered: not following git
                elif path == "/ui/login" or path.startswith("/ui/static/"):
                    assert response.status_code in (200, 401, 404), (method, path)  # sign-in page, public files
                elif path.startswith("/ui") and method == "GET":
                    assert (response.status_code, response.headers["location"]) == (303, "/ui/login"), path
                else:
                    assert response.status_code == 401, (method, path)
                    assert response.json()["error"] == "Unauthorized"
        authorized = http.get("/status", headers={"Authorization": f"Bearer {token}"})
        assert authorized.status_code == 200 and authorized.json()["environment"] == "dev"
    assert plane.request("GET", "/status").status_code == 200  # the socket needs no token

    # a CLI elsewhere: no state dir, the URL and the token from the environment
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"SHIPYARD_API": url, "SHIPYARD_TOKEN": token, "SHIPYARD_STATE_DIR": ""}
    remote = run_cli("status", "-o", "json", env=env, cwd=elsewhere)
    assert json.loads(remote.stdout)["api"] == url
    refused = run_cli("status", env={**env, "SHIPYARD_TOKEN": "wrong"}, cwd=elsewhere, check=False)
    assert refused.returncode == 1 and "Error:" in refused.stderr and "Bearer" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_without_api_listen_there_is_no_tcp_listener(plane):
    plane.up()
    document = plane.status()
    assert document["api"] == f"unix://{plane.state_dir.resolve() / 'api.sock'}"
    pid = plane.control_pid()
    inodes = {str(link.readlink()) for link in Path(f"/proc/{pid}/fd").iterdir()}
    listening = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    listening += [line.split() for line in Path("/proc/net/tcp6").read_text().splitlines()[1:]]
    ours = [fields for fields in listening if fields[3] == "0A" and f"socket:[{fields[9]}]" in inodes]
    ofrep_port = int(document["ofrep"].rsplit(":", 1)[1])  # the flags' own read-only listener, deliberately public
    api_ports = [int(fields[1].split(":")[1], 16) for fields in ours if int(fields[1].split(":")[1], 16) != ofrep_port]
    assert api_ports == [], "the control plane listens on TCP without --api-listen"


def test_an_instance_cannot_reach_the_api(plane):
    """From inside a real (bubblewrap) instance: the socket's directory is masked, TCP wants the token."""
    port = free_port()
    plane.up("--api-listen", f"127.0.0.1:{port}")
    instance = plane.wait_ready("alpha", 1)[0]
    assert instance["isolation"].get("sandbox") == "bubblewrap", instance["isolation"]
    socket_path = plane.state_dir.resolve() / "api.sock"
    assert plane.request("GET", "/status").status_code == 200  # the socket works from outside

    def ask(route: str, **query: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{instance['port']}{route}", params=query, timeout=10)

    refused = ask("/connect", unix=str(socket_path))
    assert refused.status_code == 403 and "No such file" in refused.json()["error"]
    assert ask("/read", path=str(plane.state_dir.resolve() / "token")).status_code == 403
    assert ask("/fetch", url=f"http://127.0.0.1:{port}/status").json() == {"status": 401}
    assert ask("/fetch", url=f"http://127.0.0.1:{port}/healthz").json() == {"status": 200}  # the network works
