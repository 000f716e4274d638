"""Table tests of the version policies of automation rules."""

from __future__ import annotations

import pytest

import pydantic

from shipyard.promotion.policy import newest
from shipyard.spec.models import AlphabeticalPolicy, NumericalPolicy, OrderPolicy, SemverPolicy, TagFilter

VERSIONS = ["1.0.0", "1.2.0", "1.10.0", "2.0.0-rc.1", "2.0.0", "v2.1.0", "latest", "0.9.9"]


@pytest.mark.parametrize("range_, expected", [
    (">=0.0.0", "v2.1.0"),
    ("^1.0.0", "1.10.0"),
    ("~1.2.0", "1.2.0"),
    (">=1.0.0 <2.0.0", "1.10.0"),
    ("<1.0.0", "0.9.9"),
    (">=3.0.0", None),
])
def test_semver_picks_the_greatest_version_in_the_range(range_, expected):
    assert newest(VERSIONS, SemverPolicy(semver=range_)) == expected


def test_a_prerelease_counts_only_when_the_range_asks_for_it():
    assert newest(["1.0.0", "2.0.0-rc.1"], SemverPolicy(semver=">=1.0.0")) == "1.0.0"
    assert newest(["1.0.0", "2.0.0-rc.1"], SemverPolicy(semver=">=2.0.0-rc.0")) == "2.0.0-rc.1"


def test_numerical_and_alphabetical_orders():
    builds = ["7", "12", "9", "x"]
    assert newest(builds, NumericalPolicy(numerical=OrderPolicy(order="asc"))) == "12"
    assert newest(builds, NumericalPolicy(numerical=OrderPolicy(order="desc"))) == "7"
    stamps = ["RELEASE.2024-05-01", "RELEASE.2024-12-01", "RELEASE.2024-06-30"]
    assert newest(stamps, AlphabeticalPolicy(alphabetical=OrderPolicy())) == "RELEASE.2024-12-01"


def test_a_tag_filter_keeps_matching_versions_and_can_extract_what_is_compared():
    versions = ["main-100-abc", "main-99-def", "feature-500-xyz"]
    rule = TagFilter(pattern=r"main-(?P<n>\d+)-.*", extract="$n")
    assert newest(versions, NumericalPolicy(numerical=OrderPolicy()), rule) == "main-100-abc"
    assert newest(["1.0.0", "1.1.0-rc.1"], SemverPolicy(semver="*"), TagFilter(pattern=r"^\d+\.\d+\.\d+$")) == "1.0.0"


def test_ranges_are_checked_by_the_spec():
    assert SemverPolicy(semver="^1.2").semver == "^1.2"
    with pytest.raises(pydantic.ValidationError, match="not a version range"):
        SemverPolicy(semver="not a range!!")
