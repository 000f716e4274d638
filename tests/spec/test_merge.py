"""Table tests of the overlay rules: maps merge key by key, lists replace, `null` removes a key."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shipyard.spec.merge import merge, merge_positions
from shipyard.spec.yamlfile import Position

MERGES = [
    pytest.param({"a": 1}, {"b": 2}, {"a": 1, "b": 2}, id="new key added"),
    pytest.param({"a": 1}, {"a": 2}, {"a": 2}, id="scalar replaced"),
    pytest.param({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}}, {"a": {"x": 1, "y": 3}}, id="maps merge key by key"),
    pytest.param({"a": {"b": {"c": 1, "d": 2}}}, {"a": {"b": {"d": 3}}}, {"a": {"b": {"c": 1, "d": 3}}},
                 id="nested maps merge"),
    pytest.param({"a": [1, 2, 3]}, {"a": [4]}, {"a": [4]}, id="lists replace"),
    pytest.param({"a": [{"x": 1}]}, {"a": [{"y": 2}]}, {"a": [{"y": 2}]}, id="lists of maps replace, not merge"),
    pytest.param({"a": [1, 2]}, {"a": []}, {"a": []}, id="empty list empties"),
    pytest.param({"a": 1, "b": 2}, {"a": None}, {"b": 2}, id="null removes a key"),
    pytest.param({"a": {"x": 1, "y": 2}}, {"a": {"x": None}}, {"a": {"y": 2}}, id="null removes a nested key"),
    pytest.param({"a": {"x": 1}}, {"a": None}, {}, id="null removes a whole map"),
    pytest.param({"a": 1}, {"zzz": None}, {"a": 1}, id="null of an absent key is a no-op"),
    pytest.param({"a": 1}, {"b": {"x": 1, "y": None}}, {"a": 1, "b": {"x": 1}}, id="null inside a new map is dropped"),
    pytest.param({}, {"b": {"c": {"d": None, "e": 1}}}, {"b": {"c": {"e": 1}}}, id="nested null in a new map dropped"),
    pytest.param({"a": {"x": 1}}, {"a": 5}, {"a": 5}, id="scalar replaces a map"),
    pytest.param({"a": 5}, {"a": {"x": None, "y": 1}}, {"a": {"y": 1}}, id="null inside a map replacing a scalar"),
    pytest.param({"a": [1]}, {"a": {"x": 1}}, {"a": {"x": 1}}, id="map replaces a list"),
    pytest.param({"a": 1}, {}, {"a": 1}, id="empty overlay changes nothing"),
    pytest.param({"env": {"A": "1", "B": "2"}}, {"env": {"B": None, "C": "3"}}, {"env": {"A": "1", "C": "3"}},
                 id="env var removed and added"),
    pytest.param(1, 2, 2, id="scalars: the overlay wins"),
]


@pytest.mark.parametrize(("base", "overlay", "expected"), MERGES)
def test_merge(base: Any, overlay: Any, expected: Any) -> None:
    assert merge(base, overlay) == expected


@pytest.mark.parametrize(("base", "overlay", "expected"), MERGES)
def test_merge_does_not_mutate_its_inputs(base: Any, overlay: Any, expected: Any) -> None:
    before = copy.deepcopy((base, overlay))
    merge(base, overlay)
    assert (base, overlay) == before


def test_merge_result_shares_nothing_with_its_inputs() -> None:
    base = {"a": {"x": [1, 2]}, "b": [{"y": 1}]}
    overlay = {"c": {"z": [3]}}
    merged = merge(base, overlay)
    merged["a"]["x"].append(99)
    merged["b"][0]["y"] = 99
    merged["c"]["z"].append(99)
    assert base == {"a": {"x": [1, 2]}, "b": [{"y": 1}]}
    assert overlay == {"c": {"z": [3]}}


def _at(file: str, line: int) -> Position:
    return Position(file, line, 1)


@pytest.mark.parametrize(("merged", "base", "overlay", "expected"), [
    pytest.param({"a": 1, "b": 2}, {("a",): _at("base", 1), ("b",): _at("base", 2)}, {("b",): _at("env", 7)},
                 {("a",): _at("base", 1), ("b",): _at("env", 7)}, id="overlay wins where it wrote"),
    pytest.param({"b": 2}, {("a",): _at("base", 1), ("b",): _at("base", 2)}, {("a",): _at("env", 7)},
                 {("b",): _at("base", 2), ("a",): _at("env", 7)}, id="a removed key keeps the overlay's position"),
    pytest.param({"a": [9]}, {("a",): _at("base", 1), ("a", 0): _at("base", 1), ("a", 1): _at("base", 2)},
                 {("a",): _at("env", 3), ("a", 0): _at("env", 3)},
                 {("a",): _at("env", 3), ("a", 0): _at("env", 3)}, id="items of a replaced, shorter list dropped"),
    pytest.param({"a": {"x": 1}}, {("a",): _at("base", 1), ("a", "x"): _at("base", 2), ("a", "y"): _at("base", 3)},
                 {}, {("a",): _at("base", 1), ("a", "x"): _at("base", 2)}, id="positions of removed keys dropped"),
    pytest.param({"a": 5}, {("a",): _at("base", 1), ("a", "x"): _at("base", 2)}, {("a",): _at("env", 4)},
                 {("a",): _at("env", 4)}, id="a scalar replacing a map drops the map's children"),
])
def test_merge_positions(merged: Any, base: dict, overlay: dict, expected: dict) -> None:
    assert merge_positions(merged, base, overlay) == expected
