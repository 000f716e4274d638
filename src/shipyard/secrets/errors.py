"""The errors of the secrets package: one type, with a message that never contains a secret value."""

from __future__ import annotations

from shipyard.errors import ShipyardError


class SecretsError(ShipyardError):
    """A secrets file could not be read, verified, decrypted or written (MAC mismatch, no key, bad format)."""
