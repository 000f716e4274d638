"""Promotion and automation commit messages: the audit trail git log shows."""

from __future__ import annotations

import pytest

from shipyard.promotion.commits import Move, automation_message, promotion_message, refusal

VERIFIED = {"version": "1.2.0", "state": "verified", "since": 0.0, "reason": "verified",
            "evidence": {"rollout": {"strategy": "canary", "completed_at": 0.0}, "soak": 300.0, "restarts": 0,
                         "checks": [{"check": "successRate ≥ 99", "passed": True, "value": 99.8}]}}


def test_a_promotion_message_names_what_where_who_and_the_evidence():
    message = promotion_message([Move("catalog", "1.2.0", "sha256:abc", "1.1.0", verification=VERIFIED)],
                                "dev", "prod", "shipyard promote (alice@laptop)")
    subject, *rest = message.splitlines()
    assert subject == "promote catalog 1.2.0 dev → prod"
    for line in ("Version: 1.1.0 → 1.2.0", "Digest: sha256:abc", "From: dev", "To: prod",
                 "Verified: 1970-01-01T00:00:00Z", "Promoted-by: shipyard promote (alice@laptop)"):
        assert line in rest, line
    assert "canary rollout completed" in message and "soaked 300s with 0 restarts" in message
    assert "successRate ≥ 99: passed (99.8)" in message and "Forced" not in message


def test_a_forced_promotion_says_so_and_why():
    message = promotion_message([Move("catalog", "1.3.0")], "dev", "prod", "bob", forced="soaking for 3m more")
    assert "Forced: soaking for 3m more" in message and "Verified: no" in message


def test_several_services_in_one_commit():
    message = promotion_message([Move("a", "1"), Move("b", "2")], "staging", "prod", "x")
    assert message.startswith("promote 2 services staging → prod: a 1, b 2\n")


def test_an_automation_message():
    message = automation_message(Move("catalog", "1.2.0", "sha256:abc", "1.1.0", "9f8e7d"), "dev", "automation")
    assert message.startswith("dev: catalog 1.1.0 → 1.2.0\n") and "Source-revision: 9f8e7d" in message


@pytest.mark.parametrize("verification, expected", [
    (None, "is not deployed in dev"),
    ({**VERIFIED, "version": "1.1.0"}, "is not deployed in dev"),
    ({**VERIFIED, "state": "soaking", "reason": "soaking for 3m more"}, "not verified in dev yet: soaking for 3m more"),
    ({**VERIFIED, "state": "rejected", "reason": "rolled back: AnalysisFailed"}, "was rejected in dev: rolled back"),
    ({**VERIFIED, "state": "verifying", "reason": "verification failed"}, "not verified in dev yet"),
    (VERIFIED, None),
])
def test_refusal(verification, expected):
    result = refusal(verification, "dev", "1.2.0")
    assert result == expected if expected is None else expected in result


def test_a_version_rejected_earlier_is_refused_as_rejected():
    rejected = [{"service": "catalog", "version": "1.2.0", "reason": "rolled back: ProgressDeadlineExceeded"}]
    why = refusal({**VERIFIED, "version": "1.3.0"}, "dev", "1.2.0", rejected)
    assert why == "1.2.0 was rejected in dev: rolled back: ProgressDeadlineExceeded"
