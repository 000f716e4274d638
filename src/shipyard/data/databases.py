"""Which databases a service gets and under which variables; the environment a release's instances get."""

from __future__ import annotations

import hashlib
from pathlib import Path

from shipyard.data.postgres import Grant, PostgresServer, database_name
from shipyard.spec.models import Service


def grants(service: Service) -> list[Grant]:
    """`DATABASE_URL` for the first database, and `<NAME>_DATABASE_URL` for each when there are several."""
    found = []
    for index, database in enumerate(service.databases):
        named = f"{database.name.upper().replace('-', '_')}_DATABASE_URL"
        variables = ("DATABASE_URL",) if len(service.databases) == 1 else \
            (("DATABASE_URL", named) if index == 0 else (named,))
        for variable in variables:
            found.append(Grant(service.name, database_name(database.name), variable))
    return found


def provide(state_dir: Path, services: dict[str, Service]) -> dict[str, str]:
    """Make the server provide every service's databases; returns service → a digest of its credentials.

    The digest enters the release's identity, so a rotated password rolls the service's instances
    (a hash of a 192-bit random password reveals nothing of it).
    """
    wanted = {name: grants(service) for name, service in services.items() if service.databases}
    if not wanted:
        return {}
    server = PostgresServer(state_dir)
    server.ensure([grant for found in wanted.values() for grant in found])
    return {name: hashlib.sha256(f"{found[0].role}:{server.password(found[0].role)}:{server.port}".encode())
            .hexdigest()[:16] for name, found in wanted.items()}


def database_env(state_dir: Path, service: str, databases: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """The URLs (with passwords) for an instance about to start: never stored, never in argv."""
    server = PostgresServer(state_dir)
    return {variable: server.url(Grant(service, database, variable)) for variable, database in databases}
