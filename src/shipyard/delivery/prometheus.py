"""The Prometheus metric provider: one PromQL instant query to one number."""

from __future__ import annotations

import math
from typing import Any

import httpx

from shipyard.errors import NoData, ProviderError


async def query(base_url: str, promql: str, timeout: float = 5.0, *,
                transport: httpx.AsyncBaseTransport | None = None) -> float:
    """Run `promql` as an instant query against `base_url` (e.g. http://127.0.0.1:9090).

    Returns the single sample's value. Raises NoData when the query matched no series or gave
    NaN (no traffic yet), ProviderError when Prometheus is unreachable, times out, rejects the
    query, or answers with several series or a type that is not one number. `transport` is for
    tests (httpx.MockTransport).
    """
    url = base_url.rstrip("/") + "/api/v1/query"
    try:
        async with httpx.AsyncClient(timeout=timeout, transport=transport) as client:
            response = await client.get(url, params={"query": promql})
    except httpx.TimeoutException as exc:
        raise ProviderError(f"prometheus at {base_url} did not answer query {promql!r} within "
                            f"{timeout:g}s; check that it is up or raise the timeout") from exc
    except httpx.HTTPError as exc:
        raise ProviderError(f"cannot reach prometheus at {base_url} for query {promql!r}: "
                            f"{exc}; check its address") from exc
    return _value(_payload(response, promql), promql)


def _payload(response: httpx.Response, promql: str) -> dict[str, Any]:
    """The `data` member of a successful API answer; ProviderError for anything else."""
    try:
        body = response.json()
    except ValueError as exc:
        raise ProviderError(f"prometheus answered query {promql!r} with HTTP "
                            f"{response.status_code} and a body that is not JSON: "
                            f"{response.text[:200]!r}") from exc
    if not isinstance(body, dict) or body.get("status") != "success":
        detail = body if not isinstance(body, dict) else \
            f"{body.get('errorType', 'error')}: {body.get('error', body)}"
        raise ProviderError(f"prometheus rejected query {promql!r} (HTTP {response.status_code}): "
                            f"{detail}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise ProviderError(f"prometheus answered query {promql!r} without data: {body}")
    return data


def _value(data: dict[str, Any], promql: str) -> float:
    """The one number in an instant query's data; NoData when there is none (or it is NaN)."""
    result_type, result = data.get("resultType"), data.get("result")
    if result_type == "scalar":
        sample = result
    elif result_type == "vector" and isinstance(result, list):
        if not result:
            raise NoData(f"prometheus query {promql!r} matched no series yet")
        if len(result) > 1:
            raise ProviderError(f"prometheus query {promql!r} returned {len(result)} series, "
                                "expected one; aggregate it, e.g. sum(...)")
        sample = result[0].get("value") if isinstance(result[0], dict) else None
    else:
        raise ProviderError(f"prometheus query {promql!r} returned a {result_type}, expected an "
                            "instant vector or scalar; drop range selectors like [5m] outside "
                            "functions")
    try:
        value = float(sample[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError) as exc:
        raise ProviderError(f"prometheus query {promql!r} returned a malformed sample: "
                            f"{sample!r}") from exc
    if math.isnan(value):
        raise NoData(f"prometheus query {promql!r} returned NaN (no traffic in its window yet?)")
    return value
