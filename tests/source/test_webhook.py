"""Tests of webhook signature checks and push payload parsing."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from shipyard.source.webhook import Push, parse_push, verify_signature

SECRET = b"It's a Secret to Everybody"
BODY = b"Hello, World!"
# The example from GitHub's documentation on validating webhook deliveries.
GOOD = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


@pytest.mark.parametrize(
    "secret, body, header, valid",
    [
        (SECRET, BODY, GOOD, True),
        (SECRET, BODY, GOOD.upper().replace("SHA256=", "sha256="), True),
        (SECRET, BODY + b" ", GOOD, False),  # body changed
        (b"another secret", BODY, GOOD, False),
        (SECRET, BODY, None, False),  # header missing
        (SECRET, BODY, "", False),
        (SECRET, BODY, GOOD.replace("sha256=", "sha1="), False),  # wrong prefix
        (SECRET, BODY, GOOD.removeprefix("sha256="), False),  # no prefix
        (SECRET, BODY, "sha256=", False),
        (SECRET, BODY, GOOD[:-2], False),  # truncated
        (b"", BODY, "sha256=" + hmac.new(b"", BODY, hashlib.sha256).hexdigest(), False),  # no secret set
    ],
)
def test_verify_signature(secret: bytes, body: bytes, header: str | None, valid: bool) -> None:
    assert verify_signature(secret, body, header) is valid


SHA = "f" * 40


@pytest.mark.parametrize(
    "payload, push",
    [
        (
            {"ref": "refs/heads/main", "before": "0" * 40, "after": SHA, "repository": {}},
            Push("refs/heads/main", SHA),
        ),
        (
            {"object_kind": "push", "ref": "refs/heads/main", "after": SHA},
            Push("refs/heads/main", SHA),
        ),  # GitLab
        ({"ref": "refs/tags/v1", "after": "a" * 64}, Push("refs/tags/v1", "a" * 64)),  # sha256 repository
        ({"ref": "refs/heads/old", "after": "0" * 40}, Push("refs/heads/old", None)),  # deleted
        ({"zen": "Keep it logically awesome.", "hook_id": 1}, None),  # GitHub ping
        ({"ref": "main", "after": SHA}, None),
        ({"ref": "refs/heads/main", "after": "not-a-sha"}, None),
        ({"ref": "refs/heads/main"}, None),
        ([1, 2], None),
    ],
)
def test_parse_push(payload: object, push: Push | None) -> None:
    assert parse_push(json.dumps(payload).encode()) == push


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"payload=%7B%7D"])
def test_parse_push_tolerates_what_is_not_json(body: bytes) -> None:
    assert parse_push(body) is None


@pytest.mark.parametrize(
    "followed, matches",
    [("main", True), ("refs/heads/main", True), ("mai", False), ("heads/main", False), ("v1", False)],
)
def test_push_matches_the_followed_ref(followed: str, matches: bool) -> None:
    assert Push("refs/heads/main", SHA).matches(followed) is matches
    ref, after = Push("refs/heads/main", SHA)  # a push is also the (ref, after) pair
    assert (ref, after) == ("refs/heads/main", SHA)


@pytest.mark.parametrize(
    "headers, signature",
    [
        ({"X-Hub-Signature-256": "sha256=ab", "X-Hub-Signature": "sha1=cd"}, "sha256=ab"),  # GitHub sends both
        ({"X-Hub-Signature": "sha256=ab"}, "sha256=ab"),  # Bitbucket
        ({"X-Hub-Signature": "sha1=cd"}, None),  # SHA-1 only: not accepted
        ({}, None),
    ],
)
def test_signature_header_prefers_sha256_under_either_name(headers: dict[str, str], signature: str | None) -> None:
    from shipyard.source.webhook import signature_header

    assert signature_header(headers) == signature
