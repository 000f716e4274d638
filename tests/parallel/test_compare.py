"""The comparison, table-tested: differences named by field, noise cancelled, ignore rules, the verdict."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shipyard.parallel.compare import Answer, Report, Settings, fields_differing, json_path, record, verdict


def answer(body: Any, status: int = 200, **headers: str) -> Answer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Answer(status, {"content-type": "application/json", **headers}, raw)


SETTINGS = Settings()


@pytest.mark.parametrize(("a", "b", "expected"), [
    (answer({"x": 1}), answer({"x": 1}), {}),
    (answer({"x": 1}), answer({"x": 2}), {"$.x": (1, 2)}),
    (answer({"items": [{"p": 1}]}), answer({"items": [{"p": 3}]}), {"$.items[0].p": (1, 3)}),
    (answer({"x": 1}), answer({"x": 1, "y": 2}), {"$.y": (None, 2)}),
    (answer({"x": 1}), answer({"x": 1}, 500), {"status": (200, 500)}),
    (answer(b"plain"), answer(b"other"), {"body": ("plain", "other")}),
    (answer({"x": 1}, **{"x-cache": "hit"}), answer({"x": 1}, **{"x-cache": "miss"}), {"header:x-cache": ("hit", "miss")}),
    (answer({"x": 1}, date="a"), answer({"x": 1}, date="b"), {}),  # Date always differs: never compared
])
def test_fields_differing(a: Answer, b: Answer, expected: dict[str, Any]) -> None:
    assert fields_differing(a, b, SETTINGS) == expected


def test_ignore_rules_remove_headers_and_json_paths() -> None:
    settings = Settings(ignore_headers=("X-Request-Id",), ignore_json=("$.timestamp", "$.items[*].id"))
    a = answer({"timestamp": 1, "items": [{"id": 1, "p": 1}]}, **{"x-request-id": "a"})
    b = answer({"timestamp": 2, "items": [{"id": 2, "p": 1}]}, **{"x-request-id": "b"})
    assert fields_differing(a, b, settings) == {}


def test_noise_between_two_live_answers_is_learnt_and_cancelled() -> None:
    report = Report()
    for clock in range(5):
        primary, secondary = answer({"t": clock, "price": 10}), answer({"t": clock + 100, "price": 10})
        candidate = answer({"t": clock + 200, "price": 12})
        assert record(report, "GET /item", primary, secondary, candidate, SETTINGS) == {"$.price": (10, 12)}
    document = report.to_dict()
    assert document["compared"] == 5 and document["differing"] == 5
    assert document["differences"] == [{"route": "GET /item", "field": "$.price", "count": 5,
                                         "examples": [{"primary": 10, "candidate": 12}] * 3}]
    assert document["noise"] == {"GET /item": ["$.t"]}


def test_noise_learnt_on_one_request_cancels_the_field_on_later_ones_of_the_route() -> None:
    report = Report()
    record(report, "GET /a", answer({"id": 1}), answer({"id": 2}), answer({"id": 3}), SETTINGS)
    assert record(report, "GET /a", answer({"id": 5}), answer({"id": 5}), answer({"id": 9}), SETTINGS) == {}
    assert record(report, "GET /b", answer({"id": 5}), answer({"id": 5}), answer({"id": 9}), SETTINGS) == {
        "$.id": (5, 9)}  # noise is per route


def test_verdict_fails_above_max_differences_and_names_the_fields() -> None:
    report = Report()
    record(report, "GET /item", answer({"p": 1}), answer({"p": 1}), answer({"p": 2}), SETTINGS)
    passed, message = verdict(report, Settings(max_differences=0))
    assert not passed and "GET /item $.price" not in message and "GET /item $.p (1)" in message
    assert verdict(report, Settings(max_differences=1))[0]
    assert verdict(report, Settings())[0]  # without maxDifferences the run only reports


def test_only_listed_methods_are_copied() -> None:
    assert Settings().copies("GET") and not Settings().copies("POST")
    assert Settings(methods=("GET", "POST")).copies("post")


def test_json_path() -> None:
    assert json_path(["items", 0, "price"]) == "$.items[0].price"
