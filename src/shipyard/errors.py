"""The exception tree of Shipyard.

    ShipyardError                 every error Shipyard raises on purpose; the CLI prints it as one line
    ├── SpecError                 the config repository is invalid; carries every Problem found
    ├── StateError                the state dir is unusable (locked by another control plane, corrupt)
    ├── RuntimeDriverError        an instance could not be started, signalled or inspected
    ├── DataPlaneError            Envoy could not be started or rejected a configuration
    ├── ControlPlaneError         the control plane's API is unreachable or answered with an error
    ├── source.errors.SourceError a git repository could not be fetched, read, exported or changed
    ├── artifacts.errors          ArtifactError (build, store, pull), NotFound (with the versions), DigestMismatch
    ├── NoData                    a metric query matched no samples yet: hold, do not fail
    └── ProviderError             a metric provider could not be reached or answered nonsense

Errors are translated at the boundary (`raise SpecError(...) from exc`), so callers above a module
only ever see this tree.
"""

from __future__ import annotations

from dataclasses import dataclass


class ShipyardError(Exception):
    """Base class of every error Shipyard raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One validation problem at a place in a file of the config repository."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        field = f"{self.field}: " if self.field else ""
        return f"{self.file}:{self.line}:{self.column}: error: {field}{self.message}"


class SpecError(ShipyardError):
    """The config repository is invalid. `problems` lists every problem found, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.column, p.field))
        super().__init__("\n".join(str(p) for p in self.problems))


class StateError(ShipyardError):
    """The state directory cannot be used."""


class RuntimeDriverError(ShipyardError):
    """An instance could not be started, signalled or inspected."""


class DataPlaneError(ShipyardError):
    """Envoy could not be started, or did not accept a configuration."""


class ControlPlaneError(ShipyardError):
    """The control plane could not be reached, or answered with an error."""


class NoData(ShipyardError):
    """A metric query succeeded but returned no value yet; the caller should wait, not fail."""


class ProviderError(ShipyardError):
    """A metric provider could not answer a query."""
