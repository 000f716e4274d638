"""Errors of the metric providers: no data yet, or the provider failed.

    ShipyardError (shipyard.errors)
    ├── NoData          the query ran but matched no series yet (or only NaN): hold, do not fail
    └── ProviderError   the provider could not be reached, rejected the query or answered nonsense
"""

from __future__ import annotations

from shipyard.errors import ShipyardError


class NoData(ShipyardError):
    """A metric query succeeded but returned no value yet; the caller should wait, not fail."""


class ProviderError(ShipyardError):
    """A metric provider could not answer a query."""
