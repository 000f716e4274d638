"""The local engine end to end: a real control plane, real isolated processes, driven through the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.controlplane import ControlPlane, http_get, pid_alive, wait_for
from tests.projects import probe_service, write_project


@pytest.fixture
def plane(tmp_path: Path):
    planes: list[ControlPlane] = []

    def make(services, overlays=None) -> ControlPlane:
        project = write_project(tmp_path / "project", services, overlays)
        created = ControlPlane(project, tmp_path / "state")
        planes.append(created)
        return created

    yield make
    for created in planes:
        created.teardown()


def test_up_status_and_down(plane):
    cp = plane([probe_service("alpha", replicas=2), probe_service("beta", needs=["alpha"])])
    cp.up()
    status = cp.status()
    assert status["environment"] == "dev" and status["revision"].startswith("local-")
    assert status["api"] == cp.api()
    alpha = next(s for s in status["services"] if s["name"] == "alpha")
    assert alpha["desired_replicas"] == 2 and alpha["ready_replicas"] == 2
    instance = alpha["instances"][0]
    for key in ("id", "version", "release", "pid", "port", "state", "restarts", "exit_code", "oom_killed",
                "isolation", "limits"):
        assert key in instance
    # the pid is the service's own process: its command line is the service's command
    cmdline = Path(f"/proc/{instance['pid']}/cmdline").read_bytes().split(b"\0")
    assert b"app.py" in cmdline and b"bwrap" not in cmdline[0]
    code, _, body = http_get(f"http://127.0.0.1:{instance['port']}/")
    env = json.loads(body)["env"]
    assert code == 200 and env["SHIPYARD_SERVICE"] == "alpha" and env["SHIPYARD_INSTANCE"] == instance["id"]
    beta_env = json.loads(http_get(f"http://127.0.0.1:{cp.instances('beta')[0]['port']}/")[2])["env"]
    assert beta_env["ALPHA_URL"].startswith("http://127.0.0.1:")
    pids = [i["pid"] for s in status["services"] for i in s["instances"]]
    cp.cli("down")
    assert not any(pid_alive(p) for p in pids)
    assert not pid_alive(cp.control_pid())
    time.sleep(1.0)  # a late reconcile pass must not have started Envoy again
    assert not pid_alive(status["data_plane"]["pid"]) and processes_mentioning(cp.state_dir) == []


def processes_mentioning(path: Path) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in text:
            found.append(text)
    return found


def test_second_control_plane_on_the_same_state_dir_is_refused(plane):
    cp = plane([probe_service("alpha")])
    cp.up()
    second = cp.up(check=False)
    assert second.returncode == 1
    assert "already owns" in second.stderr and "Traceback" not in second.stderr


def test_sigkilled_instance_is_replaced_quickly(plane):
    cp = plane([probe_service("alpha")])
    cp.up()
    victim = cp.wait_ready("alpha", 1)[0]
    killed_at = time.time()
    os.kill(victim["pid"], signal.SIGKILL)
    replacement = wait_for(lambda: next((i for i in cp.instances("alpha", "ready") if i["pid"] != victim["pid"]), None),
                           timeout=10, interval=0.02, what="a ready replacement")
    assert replacement["restarts"] == 1 and replacement["exit_code"] == 137
    # When the control plane saw it ready again (its own event), not when this test's CLI polls noticed.
    events = json.loads(cp.cli("events", "-o", "json").stdout)
    ready_at = max(e["time"] for e in events if e["object"] == victim["id"] and e["reason"] == "Ready")
    assert ready_at - killed_at < 3.0, f"replacement took {ready_at - killed_at:.2f}s"


def _listen_on(sock: socket.socket, port: int) -> bool:
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        return False
    sock.listen()
    return True


def test_a_port_taken_while_an_instance_was_down_moves_it_to_another(plane):
    """Another process took the port of a dead instance (a race of free ports on a busy machine): the replacement
    must not crash-loop on `Address already in use` for ever, it moves to a free port."""
    cp = plane([probe_service("alpha")])
    cp.up()
    victim = cp.wait_ready("alpha", 1)[0]
    os.kill(victim["pid"], signal.SIGKILL)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        wait_for(lambda: _listen_on(squatter, victim["port"]), timeout=5, interval=0.002, what="the dead instance's port")
        replacement = wait_for(lambda: next((i for i in cp.instances("alpha", "ready") if i["pid"] != victim["pid"]),
                                            None), timeout=20, what="a ready replacement on another port")
        assert replacement["id"] == victim["id"] and replacement["port"] != victim["port"]
        assert replacement["restarts"] <= 2
        assert http_get(cp.service("alpha")["endpoint"] + "/")[0] == 200  # through Envoy, to the new port
    events = json.loads(cp.cli("events", "-o", "json").stdout)
    assert any(e["reason"] == "PortTaken" and str(victim["port"]) in e["message"] for e in events)


def test_crash_loop_backs_off_without_disturbing_neighbours(plane):
    cp = plane([probe_service("steady"), probe_service("crashy", env={"CRASH_ON_START": "3"})])
    cp.up("--timeout", "5", check=False)
    steady = cp.wait_ready("steady", 1)[0]
    crashy = wait_for(lambda: (lambda i: i if i and i[0]["restarts"] >= 3 else None)(cp.instances("crashy")),
                      timeout=20, what="three restarts")[0]
    assert crashy["exit_code"] == 3 and crashy["state"] in ("exited", "starting")
    delays = [e["message"] for e in json.loads(cp.cli("events", "-o", "json", "--limit", "200").stdout)
              if e["object"] == crashy["id"] and e["reason"] == "Exited"]
    assert "restart in 0s" in delays[0] and "restart in 1s" in delays[1] and "restart in 2s" in delays[2]
    assert cp.instances("steady")[0]["pid"] == steady["pid"] and cp.instances("steady")[0]["restarts"] == 0
    conditions = {c["reason"] for c in cp.status()["conditions"]}
    assert "InstancesCrashing" in conditions


def test_control_plane_killed_then_readopts_without_restarting(plane):
    cp = plane([probe_service("alpha", replicas=2), probe_service("beta")])
    cp.up()
    before = {i["id"]: i["pid"] for s in cp.status()["services"] for i in s["instances"]}
    os.kill(cp.control_pid(), signal.SIGKILL)
    wait_for(lambda: not pid_alive(cp.control_pid()), what="the control plane to die")
    for pid in before.values():
        assert pid_alive(pid)
    cp.up()
    after = {i["id"]: i["pid"] for s in cp.status()["services"] for i in s["instances"]}
    assert after == before


def test_instance_that_died_while_control_plane_was_down_is_noticed(plane):
    cp = plane([probe_service("alpha")])
    cp.up()
    victim = cp.wait_ready("alpha", 1)[0]
    os.kill(cp.control_pid(), signal.SIGKILL)
    os.kill(victim["pid"], signal.SIGKILL)
    wait_for(lambda: not pid_alive(victim["pid"]), what="the instance to die")
    cp.up()
    replacement = cp.wait_ready("alpha", 1)[0]
    assert replacement["pid"] != victim["pid"] and replacement["restarts"] == 1


def test_invalid_apply_changes_nothing(plane, tmp_path):
    cp = plane([probe_service("alpha")])
    cp.up()
    before = cp.status()
    (cp.project / "services" / "alpha.yaml").write_text("apiVersion: shipyard/v1\nkind: Service\nname: alpha\nreplcas: 2\n")
    result = cp.cli("apply", check=False)
    assert result.returncode == 1 and "services/alpha.yaml:4:1: error: replcas" in result.stderr
    assert "Traceback" not in result.stderr
    after = cp.status()
    assert after["revision"] == before["revision"]
    assert [i["pid"] for i in after["services"][0]["instances"]] == [i["pid"] for i in before["services"][0]["instances"]]


def test_apply_scales_and_rolls_a_new_release(plane):
    cp = plane([probe_service("alpha")])
    cp.up()
    first = cp.wait_ready("alpha", 1)[0]
    write_project(cp.project, [probe_service("alpha", replicas=3)])
    cp.cli("apply")
    ready = cp.wait_ready("alpha", 3)
    assert first["pid"] in [i["pid"] for i in ready]  # scaling does not replace
    write_project(cp.project, [probe_service("alpha", replicas=3, version="2.0.0")])
    cp.cli("apply")
    wait_for(lambda: [i["version"] for i in cp.instances("alpha")] == ["2.0.0"] * 3, timeout=30,
             what="every instance on 2.0.0")
    assert not pid_alive(first["pid"])


def test_capacity_starts_what_fits_and_reports_the_rest(plane):
    cp = plane([probe_service("alpha", replicas=3, resources={"cpu": "100m", "memory": "64Mi"})])
    cp.up("--capacity", "cpu=4,memory=150Mi", "--timeout", "5", check=False)
    wait_for(lambda: len(cp.instances("alpha", "ready")) == 2, what="two ready instances")
    time.sleep(0.5)
    assert len(cp.instances("alpha")) == 2
    condition = next(c for c in cp.status()["conditions"] if c["reason"] == "InsufficientMemory")
    assert condition["message"] == "alpha needs 1 × 64Mi, 22Mi free"


def test_logs_shows_the_instance_output(plane):
    cp = plane([probe_service("alpha")])
    cp.up()
    instance = cp.wait_ready("alpha", 1)[0]
    output = cp.cli("logs", "alpha").stdout
    assert f"listening on {instance['port']}" in output


def test_rollout_status_follows_the_applied_release_and_history_lists_it(plane):
    cp = plane([probe_service("alpha", replicas=2)])
    cp.up()
    write_project(cp.project, [probe_service("alpha", replicas=2, version="2.0.0")])
    cp.cli("apply")
    followed = cp.cli("rollout", "status", "alpha")  # right after apply: must not report the old rollout
    assert followed.returncode == 0 and "complete" in followed.stdout and "version 2.0.0" in followed.stdout
    assert [i["version"] for i in cp.instances("alpha", "ready")] == ["2.0.0", "2.0.0"]
    history = json.loads(cp.cli("rollout", "history", "alpha", "-o", "json").stdout)
    assert [r["status"] for r in history] == ["complete", "complete"]
    assert history[0]["previous"] == history[1]["target"]


def test_rollout_status_exits_1_when_the_progress_deadline_passes(plane):
    cp = plane([probe_service("alpha")])
    cp.up()
    broken = probe_service("alpha", version="2.0.0", env={"STARTUP_DELAY": "30"},
                           strategy={"rolling": {"progressDeadline": "2s"}})
    write_project(cp.project, [broken])
    cp.cli("apply")
    result = cp.cli("rollout", "status", "alpha", "--timeout", "30", check=False)
    assert result.returncode == 1
    assert "failed" in result.stdout and "not available after 2s" in result.stdout
    assert [i["version"] for i in cp.instances("alpha", "ready")] == ["1.0.0"]  # the old release still serves


def test_isolation_and_oom_kill_through_the_engine(plane):
    cp = plane([probe_service("alpha", resources={"cpu": "100m", "memory": "64Mi"}), probe_service("beta")])
    cp.up()
    alpha, beta = cp.wait_ready("alpha", 1)[0], cp.wait_ready("beta", 1)[0]
    assert alpha["isolation"]["sandbox"] == "bubblewrap" and alpha["limits"]["memory_bytes"] == 64 * 2**20
    base = f"http://127.0.0.1:{alpha['port']}"
    data_dir = json.loads(http_get(base + "/")[2])["env"]["SHIPYARD_DATA_DIR"]
    assert http_get(f"{base}/write?path={data_dir}/ok")[0] == 200
    assert http_get(f"{base}/write?path=/etc/shipyard-test")[0] == 403
    beta_data = str(Path(data_dir).parent / "beta")
    assert http_get(f"{base}/listdir?path={beta_data}")[0] == 403 or \
        json.loads(http_get(f"{base}/listdir?path={beta_data}")[2])["entries"] == []
    assert json.loads(http_get(f"{base}/listdir?path=/proc")[2])["entries"].count("1") == 1
    assert str(beta["pid"]) not in json.loads(http_get(f"{base}/listdir?path=/proc")[2])["entries"]
    with pytest.raises(OSError):  # killed mid-request by the kernel's OOM killer
        http_get(f"{base}/hog?mb=256", timeout=10)
    killed = wait_for(lambda: next((i for i in cp.instances("alpha") if i["oom_killed"]), None), timeout=15,
                      what="alpha to be OOM-killed")
    assert killed["exit_code"] == 137
    assert cp.instances("beta")[0]["pid"] == beta["pid"]
    assert http_get(f"http://127.0.0.1:{beta['port']}/healthz")[0] == 200
    assert any(e["reason"] == "OOMKilled" for e in json.loads(cp.cli("events", "-o", "json").stdout))


def test_up_detach_returns_at_the_third_crash_naming_the_service_its_exit_code_and_its_log(plane):
    cp = plane([probe_service("steady"), probe_service("crashy", env={"CRASH_ON_START": "3"})])
    started = time.monotonic()
    result = cp.up(check=False)  # waits up to 60 s for ready, unless it sees the crash loop
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: service crashy is crash-looping") and "exited with code 3" in error
    assert "crashing on start as asked" in result.stderr  # the last lines of its log
    assert elapsed < 30, f"up took {elapsed:.1f}s"
    assert cp.instances("steady")  # the control plane keeps running
