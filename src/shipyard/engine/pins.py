"""`rollout undo`: an operator's pin of a service to an older release, until the spec moves on (pure).

A pin remembers which release the spec declared when it was made. While the spec still declares
that release, the service runs the pinned one (rolled out like any rolling update, so with the
same zero-downtime guarantees) and the environment says so in a condition. Once the spec declares
anything else — a fix, a revert, a new version — the pin has done its job and is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from shipyard.engine.model import Condition, DesiredService, Release, Rollout
from shipyard.errors import StateError


@dataclass(frozen=True)
class Pin:
    service: str
    release: str        # what runs instead
    declared: str       # what the spec declared when the pin was made
    reason: str
    at: float

    def to_dict(self) -> dict[str, Any]:
        return vars(self).copy()


def apply_pins(services: dict[str, DesiredService], pins: dict[str, Pin], releases: dict[str, Release]
               ) -> tuple[dict[str, DesiredService], dict[str, Pin], list[Pin]]:
    """The services to run, the pins still in force, and the pins the spec has moved past."""
    effective = dict(services)
    kept: dict[str, Pin] = {}
    dropped: list[Pin] = []
    for name, pin in sorted(pins.items()):
        declared = services.get(name)
        release = releases.get(pin.release)
        if declared is None or declared.release.id != pin.declared or release is None:
            dropped.append(pin)
            continue
        effective[name] = replace(declared, release=release, strategy="rolling")
        kept[name] = pin
    return effective, kept, dropped


def pin_conditions(pins: dict[str, Pin], declared: dict[str, DesiredService],
                   releases: dict[str, Release]) -> list[Condition]:
    """One condition per pinned service: it runs an older release than the spec asks for."""
    conditions = []
    for name, pin in sorted(pins.items()):
        wanted = declared[name].release
        running = releases[pin.release]
        conditions.append(Condition(
            "InSync", "False", "RolledBack",
            f"{name} runs release {running.id} (version {running.version}) while the spec asks for "
            f"{wanted.id} (version {wanted.version}): {pin.reason}; a change of the spec ends this", name))
    return conditions


def undo_target(service: str, running: str, history: list[Rollout], releases: list[Release],
                to: str | None) -> Release:
    """The release `rollout undo` goes back to: `to` (id, digest or version), else the one before `running`.

    "The one before" is the release the current rollout replaced, else the newest other release
    that was rolled out completely.
    """
    if to is not None:
        matches = [r for r in releases if to in (r.id, r.id.rsplit("-", 1)[-1], r.version)]
        if not matches:
            known = ", ".join(f"{r.id} ({r.version})" for r in releases) or "none"
            raise StateError(f"{service} has no release {to!r}; known releases: {known}")
        chosen = matches[-1]  # the newest of a version that was released more than once
    else:
        by_id = {r.id: r for r in releases}
        current = next((r for r in history if r.target == running), None)
        candidates = [current.previous] if current is not None and current.previous else []
        candidates += [r.target for r in history if r.status == "complete"]
        chosen_id = next((c for c in candidates if c != running and c in by_id), None)
        if chosen_id is None:
            raise StateError(f"{service} has no earlier release to go back to (it only ever ran {running})")
        chosen = by_id[chosen_id]
    if chosen.id == running:
        raise StateError(f"{service} already runs release {running} ({chosen.version})")
    return chosen
