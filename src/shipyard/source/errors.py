"""The error the git source raises; it belongs under ShipyardError in shipyard/errors.py."""

from __future__ import annotations

from shipyard.errors import ShipyardError


class SourceError(ShipyardError):
    """A git repository could not be fetched, read, exported or changed; the message is one line."""
