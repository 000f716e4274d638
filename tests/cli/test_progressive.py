"""Canary and blue-green end to end: a real control plane, a real Envoy, real instances, real traffic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cli.test_data_plane import endpoint_port, plane  # noqa: F401 - the fixture
from tests.controlplane import ControlPlane, http_get, run_cli, wait_for
from tests.load import Load
from tests.prometheus import running_prometheus
from tests.projects import probe_service, write_project


def canary(name: str = "alpha", version: str = "1.0.0", env: dict[str, str] | None = None,
           **strategy: Any) -> dict[str, Any]:
    canary_spec = {"steps": [20, 50, 100], "interval": "1s", "minRequests": 10, "failureThreshold": 2,
                   "analysis": [{"metric": "successRate", "min": 95}], **strategy}
    return probe_service(name, replicas=2, version=version, env=env or {},
                         strategy={"type": "canary", "canary": canary_spec})


def release(cp: ControlPlane, service: dict[str, Any]) -> None:
    write_project(cp.project, [service])
    cp.cli("apply")


def decisions(cp: ControlPlane, name: str = "alpha") -> list[dict[str, Any]]:
    return list(cp.service(name)["rollout"]["decisions"])


def test_a_healthy_canary_moves_through_its_steps_and_promotes_without_a_failed_request(plane):
    cp = plane([canary()])
    cp.up()
    with Load(endpoint_port(cp, "alpha")) as load:
        release(cp, canary(version="2.0.0"))
        follow = cp.cli("rollout", "status", "alpha")
    assert load.result.failures == [] and load.result.versions["2.0.0"] > 0
    record = cp.service("alpha")["rollout"]
    assert (record["status"], record["phase"], record["weight"]) == ("complete", "promoted", 100)
    analyses = [d for d in record["decisions"] if d["kind"] == "analysis"]
    assert [d["weight"] for d in analyses if d["verdict"] == "pass"][:2] == [20, 50]
    first_pass = next(d for d in analyses if d["verdict"] == "pass")  # a loaded machine may hold once first
    assert first_pass["checks"][0]["check"].startswith("successRate") and first_pass["window"]["canary"]["requests"] >= 10
    assert len(cp.wait_versions("alpha", {"2.0.0"})) == 2
    assert "last decision: analysis passed at" in follow.stdout
    events = json.loads(cp.cli("events", "-o", "json").stdout)
    passed = [e for e in events if e["reason"] == "AnalysisPassed"]
    assert passed and "successRate" in passed[0]["data"]["summary"]


def test_a_failing_canary_is_rolled_back_and_can_be_retried(plane):
    cp = plane([canary()])
    cp.up()
    first = cp.service("alpha")["release"]
    with Load(endpoint_port(cp, "alpha")) as load:
        release(cp, canary(version="2.0.0", env={"FAIL_RATE": "0.5"}))
        follow = cp.cli("rollout", "status", "alpha", check=False)
        wait_for(lambda: {i["version"] for i in cp.instances("alpha")} == {"1.0.0"}, timeout=20,
                 what="canary instances stopped")
    assert follow.returncode == 1 and f"rolled back to {first}" in follow.stdout
    record = cp.service("alpha")["rollout"]
    assert (record["status"], record["reason"], record["phase"]) == ("failed", "AnalysisFailed", "rolled-back")
    assert [d["verdict"] for d in record["decisions"] if d["kind"] == "analysis"][-2:] == ["fail", "fail"]
    failed = [e for e in json.loads(cp.cli("events", "-o", "json").stdout) if e["reason"] == "AnalysisFailed"]
    assert failed and failed[-1]["data"]["window"]["canary"]["errors_5xx"] > 0
    in_sync = next(c for c in cp.status()["conditions"] if c["type"] == "InSync")
    assert first in in_sync["message"] and "rollout retry" in in_sync["message"]
    failures = len(load.result.failures)
    assert 0 < failures < 0.2 * (load.result.ok + failures)  # only the canary's share of a few seconds

    retried = json.loads(cp.cli("rollout", "retry", "alpha", "-o", "json").stdout)
    assert (retried["status"], retried["phase"]) == ("progressing", "starting")
    wait_for(lambda: cp.service("alpha")["rollout"]["phase"] == "step", timeout=20, what="the retry's first step")
    aborted = cp.cli("rollout", "abort", "alpha")
    assert "rolled back" in cp.service("alpha")["rollout"]["message"] and aborted.returncode == 0
    refused = cp.cli("rollout", "promote", "alpha", check=False)
    assert refused.returncode == 1 and "failed, not progressing" in refused.stderr


COMPARE = [{"compare": "errorRate"}, {"compare": "latency", "maxIncrease": "50%"}]


def test_a_compare_regression_rolls_back_at_the_scrape_that_shows_it(plane):
    cp = plane([canary(analysis=COMPARE)])
    cp.up()
    with Load(endpoint_port(cp, "alpha")):
        # A minute per step and five failures allowed: only the sequential test can roll back this soon.
        release(cp, canary(version="2.0.0", env={"FAIL_RATE": "0.3"}, interval="60s", failureThreshold=5,
                           analysis=COMPARE))
        follow = cp.cli("rollout", "status", "alpha", check=False)
    assert follow.returncode == 1 and "regression detected at 20% of traffic" in follow.stdout
    assert "e-value" in follow.stdout
    record = cp.service("alpha")["rollout"]
    assert (record["status"], record["reason"]) == ("failed", "AnalysisFailed")
    assert record["updated_at"] - record["started_at"] < 30
    last = record["decisions"][-1]
    assert (last["verdict"], last["action"]) == ("fail", "rollback")
    errors = next(c for c in last["checks"] if c["check"] == "compare errorRate")
    assert errors["verdict"] == "fail" and errors["inputs"]["e_value"] >= errors["inputs"]["rollback_at"] == 20
    assert errors["inputs"]["canary"]["events"] > 0 and errors["inputs"]["primary"]["requests"] > 0
    failed = [e for e in json.loads(cp.cli("events", "-o", "json").stdout) if e["reason"] == "AnalysisFailed"]
    assert failed and "e-value" in failed[-1]["data"]["summary"]


def test_a_healthy_canary_advances_once_its_compare_entries_rule_out_a_regression(plane):
    cp = plane([canary(analysis=COMPARE)])
    cp.up()
    with Load(endpoint_port(cp, "alpha")) as load:
        release(cp, canary(version="2.0.0", analysis=COMPARE))
        cp.cli("rollout", "status", "alpha")
    assert load.result.failures == []
    record = cp.service("alpha")["rollout"]
    assert (record["status"], record["phase"]) == ("complete", "promoted")
    passed = [d for d in record["decisions"] if d["kind"] == "analysis" and d["verdict"] == "pass"]
    assert [d["weight"] for d in passed] == [20, 50]
    for check in passed[0]["checks"]:
        assert check["verdict"] == "pass" and "regression ruled out" in check["reason"]
        assert check["inputs"]["canary"]["upper"] < check["inputs"]["allowed"]


def test_too_little_traffic_holds_header_matches_reach_the_canary_and_mirroring_spares_users(plane):
    cp = plane([canary()])
    cp.up()
    release(cp, canary(version="2.0.0", minRequests=100000, mirror=100,
                       match=[{"header": {"name": "x-canary", "exact": "always"}}]))
    wait_for(lambda: cp.service("alpha")["rollout"]["phase"] == "mirror", timeout=20, what="the mirror phase")
    port = endpoint_port(cp, "alpha")
    plain = {http_get(f"http://127.0.0.1:{port}/")[1]["x-service-version"] for _ in range(30)}
    matched = {http_get(f"http://127.0.0.1:{port}/", headers={"x-canary": "always"})[1]["x-service-version"]
               for _ in range(10)}
    assert plain == {"1.0.0"} and matched == {"2.0.0"}
    alpha = cp.service("alpha")
    preview = http_get(alpha["preview"] + "/")
    assert preview[1]["x-service-version"] == "2.0.0"

    def canary_saw_mirrored_traffic():
        traffic = {r["release"]: r for r in cp.service("alpha")["traffic"]["releases"]}
        return (traffic[alpha["release"]]["requests"] or 0) >= 30

    wait_for(canary_saw_mirrored_traffic, timeout=10, what="mirrored requests counted for the canary")
    held = wait_for(lambda: [d for d in decisions(cp) if d["kind"] == "analysis"], timeout=10, what="an analysis")
    assert held[0]["verdict"] == "inconclusive" and held[0]["action"] == "hold"
    assert "fewer than minRequests" in held[0]["summary"]
    follow = cp.cli("rollout", "status", "alpha", "--no-wait").stdout
    assert "mirror" in follow and "inconclusive" in follow
    promoted = cp.cli("rollout", "promote", "alpha", "--full")
    assert "promoting" in promoted.stdout
    cp.cli("rollout", "status", "alpha")
    cp.wait_versions("alpha", {"2.0.0"})


def blue_green(version: str = "1.0.0", **strategy: Any) -> dict[str, Any]:
    return probe_service("alpha", replicas=2, version=version,
                         strategy={"type": "blue-green", "blueGreen": {"scaleDownDelay": "60s", **strategy}})


def test_blue_green_previews_switches_in_one_step_and_undoes_at_once(plane):
    cp = plane([blue_green()])
    cp.up()
    port = endpoint_port(cp, "alpha")
    with Load(port) as load:
        release(cp, blue_green("2.0.0", autoPromote=False))
        wait_for(lambda: cp.service("alpha")["rollout"]["phase"] == "awaiting-promotion", timeout=20,
                 what="green ready and waiting")
        alpha = cp.service("alpha")
        assert http_get(alpha["preview"] + "/")[1]["x-service-version"] == "2.0.0"
        assert http_get(f"http://127.0.0.1:{port}/")[1]["x-service-version"] == "1.0.0"
        before = dict(load.result.versions)
        assert before.get("2.0.0", 0) == 0
        cp.cli("rollout", "promote", "alpha")
        switched = load.result.versions["1.0.0"]
        wait_for(lambda: load.result.versions["2.0.0"] > 50, timeout=10, what="traffic on green")
        assert load.result.versions["1.0.0"] - switched <= 8  # only requests in flight at the switch
        blue_after = load.result.versions["1.0.0"]
        wait_for(lambda: load.result.versions["2.0.0"] > 100, timeout=10, what="more traffic on green")
        assert load.result.versions["1.0.0"] == blue_after  # nothing reaches blue after the switch
        assert len(cp.instances("alpha")) == 4  # blue kept for scaleDownDelay
        cp.cli("rollout", "undo", "alpha")
        green_count = load.result.versions["2.0.0"]
        wait_for(lambda: load.result.versions["1.0.0"] > blue_after + 50, timeout=10, what="traffic back on blue")
        assert load.result.versions["2.0.0"] - green_count <= 8
    assert load.result.failures == []
    cp.cli("rollout", "status", "alpha")
    cp.wait_versions("alpha", {"1.0.0"})


def test_gates_fail_a_rollout_or_wait_for_approval(plane):
    gate = {"command": ["sh", "-c", 'curl -sf "$TARGET_URL/healthz" >/dev/null || python3 -c "import urllib.request,os;'
                        'urllib.request.urlopen(os.environ[\'TARGET_URL\'] + \'/healthz\')"']}
    cp = plane([canary()])
    cp.up()
    release(cp, canary(version="2.0.0", preRollout=[{"command": ["sh", "-c", "echo smoke failed; exit 3"]}]))
    follow = cp.cli("rollout", "status", "alpha", check=False)
    assert follow.returncode == 1
    record = cp.service("alpha")["rollout"]
    assert record["reason"] == "GateFailed" and "exited 3" in record["message"]
    assert record["decisions"][-1]["gates"][0]["output"].strip() == "smoke failed"

    release(cp, canary(version="3.0.0", minRequests=0, analysis=[], preRollout=[gate, {"approval": True}]))
    wait_for(lambda: "waiting for `shipyard rollout approve alpha`" in cp.service("alpha")["rollout"]["message"],
             timeout=20, what="the approval gate")
    assert cp.service("alpha")["rollout"]["decisions"][-1]["verdict"] == "waiting"
    cp.cli("rollout", "approve", "alpha")
    cp.cli("rollout", "status", "alpha")
    cp.wait_versions("alpha", {"3.0.0"})


def test_a_prometheus_query_on_envoys_own_metrics_decides_the_canary(plane, tmp_path):
    cp = plane([canary()])
    cp.up()
    admin = cp.status()["data_plane"]["admin"].removeprefix("http://")
    with running_prometheus(tmp_path / "prometheus", [admin], "/stats/prometheus") as prometheus:
        query = 'sum(envoy_cluster_upstream_rq_completed{envoy_cluster_name="{cluster}"})'
        with Load(endpoint_port(cp, "alpha")):
            release(cp, canary(version="2.0.0", steps=[50, 100], minRequests=0, analysis=[
                {"metric": "prometheus", "query": query, "min": 5, "address": prometheus}]))
            cp.cli("rollout", "status", "alpha")
    checks = [c for d in decisions(cp) if d["kind"] == "analysis" for c in d["checks"]]
    passed = [c for c in checks if c["verdict"] == "pass"]
    assert passed and passed[-1]["inputs"]["value"] >= 5 and "alpha_" in passed[-1]["inputs"]["query"]
    cp.wait_versions("alpha", {"2.0.0"})


def test_a_canary_without_traffic_says_so_once_and_fails_at_the_progress_deadline(plane):
    quiet = canary(steps=[50, 100])
    quiet["strategy"]["rolling"] = {"progressDeadline": "8s"}
    cp = plane([quiet])
    cp.up()
    new = canary(version="2.0.0", steps=[50, 100])
    new["strategy"]["rolling"] = {"progressDeadline": "8s"}
    release(cp, new)
    wait_for(lambda: "waiting for traffic" in cp.service("alpha")["rollout"]["message"], timeout=30,
             what="the canary saying it waits for traffic")
    follow = cp.cli("rollout", "status", "alpha", "--timeout", "60", check=False)
    assert follow.returncode == 1
    record = cp.service("alpha")["rollout"]
    assert (record["status"], record["reason"]) == ("failed", "InsufficientTraffic")
    assert "too little traffic to judge the canary at 50% of traffic within the progress deadline (8s)" \
        in record["message"]
    reasons = [e["reason"] for e in json.loads(cp.cli("events", "-o", "json").stdout) if e["object"] == "alpha"]
    assert reasons.count("AnalysisInconclusive") == 1 and "RolledBackInsufficientTraffic" in reasons


def test_a_command_gate_runs_in_the_revision_sandboxed_without_the_control_planes_environment(plane):
    cp = plane([canary()])
    smoke = cp.project / "smoke.sh"
    smoke.write_text(f'#!/bin/sh\nenv | sort\necho "in $(pwd)"\ncat {cp.state_dir.resolve()}/token || echo no-token\n'
                     "exit 3\n")
    smoke.chmod(0o755)
    run_cli("up", str(cp.project), "--env", "dev", "--state-dir", str(cp.state_dir), "--detach",
            "--ingress-port", str(cp.ingress_port), "--timeout", "60", env={"PLANTED_SECRET": "hunter2"})
    assert b"PLANTED_SECRET=hunter2\0" in Path(f"/proc/{cp.control_pid()}/environ").read_bytes()
    release(cp, canary(version="2.0.0", preRollout=[{"command": ["./smoke.sh"]}]))
    assert cp.cli("rollout", "status", "alpha", check=False).returncode == 1
    record = cp.service("alpha")["rollout"]
    assert record["reason"] == "GateFailed" and "exited 3" in record["message"]
    output = record["decisions"][-1]["gates"][0]["output"]
    assert "hunter2" not in output and cp.token() not in output
    names = {line.split("=", 1)[0] for line in output.splitlines() if "=" in line and not line.startswith("in ")}
    assert names <= {"PATH", "HOME", "TARGET_URL", "SHIPYARD_SERVICE", "SHIPYARD_RELEASE", "PWD", "SHLVL", "OLDPWD"}
    assert "TARGET_URL" in names and f"in {cp.project.resolve()}" in output and "no-token" in output
