"""A canary strategy's `match` entries (spec) as the data plane's route matches (proxy)."""

from __future__ import annotations

from collections.abc import Sequence

from shipyard.proxy import model as proxy
from shipyard.spec import models as spec


def route_matches(matches: Sequence[spec.Match]) -> tuple[proxy.Match, ...]:
    """The proxy matches of `matches`, in order; requests matching any go to the canary.

    Raises ValueError for a header entry without exactly one of exact, prefix or regex, or with
    a value the proxy refuses (an invalid header name or regex), naming the entry.
    """
    return tuple(_route_match(match) for match in matches)


def _route_match(match: spec.Match) -> proxy.Match:
    if match.cookie is not None:
        return proxy.CookieMatch(match.cookie.name, match.cookie.exact)
    assert match.header is not None  # spec.Match holds exactly one of header or cookie
    return _header_match(match.header)


def _header_match(header: spec.HeaderMatch) -> proxy.HeaderMatch:
    given = [(kind, value) for kind in proxy.HEADER_MATCH_KINDS
             if (value := getattr(header, kind)) is not None]
    if len(given) != 1:
        found = ", ".join(kind for kind, _ in given) or "none"
        raise ValueError(f"match header {header.name!r}: set exactly one of exact, prefix or "
                         f"regex (found {found})")
    kind, value = given[0]
    return proxy.HeaderMatch(header.name, value, kind)
