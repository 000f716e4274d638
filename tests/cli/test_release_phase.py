"""The release phase end to end: a real control plane, Envoy, sandboxed jobs and traffic.

A migration that fails keeps its release from being deployed while the old one serves every request;
a good one runs exactly once per release, before any instance of that release starts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.controlplane import ControlPlane, run_cli, wait_for
from tests.load import Load
from tests.projects import probe_service, write_project

MIGRATE = """\
import os, sys, time
log = os.path.join(os.environ["SHIPYARD_DATA_DIR"], "migrations.log")
with open(log, "a") as handle:
    handle.write(f"{os.environ['SHIPYARD_RELEASE']} {time.time()}\\n")
print("migrating schema to", os.environ["SHIPYARD_VERSION"], flush=True)
time.sleep(float(os.environ.get("MIGRATE_SLEEP", "0")))
code = int(os.environ.get("MIGRATE_EXIT", "0"))
if code:
    print("ERROR: column orders.total already exists", file=sys.stderr, flush=True)
sys.exit(code)
"""


def _service(version: str, **env: str) -> dict:
    return probe_service("orders", version=version, replicas=2, env=env,
                         release={"command": ["python3", "migrate.py"], "timeout": "3s"})


def _write(plane: ControlPlane, version: str, **env: str) -> None:
    write_project(plane.project, [_service(version, **env)])
    (plane.project / "apps" / "probe" / "migrate.py").write_text(MIGRATE)


def _migrations(plane: ControlPlane) -> list[tuple[str, float]]:
    path = plane.state_dir / "data" / "orders" / "migrations.log"
    lines = path.read_text().split("\n") if path.exists() else []
    return [(line.split()[0], float(line.split()[1])) for line in lines if line]


def _rollout(plane: ControlPlane) -> dict:
    return json.loads(plane.cli("rollout", "status", "orders", "-o", "json", check=False).stdout)


@pytest.fixture
def plane(tmp_path: Path):
    created = ControlPlane(write_project(tmp_path / "project", [_service("1.0.0")]), tmp_path / "state")
    _write(created, "1.0.0")
    yield created
    created.teardown()


def test_a_failed_migration_is_not_deployed_and_a_good_one_runs_once_before_traffic(plane: ControlPlane) -> None:
    plane.up()
    first = plane.wait_ready("orders", 2)
    release_1 = first[0]["release"]
    assert [r for r, _ in _migrations(plane)] == [release_1]
    ran_at = _migrations(plane)[0][1]
    assert all(i["started_at"] > ran_at for i in first), "the migration ran before any instance started"

    port = int(plane.service("orders")["endpoint"].rsplit(":", 1)[1])
    with Load(port) as load:
        _write(plane, "2.0.0", MIGRATE_EXIT="3")
        plane.cli("apply", str(plane.project))
        failed = wait_for(lambda: (lambda r: r if r["state"] == "failed" else None)(_rollout(plane)), 30, 0.2,
                          "the rollout of 2.0.0 to fail")
        message = failed["rollout"]["message"]
        assert "exited with code 3" in message and "ERROR: column orders.total already exists" in message
        assert "migrating schema to 2.0.0" in message and f"release {release_1} keeps serving" in message
        status = json.loads(plane.cli("status", "-o", "json").stdout)
        phase = status["services"][0]["release_phase"]
        assert phase["exit_code"] == 3 and phase["output"][-1] == "ERROR: column orders.total already exists"
        assert any(c["type"] == "RolloutFailed" and "exited with code 3" in c["message"] for c in status["conditions"])
        assert {i["release"] for i in plane.instances("orders")} == {release_1}, "nothing of 2.0.0 started"

        _write(plane, "3.0.0")
        plane.cli("apply", str(plane.project))
        wait_for(lambda: _rollout(plane)["state"] == "complete", 40, 0.2, "the rollout of 3.0.0")
    assert load.result.ok > 50 and not load.result.failures, load.result.failures[:5]

    runs = _migrations(plane)
    release_3 = plane.service("orders")["release"]
    assert [r for r, _ in runs][0] == release_1 and [r for r, _ in runs][2:] == [release_3], runs
    assert len(runs) == 3, "each release's phase ran exactly once"
    instances = plane.wait_ready("orders", 2)
    assert all(i["release"] == release_3 and i["started_at"] > runs[2][1] for i in instances)
    assert not list((plane.state_dir / "jobs").iterdir()), "a finished job leaves no run dir behind"


def test_a_migration_that_times_out_is_killed_and_not_deployed(plane: ControlPlane) -> None:
    plane.up()
    release_1 = plane.wait_ready("orders", 2)[0]["release"]
    _write(plane, "2.0.0", MIGRATE_SLEEP="60")
    plane.cli("apply", str(plane.project))
    failed = wait_for(lambda: (lambda r: r if r["state"] == "failed" else None)(_rollout(plane)), 30, 0.2,
                      "the rollout of 2.0.0 to fail")
    assert "timed out after 3s" in failed["rollout"]["message"]
    assert {i["release"] for i in plane.instances("orders", "ready")} == {release_1}
    result = run_cli("rollout", "status", "orders", "--state-dir", str(plane.state_dir), check=False)
    assert result.returncode == 1 and "timed out after 3s" in result.stdout
