"""`shipyard db shell|backup|restore|rotate SERVICE`: the operator's hands on a service's own database.

Each runs the PostgreSQL client as the service's role, with the password in the client's environment
(PGPASSWORD), never in argv and never printed; for a Redis database `shell` runs `redis-cli` as the
service's ACL user (REDISCLI_AUTH), and backup/restore copy the keys under the database's prefix
(DUMP/RESTORE, as Shipyard's own ACL user).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import click

from shipyard.cli.client import STATE_DIR_OPTION, Client, resolve_state_dir
from shipyard.cli.output import info
from shipyard.data.databases import engine_of
from shipyard.data.errors import DatabaseError
from shipyard.data.postgres import PostgresServer, role_name
from shipyard.data.redis import RedisServer
from shipyard.state.store import Store

DATABASE_OPTION = click.option("--database", metavar="NAME", help="Which of the service's databases (default: its first).")


@click.group(epilog="""\b
Examples:
  shipyard db shell orders
  shipyard db backup orders -o orders.dump
  shipyard db restore orders -i orders.dump
  shipyard db rotate orders
  shipyard db shell orders --database cache    # a Redis database: redis-cli as orders' ACL user
""")
def db() -> None:
    """Reach a service's database (the environment's PostgreSQL or Redis): shell, backup, restore, rotate."""


def _find(state_dir: Path | None, service: str, database: str | None) -> tuple[Path, str, str]:
    """The state dir, the database's name and its engine (default: the service's first database)."""
    state, engines = _databases(state_dir, service)
    if database is not None and database.replace("-", "_") not in engines:
        raise DatabaseError(f"service {service!r} has no database {database!r} (it has: {', '.join(engines)})")
    name = database.replace("-", "_") if database else next(iter(engines))
    return state, name, engines[name]


def _databases(state_dir: Path | None, service: str) -> tuple[Path, dict[str, str]]:
    """The state dir and the service's databases (name → engine), from its latest release."""
    state = resolve_state_dir(state_dir)
    if not (state / "state.db").exists():
        raise DatabaseError(f"no environment in {state}: start one with `shipyard up DIR --env NAME`")
    store = Store(state / "state.db")
    try:
        releases = [release for _, release in store.releases(service)]
    finally:
        store.close()
    engines = {name: engine_of(variable) for release in releases[-1:] for variable, name in release.databases}
    if not engines:
        raise DatabaseError(f"service {service!r} has no database in this environment (declare `databases:`)")
    return state, engines


def _client_env(server: PostgresServer, service: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": os.environ.get("LANG", "C.UTF-8"),
            "PGPASSWORD": server.password(role_name(service)), "PGHOST": "127.0.0.1", "PGPORT": str(server.port),
            "PGUSER": role_name(service)}


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    try:
        code = subprocess.call(argv, env=env)
    except OSError as exc:
        raise DatabaseError(f"cannot run {argv[0]}: {exc.strerror} (install postgresql-client)") from None
    if code != 0:
        raise DatabaseError(f"{what} failed ({argv[0]} exited with {code})")


@db.command(epilog="""\b
Examples:
  shipyard db shell orders
  echo 'select count(*) from orders' | shipyard db shell orders
""")
@click.argument("service")
@DATABASE_OPTION
@STATE_DIR_OPTION
def shell(service: str, database: str | None, state_dir: Path | None) -> None:
    """Open psql (or redis-cli) on SERVICE's database, as its role."""
    state, name, engine = _find(state_dir, service, database)
    if engine == "redis":
        redis = RedisServer(state)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REDISCLI_AUTH": redis.password(role_name(service))}
        _run(["redis-cli", "--no-auth-warning", "-h", "127.0.0.1", "-p", str(redis.port), "--user", role_name(service)],
             env, "redis-cli")
        return
    _run(["psql", "-X", "-d", name], _client_env(PostgresServer(state), service), "psql")


@db.command(epilog="""\b
Examples:
  shipyard db backup orders -o orders.dump
""")
@click.argument("service")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The file to write (pg_dump's custom format).")
@DATABASE_OPTION
@STATE_DIR_OPTION
def backup(service: str, output: Path, database: str | None, state_dir: Path | None) -> None:
    """Dump SERVICE's database to a file (pg_dump -Fc; Redis: its keys, DUMP payloads and TTLs)."""
    state, name, engine = _find(state_dir, service, database)
    if engine == "redis":
        count = RedisServer(state).backup(name, output)
        info(f"{service}: {count} keys of Redis database {name} written to {output}")
        return
    _run(["pg_dump", "-Fc", "--no-owner", "-d", name, "-f", str(output)], _client_env(PostgresServer(state), service),
         "backup")
    info(f"{service}: database {name} written to {output}")


@db.command(epilog="""\b
Examples:
  shipyard db restore orders -i orders.dump
""")
@click.argument("service")
@click.option("-i", "--input", "source", type=click.Path(dir_okay=False, exists=True, path_type=Path), required=True,
              help="A file written by `shipyard db backup`.")
@DATABASE_OPTION
@STATE_DIR_OPTION
def restore(service: str, source: Path, database: str | None, state_dir: Path | None) -> None:
    """Restore SERVICE's database from a backup, replacing the objects (Redis: the keys) it contains."""
    state, name, engine = _find(state_dir, service, database)
    if engine == "redis":
        count = RedisServer(state).restore(name, source)
        info(f"{service}: {count} keys of Redis database {name} restored from {source}")
        return
    _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", "-d", name, str(source)],
         _client_env(PostgresServer(state), service), "restore")
    info(f"{service}: database {name} restored from {source}")


@db.command(epilog="""\b
Examples:
  shipyard db rotate orders
""")
@click.argument("service")
@STATE_DIR_OPTION
def rotate(service: str, state_dir: Path | None) -> None:
    """Give SERVICE's role a new password and roll its instances onto it (the project is applied again)."""
    state, databases = _databases(state_dir, service)
    engines = set(databases.values())
    if "postgres" in engines:
        PostgresServer(state).rotate(role_name(service))
    if "redis" in engines:
        RedisServer(state).rotate(role_name(service))
    result = Client(state).request("POST", "/apply", json={})
    info(f"{service}: new database password; rolling out release {result['services'].get(service, '?')}")


COMMANDS = [db]
