"""Push webhooks, purely: checking a GitHub-style signature and reading the pushed ref and commit."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import NamedTuple

SIGNATURE_HEADER = "X-Hub-Signature-256"  # GitHub and Gitea send it; GitLab sends a plain token instead
LEGACY_SIGNATURE_HEADER = "X-Hub-Signature"  # Bitbucket sends `sha256=…` under this name (GitHub: sha1, refused)

_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_PREFIX = "sha256="


class Push(NamedTuple):
    """A push to REF. AFTER is the commit the ref now points at, or None when the push deleted it."""

    ref: str
    after: str | None

    def matches(self, followed: str) -> bool:
        """Whether this push moved FOLLOWED, given as `main`, `v1.2` or a full `refs/...` name."""
        return self.ref in (followed, f"refs/heads/{followed}", f"refs/tags/{followed}")


def signature_header(headers: Mapping[str, str]) -> str | None:
    """The signature a delivery carries: X-Hub-Signature-256, else an X-Hub-Signature that is `sha256=…`."""
    signature = headers.get(SIGNATURE_HEADER)
    if signature is None:
        legacy = headers.get(LEGACY_SIGNATURE_HEADER)
        signature = legacy if legacy is not None and legacy.startswith(_PREFIX) else None
    return signature


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether HEADER is `sha256=<hex HMAC-SHA256 of BODY keyed with SECRET>`; False without a secret."""
    if not secret or header is None or not header.startswith(_PREFIX):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header[len(_PREFIX) :].strip().lower().encode())


def parse_push(body: bytes) -> Push | None:
    """The ref and new commit of a GitHub, Gitea or GitLab push payload; None for a ping or anything else."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    ref, after = payload.get("ref"), payload.get("after")
    if not isinstance(ref, str) or not ref.startswith("refs/"):
        return None
    if not isinstance(after, str) or not _SHA.fullmatch(after):
        return None
    return Push(ref=ref, after=None if after.strip("0") == "" else after)
