"""`strategy.canary.parallelRun` in the spec: defaults, validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shipyard.spec.models import CanaryStrategy


def test_defaults_and_the_documented_shape() -> None:
    canary = CanaryStrategy.model_validate({"parallelRun": {"percent": 10, "methods": ["GET"],
                                                            "ignore": {"headers": ["x-request-id"],
                                                                       "json": ["$.timestamp", "$.items[*].id"]},
                                                            "maxDifferences": 0}})
    run = canary.parallel_run
    assert run is not None and (run.percent, run.methods, run.max_differences) == (10, ["GET"], 0)
    assert run.ignore.json_ == ["$.timestamp", "$.items[*].id"] and run.ignore.headers == ["x-request-id"]
    assert CanaryStrategy().parallel_run is None
    assert CanaryStrategy.model_validate({"parallelRun": {}}).parallel_run.methods == ["GET"]


@pytest.mark.parametrize("run, where", [
    ({"percent": 0}, "percent"),
    ({"percent": 101}, "percent"),
    ({"methods": []}, "methods"),
    ({"methods": ["FETCH"]}, "methods"),
    ({"maxDifferences": -1}, "maxDifferences"),
    ({"ignore": {"json": ["timestamp"]}}, "json"),
    ({"ignore": {"json": ["$.items["]}}, "json"),
    ({"unknown": 1}, "unknown"),
])
def test_bad_settings_are_refused_where_they_are(run, where) -> None:
    with pytest.raises(ValidationError) as caught:
        CanaryStrategy.model_validate({"parallelRun": run})
    assert where in str(caught.value)
