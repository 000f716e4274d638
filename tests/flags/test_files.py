"""Flag files and overlays: what an environment's flag set is, and every mistake reported at FILE:LINE:COL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard.errors import SpecError
from shipyard.flags.evaluate import evaluate
from shipyard.spec.render import check, render
from tests.spec.conftest import ShopCopy, copy_example


@pytest.fixture
def shop(tmp_path: Path) -> ShopCopy:
    return ShopCopy(copy_example(tmp_path / "shop"))


def messages(shop: ShopCopy) -> list[str]:
    return [str(p) for p in shop.problems()]


def test_the_example_shows_recommendations_to_internal_users_and_a_tenth_of_the_others(shop: ShopCopy) -> None:
    prod = render(shop.root, "prod").flags
    assert prod is not None
    internal = evaluate(prod, "recommendations", {"targetingKey": "u1", "email": "ann@example.com"}, 0)
    assert (internal.value, internal.variant, internal.reason) == (True, "on", "TARGETING_MATCH")
    others = [evaluate(prod, "recommendations", {"targetingKey": f"user{i}", "email": "x@example.org"}, 0)
              for i in range(2000)]
    assert {a.reason for a in others} == {"SPLIT"}
    assert 0.08 < sum(a.value for a in others) / len(others) < 0.12
    dev = render(shop.root, "dev").flags  # the dev overlay drops the targeting and turns it on for everyone
    assert dev is not None
    answer = evaluate(dev, "recommendations", {}, 0)
    assert (answer.value, answer.variant, answer.reason) == (True, "on", "STATIC")


def test_render_prints_the_flagd_document_with_refs_resolved(shop: ShopCopy) -> None:
    document = render(shop.root, "prod").to_dict()["flags"]
    rule = document["flags"]["recommendations"]["targeting"]
    assert rule["if"][0] == {"ends_with": [{"var": "email"}, "@example.com"]}


def test_an_overlay_null_removes_a_flag_and_fields_merge(shop: ShopCopy) -> None:
    shop.write("flags/more.yaml", "flags:\n  motd:\n    state: ENABLED\n    variants: {a: hi, b: bye}\n"
               "    defaultVariant: a\n")
    shop.edit("environments/prod.yaml", "kind: Environment\n",
              "kind: Environment\nflags:\n  recommendations: null\n  motd: {defaultVariant: b}\n")
    flags = render(shop.root, "prod").flags
    assert flags is not None and sorted(flags.flags) == ["motd"]
    assert evaluate(flags, "motd", {}, 0).value == "bye"
    assert sorted(render(shop.root, "dev").flags.flags) == ["motd", "recommendations"]  # type: ignore[union-attr]


BAD_FILE = {
    "flags": {
        "color": {"state": "ENABLED", "variants": {"red": "#f00", "blue": 3}, "defaultVariant": "green",
                  "targeting": {"if": [{"starts_wth": [{"var": "email"}, "a"]}, "red", "purple"]}},
        "nodefault": {"state": "ENABLED", "variants": {"a": 1, "b": 2},
                      "targeting": {"fractional": [["a", 50], ["c", 50]]}},
        "semv": {"state": "ON", "variants": {"a": 1}, "defaultVariant": "a",
                 "targeting": {"if": [{"sem_ver": [{"var": "v"}, "=>", "1.x"]}, "a", {"$ref": "nope"}]}},
    },
}


def test_every_mistake_is_reported_at_its_line(shop: ShopCopy) -> None:
    shop.write("flags/bad.json", json.dumps(BAD_FILE, indent=2))
    found = messages(shop)
    text = json.dumps(BAD_FILE, indent=2).splitlines()

    def at(needle: str) -> int:
        return next(n for n, content in enumerate(text, 1) if needle in content)

    expected = [
        (at('"blue": 3'), "flags.color.variants.blue: variant `blue` is a number but `red` is a string"),
        (at('"defaultVariant": "green"'), "flags.color.defaultVariant: unknown variant `green`"),
        (at('"starts_wth"'), "unknown JsonLogic operation `starts_wth`; did you mean `starts_with`?"),
        (at('"purple"'), "flags.color.targeting.if[2]: unknown variant `purple`"),
        (at('"nodefault"'), "flags.nodefault.defaultVariant: required field is missing"),
        (at('"c",'), "flags.nodefault.targeting.fractional[1][0]: unknown variant `c`"),
        (at('"ON"'), "flags.semv.state: state must be ENABLED or DISABLED"),
        (at('"=>"'), "unknown sem_ver operator `=>`"),
        (at('"1.x"'), "`1.x` is not a semantic version"),
        (at('"nope"'), "flags.semv.targeting.if[2].$ref: unknown evaluator `nope`"),
    ]
    for number, fragment in expected:
        assert any(m.startswith(f"flags/bad.json:{number}:") and fragment in m for m in found), (number, fragment, found)
    assert len([m for m in found if m.startswith("flags/bad.json")]) == len(expected)


def test_overlay_mistakes_point_into_the_environment_file(shop: ShopCopy) -> None:
    shop.edit("environments/prod.yaml", "kind: Environment\n",
              "kind: Environment\nflags:\n  recommendatons: {state: DISABLED}\n"
              "  recommendations: {defaultVariant: maybe}\n")
    found = messages(shop)
    assert "environments/prod.yaml:5:3: error: flags.recommendatons: unknown flag `recommendatons`: no flags/* file " \
           "defines it; did you mean `recommendations`?" in found
    assert any(m.startswith("environments/prod.yaml:6:21:") and "flags.recommendations.defaultVariant: unknown variant "
               "`maybe`" in m for m in found), found


def test_a_bad_flag_file_rejects_the_whole_environment(shop: ShopCopy) -> None:
    shop.write("flags/broken.yaml", "flags:\n  x:\n    state: ENABLED\n    variants: {a: 1\n")
    with pytest.raises(SpecError) as caught:
        render(shop.root, "prod")
    assert any(p.file == "flags/broken.yaml" and "YAML syntax" in p.message for p in caught.value.problems)
    assert check(shop.root, "dev")  # every environment is invalid, not only one
