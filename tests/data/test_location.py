"""Where the environment's PostgreSQL keeps its data: in the state dir, reachable by its server alone.

Real `initdb`/`pg_ctl` runs; the kernel is the oracle for who can enter what (`runuser -u postgres`,
and a whole server started by an unprivileged user).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.data.postgres import Grant, PostgresServer
from shipyard.state.control import secure_state_dir

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None,
                                reason="needs root: tries the `postgres` and `nobody` users")
REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"  # the venv's may live under /root, closed to `nobody`; shipyard.data needs only the stdlib


def _as(user: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", user, "--", *argv], capture_output=True, text=True, timeout=60, cwd="/")


@pytest.fixture
def open_parent() -> Iterator[Path]:
    """A state dir whose ancestors anyone may traverse (as /var/lib or /srv would be), unlike pytest's 0700 base."""
    parent = Path(tempfile.mkdtemp(prefix="shipyard-location-", dir="/tmp"))
    os.chmod(parent, 0o755)
    yield parent
    for state in parent.iterdir():
        PostgresServer(state).remove()
    shutil.rmtree(parent, ignore_errors=True)


def test_root_keeps_the_data_in_the_state_dir_and_lets_postgres_pass_through_only(open_parent: Path) -> None:
    state = open_parent / "state"
    state.mkdir(mode=0o700)
    (state / "age.key").write_text("AGE-SECRET-KEY-1")
    os.chmod(state / "age.key", 0o600)
    server = PostgresServer(state)
    server.ensure([Grant("orders", "orders", "DATABASE_URL")])

    data = state / "database" / "postgres" / "data"
    assert server.data == data and (data / "PG_VERSION").exists()
    info = data.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (_uid("postgres"), 0o700)
    for directory in (state, state / "database"):
        info = directory.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_gid) == (0o710, _gid("postgres")), directory
    assert _as("postgres", "test", "-w", str(data)).returncode == 0
    assert _as("postgres", "ls", str(state)).returncode != 0, "postgres may pass through, not list"
    assert _as("postgres", "cat", str(state / "age.key")).returncode != 0
    assert _as("postgres", "ls", str(state / "database" / "passwords")).returncode != 0
    assert _as("nobody", "ls", str(data)).returncode != 0, "any other user is kept out"
    assert not (state / "database" / "server").exists(), "no link to /var/lib"

    secure_state_dir(state)  # a control plane's start closes the state dir again
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert PostgresServer(state).sql("SELECT 40 + 2;").strip() == "42", "re-adopted, the way back in reopened"


def test_root_with_a_closed_ancestor_falls_back_to_var_lib_and_keeps_using_it(tmp_path: Path) -> None:
    state = tmp_path / "state"  # under pytest's 0700 base: the postgres user cannot get there
    state.mkdir(mode=0o700)
    server = PostgresServer(state)
    try:
        server.ensure([Grant("orders", "orders", "DATABASE_URL")])
        link = state / "database" / "server"
        assert link.is_symlink() and Path(os.readlink(link)).parent == Path("/var/lib/shipyard/postgres")
        assert stat.S_IMODE(state.stat().st_mode) == 0o700 and state.stat().st_gid == 0, "the state dir stays closed"
        assert not (state / "database" / "postgres").exists()
        again = PostgresServer(state)  # an earlier version's layout, or this fallback: followed, never moved
        assert again.data == Path(os.readlink(link)) / "data"
        assert again.sql("SELECT 1;").strip() == "1"
    finally:
        server.remove()
    assert not (state / "database" / "server").exists()


def test_an_unprivileged_control_plane_runs_the_server_as_itself(open_parent: Path) -> None:
    state = open_parent / "nobody-state"
    state.mkdir(mode=0o700)
    os.chown(state, _uid("nobody"), _gid("nobody"))
    script = ("import sys; from pathlib import Path; from shipyard.data.postgres import Grant, PostgresServer\n"
              "server = PostgresServer(Path(sys.argv[1]))\n"
              "server.ensure([Grant('orders', 'orders', 'DATABASE_URL')])\n"
              "print(server.sql('SELECT current_user;').strip(), server.data)\n")
    result = subprocess.run(["runuser", "-u", "nobody", "--", SYSTEM_PYTHON, "-c", script, str(state)],
                            capture_output=True, text=True, timeout=120, cwd="/",
                            env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO / "src")})
    try:
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["nobody", str(state / "database" / "postgres" / "data")]
        assert (state / "database" / "postgres" / "data").stat().st_uid == _uid("nobody")
        assert stat.S_IMODE(state.stat().st_mode) == 0o700, "nothing to open: the server is the same user"
    finally:
        subprocess.run(["runuser", "-u", "nobody", "--", SYSTEM_PYTHON, "-c",
                        "import sys; from pathlib import Path; from shipyard.data.postgres import PostgresServer\n"
                        "PostgresServer(Path(sys.argv[1])).remove()", str(state)],
                       capture_output=True, timeout=60, cwd="/", env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO / "src")})


def _uid(user: str) -> int:
    import pwd
    return pwd.getpwnam(user).pw_uid


def _gid(user: str) -> int:
    import pwd
    return pwd.getpwnam(user).pw_gid
