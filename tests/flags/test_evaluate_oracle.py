"""Shipyard's evaluator against flagd's own Python evaluator (openfeature-provider-flagd's in-process resolver,
reading the same flag file): value, variant and reason agree for 10,000 random contexts.

flagd names every targeting result TARGETING_MATCH; Shipyard reports SPLIT when the variant came out of
`fractional` (OpenFeature's finer reason), so SPLIT is compared as TARGETING_MATCH. Everything else is equal.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.provider import ProviderStatus

from shipyard.flags.evaluate import SPLIT, TARGETING_MATCH, evaluate
from shipyard.flags.files import load_flags
from tests.controlplane import wait_for

from .oracle_flags import FLAG_FILE, TYPES, random_context

CONTEXTS = 10_000


def write_project(root: Path) -> Path:
    (root / "flags").mkdir(parents=True)
    path = root / "flags" / "flags.json"
    path.write_text(json.dumps(FLAG_FILE, indent=2), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def flagd_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = write_project(tmp_path_factory.mktemp("oracle"))
    api.set_provider(FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=str(path)), "flagd")
    client = api.get_client("flagd")
    # the file provider reads its file in a thread of its own: on a loaded machine it is not ready at once
    wait_for(lambda: client.get_provider_status() == ProviderStatus.READY, timeout=30,
             what="flagd's file provider to be ready")
    yield client
    api.shutdown()


def flagd_answer(client: Any, key: str, context: dict[str, Any]) -> tuple[Any, str | None, str]:
    kind, default = TYPES[key]
    attributes = {k: v for k, v in context.items() if k != "targetingKey"}
    ctx = EvaluationContext(targeting_key=context.get("targetingKey"), attributes=attributes)
    details = getattr(client, f"get_{kind}_details")(key, default, ctx)
    assert details.error_code is None, (key, context, details)
    return details.value, details.variant, str(details.reason.value if hasattr(details.reason, "value") else details.reason)


def shipyard_answer(resolution: Any, key: str) -> tuple[Any, str | None, str]:
    value = resolution.value if resolution.has_value else TYPES[key][1]
    if TYPES[key][0] == "float" and isinstance(value, int):
        value = float(value)
    reason = TARGETING_MATCH if resolution.reason == SPLIT else resolution.reason
    return value, resolution.variant, reason


def test_shipyard_evaluates_like_flagd(tmp_path: Path, flagd_client: Any) -> None:
    write_project(tmp_path)
    flag_set, problems = load_flags(tmp_path, None)
    assert problems == []
    rng = random.Random(13)
    seen: set[tuple[str, str]] = set()
    for _ in range(CONTEXTS):
        context = random_context(rng)
        for key in sorted(FLAG_FILE["flags"]):
            ours = evaluate(flag_set, key, context, time.time())
            assert ours.error_code is None, (key, context, ours)
            assert shipyard_answer(ours, key) == flagd_answer(flagd_client, key, context), (key, context)
            seen.add((key, ours.reason))
    # the contexts reached every kind of answer, so the agreement above covers all of them
    assert {reason for _, reason in seen} == {"STATIC", "TARGETING_MATCH", "SPLIT", "DISABLED", "DEFAULT"}
    assert ("beta-split", "DEFAULT") in seen and ("api-version", "DEFAULT") in seen


def test_split_shares_follow_the_weights(tmp_path: Path) -> None:
    write_project(tmp_path)
    flag_set, _ = load_flags(tmp_path, None)
    rng = random.Random(7)
    answers = [evaluate(flag_set, "banner", {"targetingKey": f"u{rng.random()}", "email": "x@example.org"}, 0)
               for _ in range(5000)]
    share_on = sum(a.value is True for a in answers) / len(answers)
    assert all(a.reason == SPLIT for a in answers)
    assert 0.08 < share_on < 0.12
