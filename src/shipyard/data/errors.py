"""The error of the data package: a database server or a service's database could not be provided."""

from __future__ import annotations

from shipyard.errors import ShipyardError


class DatabaseError(ShipyardError):
    """PostgreSQL is missing, did not start, or refused a change; the message never holds a password."""
