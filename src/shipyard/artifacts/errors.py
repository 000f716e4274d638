"""The errors of the artifacts package (all ShipyardError, printed as one line by the CLI)."""

from __future__ import annotations

from shipyard.errors import ShipyardError


class ArtifactError(ShipyardError):
    """An artifact could not be built, stored, found, pulled or verified."""


class NotFound(ArtifactError):
    """NAME or NAME:VERSION is not in the store; `versions` lists the versions that do exist."""

    def __init__(self, message: str, versions: list[str] | None = None) -> None:
        super().__init__(message)
        self.versions = versions or []


class DigestMismatch(ArtifactError):
    """A blob's content does not hash to its digest: it was altered in the store or on the way."""
