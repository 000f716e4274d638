"""Tests of turning a canary's `match` entries (spec) into route matches (proxy)."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.delivery.matching import route_matches
from shipyard.proxy.model import CookieMatch, HeaderMatch
from shipyard.spec.models import Match


def matches(*entries: dict[str, Any]) -> tuple[HeaderMatch | CookieMatch, ...]:
    return route_matches([Match.model_validate(entry) for entry in entries])


def test_each_kind_of_entry_becomes_its_proxy_match_in_order() -> None:
    assert matches(
        {"header": {"name": "X-Canary", "exact": "always"}},
        {"header": {"name": "x-beta", "prefix": "team-"}},
        {"header": {"name": "x-user", "regex": r"user-\d+"}},
        {"cookie": {"name": "group", "exact": "b"}},
    ) == (
        HeaderMatch("X-Canary", "always"),
        HeaderMatch("x-beta", "team-", "prefix"),
        HeaderMatch("x-user", r"user-\d+", "regex"),
        CookieMatch("group", "b"),
    )
    assert matches() == ()


@pytest.mark.parametrize(("header", "message"), [
    ({"name": "x-a"}, r"a header match has exactly one of exact, prefix or regex"),
    ({"name": "x-a", "exact": "1", "regex": "1"}, r"a header match has exactly one of exact, prefix or regex"),
    ({"name": "x-a", "regex": "(unclosed"},
     r"header match x-a: regex '\(unclosed' does not compile"),
    ({"name": "x a", "exact": "1"}, "invalid header name 'x a'"),
])
def test_entries_the_proxy_cannot_route_are_refused(header: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        matches({"header": header})
