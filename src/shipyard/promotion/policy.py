"""Which version is newest under an automation rule's policy: semver range, numerical or alphabetical (pure).

Ranges use npm's syntax through `semantic_version.NpmSpec` (`^1.2`, `~1.4.0`, `>=1.0.0 <2.0.0`), the
closest maintained Python match to the Masterminds ranges Flux's ImagePolicy takes.
"""

from __future__ import annotations

import re
from typing import Iterable, Optional

import semantic_version

from shipyard.spec.models import AlphabeticalPolicy, NumericalPolicy, SemverPolicy, TagFilter


def newest(versions: Iterable[str], policy: SemverPolicy | NumericalPolicy | AlphabeticalPolicy,
           tag_filter: Optional[TagFilter] = None) -> Optional[str]:
    """The newest version the policy allows, or None when none does."""
    candidates = [(version, _compared(version, tag_filter)) for version in versions]
    kept = [(version, value) for version, value in candidates if value is not None]
    if isinstance(policy, SemverPolicy):
        spec = semantic_version.NpmSpec(policy.semver)
        parsed = [(version, _semver(value)) for version, value in kept]
        allowed = [(version, v) for version, v in parsed if v is not None and v in spec]
        return max(allowed, key=lambda item: item[1])[0] if allowed else None
    if isinstance(policy, NumericalPolicy):
        numbers = [(version, _number(value)) for version, value in kept]
        valid = [(version, n) for version, n in numbers if n is not None]
        if not valid:
            return None
        pick = max if policy.numerical.order == "asc" else min
        return pick(valid, key=lambda item: item[1])[0]
    if not kept:
        return None
    pick = max if policy.alphabetical.order == "asc" else min
    return pick(kept, key=lambda item: item[1])[0]


def _compared(version: str, tag_filter: Optional[TagFilter]) -> Optional[str]:
    if tag_filter is None:
        return version
    match = re.fullmatch(tag_filter.pattern, version) or re.match(tag_filter.pattern, version)
    if match is None:
        return None
    if tag_filter.extract is None:
        return version
    return match.expand(re.sub(r"\$(\w+)", r"\\g<\1>", tag_filter.extract))


def _semver(text: str) -> Optional[semantic_version.Version]:
    try:
        return semantic_version.Version(text.removeprefix("v"))
    except ValueError:
        return None


def _number(text: str) -> Optional[float]:
    try:
        return float(text)
    except ValueError:
        return None
