"""One PostgreSQL server per environment (Debian's `postgresql`), a database and a role per service.

Its data directory is in the state dir, `<state dir>/database/postgres/data` (who runs the server and
how it reaches that directory: `shipyard.data.location`); its port and the passwords are in
`<state dir>/database/`. It listens on 127.0.0.1 only, is started detached by `pg_ctl`, so it outlives
the control plane like an instance and is re-adopted (`pg_ctl status`) by the next one. Each service
gets a role named after it and one database per entry of its `databases:`; `pg_hba.conf` (written here,
whole) lets a role reach only its own databases over TCP, and CONNECT is revoked from PUBLIC as a
second wall. Passwords are generated, kept 0600 under `<state dir>/database/passwords/`, and given to
PostgreSQL on stdin, never in argv.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shipyard.data import credentials
from shipyard.data import location as locations
from shipyard.data.errors import DatabaseError
from shipyard.runtime import procfs
from shipyard.proxy.ports import free_port

PG_VERSIONS = ("17", "16", "15", "14", "13")


@dataclass(frozen=True)
class Grant:
    """A database a service owns: its role, the database name, the environment variable it is given in."""

    service: str
    database: str
    variable: str

    @property
    def role(self) -> str:
        return role_name(self.service)


def role_name(service: str) -> str:
    return service.replace("-", "_")


def database_name(name: str) -> str:
    return name.replace("-", "_")


def binaries() -> Path:
    """The directory of Debian's PostgreSQL server programs (initdb, pg_ctl, postgres)."""
    for version in PG_VERSIONS:
        found = Path(f"/usr/lib/postgresql/{version}/bin")
        if (found / "pg_ctl").exists():
            return found
    found_ctl = shutil.which("pg_ctl")
    if found_ctl:
        return Path(found_ctl).resolve().parent
    raise DatabaseError("PostgreSQL is not installed: run scripts/system-deps.sh (apt-get install postgresql)")


class PostgresServer:
    """The environment's server: created on first use, started if down, and told who may connect."""

    def __init__(self, state_dir: Path) -> None:
        self.location = locations.locate(state_dir, "postgres")
        self.state = self.location.state
        self.root = self.location.root
        self.data = self.root / "data"
        self.socket_dir = self.location.socket_dir
        self.log = self.root / "postgres.log"
        self.passwords = self.state / "passwords"
        self.superuser = self.location.user  # peer authentication: the OS user the server runs as

    # ---- lifecycle ---------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        try:
            return int((self.state / "port").read_text())
        except (OSError, ValueError):
            raise DatabaseError(f"no PostgreSQL server for {self.state.parent}: apply a project with `databases:` first") from None

    def running(self) -> bool:
        if not (self.data / "PG_VERSION").exists():
            return False
        return self._as_postgres([str(binaries() / "pg_ctl"), "status", "-D", str(self.data)], check=False).returncode == 0

    def alive(self) -> bool:
        """Cheap (two file reads, no subprocess): the postmaster of `postmaster.pid` is a live process."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return False
        return procfs.is_running(pid, None)

    def exists(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def ensure_running(self) -> None:
        """Initialise on first use; start (detached) when down; wait until it accepts connections."""
        if not (self.data / "PG_VERSION").exists():
            self._init()
        if self.running():
            return
        locations.ensure_socket_dir(self.location)
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.socket_dir}"
        result = self._as_postgres([str(binaries() / "pg_ctl"), "start", "-D", str(self.data), "-l", str(self.log),
                                    "-w", "-t", "60", "-o", options], check=False)
        if result.returncode != 0:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-3:] if self.log.exists() else []
            raise DatabaseError(f"PostgreSQL did not start in {self.data}: {' | '.join(tail) or result.stderr.strip()}")

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            self._as_postgres([str(binaries() / "pg_ctl"), "stop", "-D", str(self.data), "-m", mode, "-w"], check=False)
            with contextlib.suppress(OSError):  # its socket is gone: leave no empty directory in /run
                self.socket_dir.rmdir()

    def remove(self) -> None:
        """Stop the server and delete its data (`shipyard down --purge`, tests)."""
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.socket_dir, ignore_errors=True)
        if self.location.linked:
            self.location.link.unlink(missing_ok=True)

    def _init(self) -> None:
        self.location = locations.prepare(self.location)  # the state dir, or /var/lib/shipyard when out of reach
        self.root, self.data, self.log = self.location.root, self.location.root / "data", self.location.root / "postgres.log"
        self.socket_dir = self.location.socket_dir
        self.passwords.mkdir(mode=0o700, parents=True, exist_ok=True)  # root's alone: the server never reads them
        if not (self.state / "port").exists():
            (self.state / "port").write_text(str(free_port()))
        self._as_postgres([str(binaries() / "initdb"), "-D", str(self.data), "-U", self.superuser, "-E", "UTF8",
                           "--auth-local=peer", "--auth-host=scram-sha-256", "--no-instructions"])
        self._write_hba([])

    def _as_postgres(self, argv: list[str], stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        if self.location.root.exists():
            locations.grant_traversal(self.location)  # `secure_state_dir` closes the state dir at each start
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "PGHOST": str(self.socket_dir)}
        result = subprocess.run(locations.as_user(self.location, argv), input=stdin, capture_output=True, text=True,
                                env=env, timeout=120, cwd="/")
        if check and result.returncode != 0:
            raise DatabaseError(f"{Path(argv[0]).name} failed: {result.stderr.strip()[-300:]}")
        return result

    # ---- databases and roles -----------------------------------------------------------------------
    def sql(self, statements: str, database: str = "postgres") -> str:
        """Run SQL as the superuser over the private socket; the text goes on stdin (it may hold a password)."""
        result = self._as_postgres(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir),
                                    "-U", self.superuser,
                                    "-p", str(self.port), "-d", database, "-f", "-"], stdin=statements)
        return result.stdout

    def ensure(self, grants: list[Grant]) -> None:
        """Every role and database of GRANTS exists, and pg_hba lets each role reach only its own."""
        self.ensure_running()
        for grant in grants:
            password = self.password(grant.role, create=True)
            exists = self.sql(f"SELECT 1 FROM pg_roles WHERE rolname = {_literal(grant.role)};").strip()
            verb = "ALTER" if exists else "CREATE"
            self.sql(f"{verb} ROLE {_ident(grant.role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                     f"PASSWORD {_literal(password)};")
            if not self.sql(f"SELECT 1 FROM pg_database WHERE datname = {_literal(grant.database)};").strip():
                self.sql(f"CREATE DATABASE {_ident(grant.database)} OWNER {_ident(grant.role)};")
            self.sql(f"REVOKE ALL ON DATABASE {_ident(grant.database)} FROM PUBLIC;")
        self._write_hba(grants)
        self.sql("SELECT pg_reload_conf();")

    def rotate(self, role: str) -> None:
        """A new password for ROLE; sessions already open keep working, new ones need the new password."""
        credentials.forget(self.passwords, role, "database role")
        password = self.password(role, create=True)
        self.sql(f"ALTER ROLE {_ident(role)} PASSWORD {_literal(password)};")

    def password(self, role: str, create: bool = False) -> str:
        return credentials.password(self.passwords, role, create, "database role")

    def url(self, grant: Grant) -> str:
        return f"postgresql://{grant.role}:{self.password(grant.role)}@127.0.0.1:{self.port}/{grant.database}"

    def _write_hba(self, grants: list[Grant]) -> None:
        lines = ["# Written by Shipyard: each service's role reaches only its own databases.",
                 f"local all {_ident(self.superuser)} peer"]
        lines += [f"host {_ident(g.database)} {_ident(g.role)} 127.0.0.1/32 scram-sha-256" for g in grants]
        hba = self.data / "pg_hba.conf"
        self._as_postgres(["tee", str(hba)], stdin="\n".join(lines) + "\n")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
