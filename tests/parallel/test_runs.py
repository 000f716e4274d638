"""A parallel run end to end: a real control plane, a real Envoy, real instances of the probe app.

The candidate changes one JSON field (`price`) and every answer carries a different `timestamp`: the parallel
run names `$.price`, cancels `$.timestamp` as noise, fails the canary with `maxDifferences: 0`, and no user
ever receives the candidate's answer (each answer's X-Service-Version is the live one's)."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import httpx

from tests.cli.test_data_plane import endpoint_port, plane  # noqa: F401 - the fixture
from tests.cli.test_progressive import release
from tests.controlplane import wait_for
from tests.projects import probe_service


def service(version: str, price: int) -> dict[str, Any]:
    canary = {"steps": [50, 100], "interval": "1s", "minRequests": 5, "failureThreshold": 1,
              "parallelRun": {"percent": 100, "methods": ["GET"], "ignore": {"headers": ["x-unused"]},
                              "maxDifferences": 0}}
    return probe_service("alpha", replicas=2, version=version, env={"PRICE": str(price)},
                         strategy={"type": "canary", "canary": canary})


def test_a_changed_field_is_named_noise_is_cancelled_the_canary_fails_and_users_only_get_live_answers(plane):
    cp = plane([service("1.0.0", 10)])
    cp.up()
    port = endpoint_port(cp, "alpha")
    refused = cp.cli("rollout", "diff", "alpha", check=False)  # no parallel run yet
    assert refused.returncode == 1 and refused.stderr.startswith("Error: ") and "parallelRun" in refused.stderr
    release(cp, service("2.0.0", 12))
    versions: Counter[str] = Counter()
    prices: Counter[int] = Counter()
    deadline = time.monotonic() + 60

    def progressing() -> bool:
        alpha = cp.service("alpha")
        return alpha["rollout"]["target"] != alpha["release"] or alpha["rollout"]["status"] == "progressing"

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        while progressing() and time.monotonic() < deadline:
            for _ in range(20):
                answer = client.get("/price")
                versions[answer.headers["x-service-version"]] += 1
                prices[answer.json()["price"]] += 1
            assert client.post("/price").status_code == 501  # the live answer; never copied (not listed)
    assert versions and set(versions) == {"1.0.0"} and set(prices) == {10}, (versions, prices)

    record = cp.service("alpha")["rollout"]
    assert (record["status"], record["reason"]) == ("failed", "AnalysisFailed"), record["message"]
    failed = [d for d in record["decisions"] if d["kind"] == "analysis"][-1]
    check = next(c for c in failed["checks"] if c["check"].startswith("parallelRun"))
    assert check["verdict"] == "fail" and check["inputs"]["unexplained"] > 0 and check["inputs"]["max_differences"] == 0
    assert "$.price" in check["reason"] and "$.timestamp" in check["reason"]

    report = json.loads(cp.cli("rollout", "diff", "alpha", "-o", "json").stdout)
    assert report["active"] is False and report["compared"] >= 1
    assert [(d["route"], d["field"]) for d in report["differences"]] == [("GET /price", "$.price")]
    assert report["differences"][0]["examples"][0] == {"primary": 10, "candidate": 12}
    assert "$.timestamp" in report["noise"]["GET /price"]
    assert {"route": "GET /price", "field": "$.timestamp"}.items() <= next(
        c for c in report["cancelled"] if c["field"] == "$.timestamp").items()
    assert not [route for route in report["noise"] if not route.startswith("GET ")]  # POST never duplicated
    table = cp.cli("rollout", "diff", "alpha").stdout
    assert "GET /price  $.price" in table and "noise cancelled on GET /price: $.timestamp" in table
    follow = cp.cli("rollout", "status", "alpha", "--no-wait", check=False).stdout
    assert "parallel run" in follow and "$.price" in follow
    events = json.loads(cp.cli("events", "-o", "json").stdout)
    assert {"ParallelRunStarted", "ParallelRunStopped", "AnalysisFailed"} <= {e["reason"] for e in events}



class FakeStore:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def put(self, key: str, value: Any) -> None:
        self.data[key] = json.loads(json.dumps(value))


def test_a_comparator_is_supervised_follows_its_canary_and_keeps_its_report(tmp_path) -> None:
    """The supervisor with a stand-in for the reconciler (pure bookkeeping) and a real comparator process."""
    import asyncio
    from dataclasses import replace
    from types import SimpleNamespace

    from shipyard.delivery import phases
    from shipyard.engine.model import Instance, Rollout, State
    from shipyard.parallel.runs import ParallelRuns
    from shipyard.spec.models import ParallelRun

    progressive = SimpleNamespace(parallel_settings=ParallelRun())
    events: list[str] = []
    rollout = Rollout("svc", "svc-new", 1.0, "canary", previous="svc-old", phase=phases.MIRROR)
    reconciler = SimpleNamespace(
        state_dir=tmp_path, rollouts={"svc": rollout}, store=FakeStore(),
        desired=SimpleNamespace(services={"svc": SimpleNamespace(release=SimpleNamespace(id="svc-new"),
                                                                 progressive=progressive)}),
        instances={i.id: i for i in (Instance("a", "svc", "svc-old", 8001, State.READY, 0.0),
                                     Instance("b", "svc", "svc-new", 8002, State.READY, 0.0))},
        event=lambda kind, obj, reason, message, data=None: events.append(reason))

    def answers(port: int, method: str = "GET") -> int | None:
        try:
            return httpx.request(method, f"http://127.0.0.1:{port}/x", timeout=2).status_code
        except httpx.HTTPError:
            return None

    async def scenario() -> None:
        runs = ParallelRuns(reconciler)  # type: ignore[arg-type]
        await runs.tick()
        (port, _), = runs.comparators().values()
        assert (tmp_path / "parallel" / "svc.targets.json").read_text() == json.dumps(
            ["http://127.0.0.1:8001", "http://127.0.0.1:8001", "http://127.0.0.1:8002"])
        await asyncio.to_thread(wait_for, lambda: answers(port) == 202, 20, 0.1, "the comparator listening")
        assert answers(port, "POST") == 204  # not a listed method: never sent on
        report = tmp_path / "parallel" / "svc.report.json"
        await asyncio.to_thread(wait_for, lambda: json.loads(report.read_text())["failed"] == 1, 10, 0.05,
                                "the copy compared (it fails: nothing listens on 8001/8002)")
        first = runs.runs["svc"].process
        first.kill()  # the comparator dies
        await asyncio.to_thread(first.wait)
        assert runs.comparators() == {}  # never copied to a dead comparator
        await runs.tick()
        assert events == ["ParallelRunStarted", "ComparatorRestarted"] and "svc" in runs.comparators()
        assert runs.runs["svc"].process.pid != first.pid
        reconciler.rollouts["svc"] = replace(rollout, status="failed", phase=phases.ROLLED_BACK)
        await runs.tick()
        assert runs.runs == {} and events[-1] == "ParallelRunStopped"
        stored = runs.summary("svc")
        assert stored is not None and stored["active"] is False and stored["release"] == "svc-new"
        assert stored["failed"] == 1  # learnt before the kill, kept by the restarted comparator

        # A new control plane (a new supervisor) for the same attempt goes on from the stored report.
        reconciler.rollouts["svc"] = rollout
        again = ParallelRuns(reconciler)  # type: ignore[arg-type]
        await again.tick()
        assert again.summary("svc")["failed"] == stored["failed"]
        await again.close()
        # A new attempt starts empty.
        reconciler.rollouts["svc"] = replace(rollout, started_at=2.0)
        fresh = ParallelRuns(reconciler)  # type: ignore[arg-type]
        await fresh.tick()
        assert fresh.summary("svc")["compared"] == 0 and fresh.summary("svc")["failed"] == 0
        await fresh.close()

    asyncio.run(scenario())
