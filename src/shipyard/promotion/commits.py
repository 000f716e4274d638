"""The commits promotion makes: which overlay line changes, and a message that is the audit trail (pure).

`git log` alone must tell who promoted what, when, and on which evidence, so each message carries
trailers: Service, Version, Digest, From, To, Verified, Evidence, Promoted-by, and Forced when a
version went on without being verified.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class Move:
    """One service moving to one version in one environment's overlay."""

    service: str
    version: str
    digest: Optional[str] = None
    previous: Optional[str] = None              # the version the overlay named before
    source_revision: Optional[str] = None       # the artifact's source commit (automation)
    verification: Optional[dict[str, Any]] = None   # the source environment's verdict, with evidence


def _when(at: Optional[float]) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)) if at is not None else "?"


def _evidence(verification: Optional[dict[str, Any]]) -> str:
    if not verification:
        return "none"
    evidence = verification.get("evidence") or {}
    parts = []
    rollout = evidence.get("rollout")
    if rollout:
        parts.append(f"{rollout.get('strategy')} rollout completed {_when(rollout.get('completed_at'))}")
    if "soak" in evidence:
        parts.append(f"soaked {evidence['soak']:g}s with {evidence.get('restarts', 0)} restarts")
    for check in evidence.get("checks") or []:
        parts.append(f"{check.get('check', 'check')}: {'passed' if check.get('passed') else 'failed'}"
                     + (f" ({check['value']})" if check.get("value") is not None else ""))
    return "; ".join(parts) or json.dumps(evidence, sort_keys=True)


def promotion_message(moves: list[Move], source: str, target: str, by: str, forced: Optional[str] = None) -> str:
    """`promote catalog 1.2.0 dev → prod`, then one block of trailers per service."""
    if len(moves) == 1:
        move = moves[0]
        subject = f"promote {move.service} {move.version} {source} → {target}"
    else:
        subject = f"promote {len(moves)} services {source} → {target}: " + ", ".join(
            f"{m.service} {m.version}" for m in moves)
    blocks = []
    for move in moves:
        lines = [f"Service: {move.service}", f"Version: {move.previous or '(none)'} → {move.version}"]
        if move.digest:
            lines.append(f"Digest: {move.digest}")
        verification = move.verification or {}
        lines += [f"From: {source}", f"To: {target}",
                  f"Verified: {_when(verification.get('since')) if verification.get('state') == 'verified' else 'no'}",
                  f"Evidence: {_evidence(verification)}"]
        blocks.append("\n".join(lines))
    trailer = [f"Promoted-by: {by}"]
    if forced:
        trailer.append(f"Forced: {forced}")
    return "\n\n".join([subject, *blocks, "\n".join(trailer)]) + "\n"


def automation_message(move: Move, environment: str, by: str) -> str:
    """An automation commit: a new version found in the artifact store, committed into ENVIRONMENT."""
    subject = f"{environment}: {move.service} {move.previous or '(none)'} → {move.version}"
    lines = [f"Service: {move.service}", f"Version: {move.previous or '(none)'} → {move.version}"]
    if move.digest:
        lines.append(f"Digest: {move.digest}")
    if move.source_revision:
        lines.append(f"Source-revision: {move.source_revision}")
    lines += [f"To: {environment}", f"Promoted-by: {by}"]
    return f"{subject}\n\n" + "\n".join(lines) + "\n"


def refusal(verification: Optional[dict[str, Any]], environment: str, version: str,
            rejected: Optional[list[dict[str, Any]]] = None) -> Optional[str]:
    """Why VERSION may not leave ENVIRONMENT (None: it is verified there); REJECTED lists the versions
    rejected there earlier."""
    earlier = next((r for r in rejected or [] if r.get("version") == version), None)
    if earlier is not None and (verification is None or verification.get("version") != version
                                or verification.get("state") != "verified"):
        return f"{version} was rejected in {environment}: {earlier.get('reason', '')}"
    if verification is None or verification.get("version") != version:
        return f"{version} is not deployed in {environment}"
    state = verification.get("state")
    if state == "verified":
        return None
    reason = verification.get("reason") or state
    if state == "rejected":
        return f"{version} was rejected in {environment}: {reason}"
    if state == "soaking":
        return f"{version} is not verified in {environment} yet: {reason}"
    if state == "verifying":
        return f"{version} is not verified in {environment} yet: {reason}"
    return f"{version} is not verified in {environment}: {reason}"
