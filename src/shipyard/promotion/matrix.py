"""`shipyard versions`: the service × environment matrix of declared and running versions (pure).

Declared versions come from git (the project rendered per environment); what runs, its digest,
rollout state and verification come from each environment's control plane. An environment that
could not be asked shows `unknown` in every cell, never an error.
"""

from __future__ import annotations

from typing import Any, Optional

UNKNOWN = "unknown"


def cell(declared: Optional[str], status: Optional[dict[str, Any]], reachable: bool) -> dict[str, Any]:
    """One service in one environment; `status` is that service's entry of the environment's status."""
    if not reachable:
        return {"declared": declared, "running": UNKNOWN, "digest": UNKNOWN, "rollout": UNKNOWN,
                "verified": UNKNOWN, "since": UNKNOWN}
    if status is None:
        return {"declared": declared, "running": None, "digest": None, "rollout": None, "verified": None,
                "since": None}
    rollout = status.get("rollout") or {}
    verification = status.get("verified") or {}
    state = rollout.get("status")
    if state == "progressing" and rollout.get("phase"):
        state = f"progressing ({rollout['phase']}, {rollout.get('weight', 0)}%)"
    since = rollout.get("updated_at") if rollout.get("status") == "complete" else rollout.get("started_at")
    digest = (status.get("artifact") or {}).get("digest")
    return {"declared": declared, "running": status.get("version"), "digest": digest,
            "rollout": state, "verified": verification.get("state") if verification.get("version") ==
            status.get("version") else None, "since": since}


def matrix(environments: list[str], declared: dict[str, dict[str, str]],
           statuses: dict[str, Optional[dict[str, Any]]]) -> dict[str, Any]:
    """`declared[env][service]` from git; `statuses[env]` is the env's status document, or None if unreachable."""
    services = sorted({name for versions in declared.values() for name in versions}
                      | {s["name"] for doc in statuses.values() if doc for s in doc.get("services", [])})
    result: dict[str, dict[str, Any]] = {}
    for service in services:
        row: dict[str, Any] = {}
        for environment in environments:
            document = statuses.get(environment)
            entry = None
            if document is not None:
                entry = next((s for s in document.get("services", []) if s.get("name") == service), None)
            row[environment] = cell(declared.get(environment, {}).get(service), entry, document is not None)
        result[service] = row
    return {"environments": list(environments), "services": result}
