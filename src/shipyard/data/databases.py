"""Which databases a service gets and under which variables; the environment a release's instances get."""

from __future__ import annotations

import hashlib
from pathlib import Path

from shipyard.data.postgres import Grant, PostgresServer, database_name
from shipyard.data.redis import RedisServer
from shipyard.spec.models import Service

URL_SUFFIX = {"postgres": "DATABASE_URL", "redis": "REDIS_URL"}


def grants(service: Service) -> list[Grant]:
    """Per engine: `DATABASE_URL` (PostgreSQL) or `REDIS_URL` (Redis) for its first database, and
    `<NAME>_DATABASE_URL` / `<NAME>_REDIS_URL` for each when the service has several of that engine."""
    found = []
    for engine, suffix in URL_SUFFIX.items():
        mine = [database for database in service.databases if database.engine == engine]
        for index, database in enumerate(mine):
            named = f"{database.name.upper().replace('-', '_')}_{suffix}"
            variables = (suffix,) if len(mine) == 1 else ((suffix, named) if index == 0 else (named,))
            for variable in variables:
                found.append(Grant(service.name, database_name(database.name), variable))
    return found


def engine_of(variable: str) -> str:
    """The engine behind a variable `grants` chose (a release records variables and databases only)."""
    return "redis" if variable == "REDIS_URL" or variable.endswith("_REDIS_URL") else "postgres"


def provide(state_dir: Path, services: dict[str, Service]) -> dict[str, str]:
    """Make the servers provide every service's databases; returns service → a digest of its credentials.

    The digest enters the release's identity, so a rotated password rolls the service's instances
    (a hash of a 192-bit random password reveals nothing of it).
    """
    wanted = {name: grants(service) for name, service in services.items() if service.databases}
    if not wanted:
        return {}
    servers: dict[str, PostgresServer | RedisServer] = {}
    for engine, server_class in (("postgres", PostgresServer), ("redis", RedisServer)):
        mine = [g for found in wanted.values() for g in found if engine_of(g.variable) == engine]
        if mine:
            servers[engine] = server_class(state_dir)
            servers[engine].ensure(mine)
    digests = {}
    for name, found in wanted.items():
        engines, role = {engine_of(g.variable) for g in found}, found[0].role
        parts = [f"{role}:{servers['postgres'].password(role)}:{servers['postgres'].port}"] if "postgres" in engines else []
        if "redis" in engines:  # (PostgreSQL's part alone is what earlier versions hashed: no needless new release)
            parts.append(f"redis:{role}:{servers['redis'].password(role)}:{servers['redis'].port}")
        digests[name] = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return digests


def database_env(state_dir: Path, service: str, databases: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """The URLs (with passwords) for an instance about to start: never stored, never in argv."""
    servers = {"postgres": PostgresServer(state_dir), "redis": RedisServer(state_dir)}
    return {variable: servers[engine_of(variable)].url(Grant(service, database, variable))
            for variable, database in databases}


def servers_for(state_dir: Path, variables: list[str]) -> list[tuple[str, PostgresServer | RedisServer]]:
    """The servers releases with these database variables need, with their names for events."""
    engines = {engine_of(variable) for variable in variables}
    found: list[tuple[str, PostgresServer | RedisServer]] = []
    if "postgres" in engines:
        found.append(("PostgreSQL", PostgresServer(state_dir)))
    if "redis" in engines:
        found.append(("Redis", RedisServer(state_dir)))
    return found


def stop_servers(state_dir: Path) -> None:
    """`shipyard down`: stop the environment's database servers; their data stays for the next `up`."""
    PostgresServer(state_dir).stop()
    RedisServer(state_dir).stop()
