"""Capacity end to end (issue 10, observed failure 2): real control planes, real Envoy, real instances.

A rollout that does not fit says so at once and moves no traffic; environments on one machine share
a capacity ledger, so together they cannot overcommit it.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.cli.test_data_plane import endpoint_port
from tests.cli.test_progressive import canary, release
from tests.controlplane import ControlPlane, pid_alive, wait_for
from tests.load import Load
from tests.projects import probe_service, write_project


@pytest.fixture
def planes(tmp_path: Path):
    made: list[ControlPlane] = []

    def make(name: str, services, environment: str = "dev") -> ControlPlane:
        project = write_project(tmp_path / name / "project", services, environment=environment)
        created = ControlPlane(project, tmp_path / name / "state", environment)
        made.append(created)
        return created

    yield make
    for created in made:
        created.teardown()


def shortfall(cp: ControlPlane, service: str) -> dict | None:
    return next((c for c in cp.status()["conditions"] if c["type"] == "Schedulable" and c["object"] == service), None)


def events(cp: ControlPlane, reason: str) -> list[dict]:
    return [e for e in json.loads(cp.cli("events", "-o", "json").stdout) if e["reason"] == reason]


def test_a_canary_that_does_not_fit_says_so_at_once_moves_no_traffic_and_goes_on_once_it_fits(planes):
    cp = planes("shop", [canary(steps=[50, 100])])
    cp.up("--capacity", "cpu=300m,memory=4Gi")
    cp.wait_ready("alpha", 2, timeout=60)
    release(cp, canary(version="2.0.0", steps=[50, 100]))
    condition = wait_for(lambda: shortfall(cp, "alpha"), timeout=2.0, what="Schedulable False within 2 s of apply")
    assert (condition["status"], condition["reason"]) == ("False", "InsufficientCPU")
    assert condition["message"] == "alpha needs 2 × 100m CPU for its canary, 100m free"
    cp.cli("apply")  # more passes: the shortfall stays one event
    cp.cli("apply")
    follow = cp.cli("rollout", "status", "alpha", "--no-wait")
    assert "Schedulable False InsufficientCPU: alpha needs 2 × 100m CPU for its canary, 100m free" in follow.stdout
    assert "waiting: 0/1 instances of" in follow.stdout and "traffic stays at 0%" in follow.stdout
    alpha = cp.service("alpha")
    assert {i["version"] for i in alpha["instances"]} == {"1.0.0"}  # nothing started that could take traffic
    assert (alpha["rollout"]["phase"], alpha["rollout"]["weight"]) == ("starting", 0)
    assert "alpha needs 2 × 100m CPU for its canary" in alpha["rollout"]["message"]
    assert [e["object"] for e in events(cp, "InsufficientCPU")] == ["alpha"]

    # The data plane outlives its control plane: a new one with room enough picks the canary up and finishes it.
    os.kill(cp.control_pid(), signal.SIGTERM)
    wait_for(lambda: not pid_alive(cp.control_pid()), what="the control plane gone")
    cp.up("--capacity", "cpu=2,memory=4Gi")
    with Load(endpoint_port(cp, "alpha")) as load:
        follow = cp.cli("rollout", "status", "alpha", "--timeout", "60")
    assert follow.returncode == 0 and "complete" in follow.stdout and load.result.failures == []
    cp.wait_versions("alpha", {"2.0.0"})


def test_two_environments_share_the_machine_through_the_ledger(planes, private_capacity_ledger):
    dev = planes("dev", [probe_service("alpha", replicas=2)])
    prod = planes("prod", [probe_service("alpha", replicas=4)], environment="prod")
    dev.up("--capacity", "cpu=500m,memory=4Gi")
    dev.wait_ready("alpha", 2, timeout=60)
    prod.up("--capacity", "cpu=500m,memory=4Gi", "--timeout", "3", check=False)  # never all ready: do not wait
    prod.wait_ready("alpha", 3, timeout=60)
    condition = wait_for(lambda: shortfall(prod, "alpha"), timeout=30, what="prod's shortfall")
    assert condition["message"] == "alpha needs 1 × 100m CPU, 0 free"
    follow = prod.cli("rollout", "status", "alpha", "--no-wait").stdout
    assert "waiting: no room for new instances: alpha needs 1 × 100m CPU, 0 free" in follow
    assert "Schedulable False InsufficientCPU: alpha needs 1 × 100m CPU, 0 free" in follow
    capacity = prod.status()["capacity"]
    assert capacity["held"]["cpu"] == pytest.approx(0.3) and capacity["free"]["cpu"] == pytest.approx(0.0)
    assert [(o["environment"], o["cpu"]) for o in capacity["others"]] == [("dev", pytest.approx(0.2))]
    assert "other environments: dev" in prod.cli("status").stdout
    entries = json.loads(private_capacity_ledger.read_text())["entries"]
    assert sorted(e["environment"] for e in entries.values()) == ["dev", "prod"]

    dev.cli("down")  # dev gives its share back: prod's fourth instance fits now
    prod.wait_ready("alpha", 4, timeout=60)
    assert shortfall(prod, "alpha") is None and prod.status()["capacity"]["others"] == []
