"""OFREP as real clients see it: the OpenFeature Python SDK with its OFREP provider, and raw HTTP for the rest."""

from __future__ import annotations

import random
from typing import Any, Iterator

import httpx
import pytest
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode

from shipyard.flags.files import load_flags

from .ofrep_server import OfrepServer
from .oracle_flags import FLAG_FILE, TYPES, random_context
from .test_evaluate_oracle import flagd_answer, flagd_client, write_project  # noqa: F401 - fixture

__all__ = ["flagd_client"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OfrepServer]:
    root = tmp_path_factory.mktemp("ofrep")
    write_project(root)
    flag_set, problems = load_flags(root, None)
    assert not problems
    with OfrepServer(flag_set) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: OfrepServer) -> Any:
    api.set_provider(OFREPProvider(server.url), "ofrep")
    return api.get_client("ofrep")


def ctx(targeting_key: str | None = "u1", **attributes: Any) -> EvaluationContext:
    return EvaluationContext(targeting_key=targeting_key, attributes=attributes)


def test_the_sdk_gets_every_type_reason_and_variant(client: Any) -> None:
    boolean = client.get_boolean_details("banner", False, ctx(email="ann@example.com"))
    assert (boolean.value, boolean.variant, boolean.reason) == (True, "on", "TARGETING_MATCH")
    split = client.get_boolean_details("banner", True, ctx("someone", email="x@example.org"))
    assert split.reason == "SPLIT" and split.variant in ("on", "off") and split.value is (split.variant == "on")
    string = client.get_string_details("motd", "none", ctx())
    assert (string.value, string.variant, string.reason) == ("Hello", "hello", "STATIC")
    integer = client.get_integer_details("api-version", -1, ctx(appVersion="2.3.0"))
    assert (integer.value, integer.variant, integer.reason) == (2, "v2", "TARGETING_MATCH")
    default = client.get_integer_details("api-version", -1, ctx(appVersion="0.1.0"))
    assert (default.value, default.variant, default.reason) == (1, "v1", "DEFAULT")
    number = client.get_float_details("ratio", -1.0, ctx(age=40))
    assert (number.value, number.variant) == (0.75, "high")
    obj = client.get_object_details("layout", {}, ctx(locale="de-AT"))
    assert (obj.value, obj.variant) == ({"columns": 1, "dense": True}, "compact")
    disabled = client.get_boolean_details("old-checkout", False, ctx())
    assert (disabled.value, disabled.variant, disabled.reason) == (False, None, "DISABLED")
    no_variant = client.get_string_details("beta-split", "mine", ctx(plan="free"))
    assert (no_variant.value, no_variant.variant, no_variant.reason) == ("mine", None, "DEFAULT")
    assert boolean.flag_metadata == {"team": "shop"}
    assert default.flag_metadata == {"team": "shop", "owner": "api"}


def test_errors_reach_the_sdk_as_openfeature_error_codes(client: Any) -> None:
    missing = client.get_boolean_details("no-such-flag", True, ctx())
    assert (missing.value, missing.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
    no_key = client.get_boolean_details("banner", False, ctx(None, email="x@example.org"))
    assert no_key.error_code == ErrorCode.TARGETING_KEY_MISSING
    wrong_type = client.get_boolean_details("motd", False, ctx())
    assert (wrong_type.value, wrong_type.error_code) == (False, ErrorCode.TYPE_MISMATCH)


def test_raw_protocol_errors(server: OfrepServer) -> None:
    url = f"{server.url}/ofrep/v1/evaluate/flags"
    not_found = httpx.post(f"{url}/nope", json={"context": {}})
    assert not_found.status_code == 404 and not_found.json()["errorCode"] == "FLAG_NOT_FOUND"
    bad_json = httpx.post(f"{url}/motd", content=b"{not json")
    assert bad_json.status_code == 400 and bad_json.json() == {
        "key": "motd", "errorCode": "PARSE_ERROR", "errorDetails": bad_json.json()["errorDetails"]}
    bad_context = httpx.post(f"{url}/motd", json={"context": [1, 2]})
    assert bad_context.status_code == 400 and bad_context.json()["errorCode"] == "INVALID_CONTEXT"
    bad_key = httpx.post(url, json={"context": {"targetingKey": 7}})
    assert bad_key.status_code == 400 and bad_key.json()["errorCode"] == "INVALID_CONTEXT"
    assert httpx.get(f"{url}/motd").status_code == 405  # read-only: evaluation only, by POST


def test_bulk_evaluation_with_etag(server: OfrepServer) -> None:
    url = f"{server.url}/ofrep/v1/evaluate/flags"
    first = httpx.post(url, json={"context": {"targetingKey": "u1", "email": "a@example.com"}})
    assert first.status_code == 200
    flags = {f["key"]: f for f in first.json()["flags"]}
    assert sorted(flags) == sorted(FLAG_FILE["flags"])
    assert flags["banner"]["value"] is True and flags["old-checkout"]["reason"] == "DISABLED"
    tag = first.headers["etag"]
    again = httpx.post(url, json={"context": {"targetingKey": "u1", "email": "a@example.com"}},
                       headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.headers["etag"] == tag and again.content == b""
    other = httpx.post(url, json={"context": {"targetingKey": "u2"}}, headers={"If-None-Match": tag})
    assert other.status_code == 200 and other.headers["etag"] != tag
    no_key = {f["key"]: f for f in httpx.post(url, json={}).json()["flags"]}
    assert no_key["banner"]["errorCode"] == "TARGETING_KEY_MISSING"  # per flag, the others still answer
    assert no_key["motd"]["value"] == "Hello"


def test_the_sdk_over_ofrep_agrees_with_flagd_for_10000_contexts(client: Any, flagd_client: Any) -> None:  # noqa: F811
    rng = random.Random(2026)
    keys = sorted(FLAG_FILE["flags"])
    for index in range(10_000):
        context = random_context(rng)
        key = keys[index % len(keys)]
        kind, default = TYPES[key]
        evaluation = ctx(context.pop("targetingKey"), **context)
        ours = getattr(client, f"get_{kind}_details")(key, default, evaluation)
        theirs = flagd_answer(flagd_client, key, {"targetingKey": evaluation.targeting_key, **context})
        reason = "TARGETING_MATCH" if ours.reason == "SPLIT" else ours.reason
        assert ours.error_code is None, (key, context, ours)
        assert (ours.value, ours.variant, reason) == theirs, (key, context)

