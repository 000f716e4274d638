"""Picking a control plane from the command line: `--env NAME` wherever `--state-dir` is accepted."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.controlplane import SHIPYARD, free_port, sweep
from tests.projects import probe_service, write_project


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SHIPYARD, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "SHIPYARD_STATE_DIR"})


@pytest.fixture
def two_environments(tmp_path: Path):
    started: list[Path] = []
    for env in ("dev", "prod"):
        project = write_project(tmp_path / f"project-{env}", [probe_service(f"svc-{env}")], environment=env)
        result = _cli(tmp_path, "up", str(project), "--env", env, "--detach", "--ingress-port", str(free_port()),
                      "--timeout", "60")
        started.append(tmp_path / ".shipyard" / env)
        assert result.returncode == 0, result.stderr
    yield tmp_path
    for state in started:
        pids = {int(json.loads((state / "control.json").read_text())["pid"])} if (state / "control.json").exists() else set()
        sweep(state, pids)


def test_env_picks_one_of_two_running_environments(two_environments: Path):
    cwd = two_environments
    status = json.loads(_cli(cwd, "status", "--env", "prod", "-o", "json").stdout)
    assert status["environment"] == "prod" and [s["name"] for s in status["services"]] == ["svc-prod"]
    events = json.loads(_cli(cwd, "events", "--env", "dev", "-o", "json").stdout)
    assert events and {e["object"] for e in events} >= {"svc-dev"} | {e["object"] for e in events}
    assert all("svc-prod" not in e["object"] for e in events)
    ambiguous = _cli(cwd, "status")
    assert ambiguous.returncode == 1 and "several environments in .shipyard/ (dev, prod): pass --env NAME" in ambiguous.stderr
    conflict = _cli(cwd, "status", "--env", "prod", "--state-dir", ".shipyard/dev")
    assert conflict.returncode == 2 and "--env prod means --state-dir .shipyard/prod" in conflict.stderr


def test_every_command_with_state_dir_accepts_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]):
    from shipyard.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHIPYARD_STATE_DIR", raising=False)
    commands = [[name] for name in ("status", "events", "apply", "down", "sync", "history", "suspend", "resume")]
    commands += [["logs", "x"], ["rollback", "--to", "HEAD"]]
    commands += [["rollout", verb, "x"] for verb in ("status", "history", "undo", "promote", "abort")]
    for command in commands:
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        help_text = capsys.readouterr().out
        assert "--state-dir" in help_text and "--env NAME" in help_text, command
        with pytest.raises(SystemExit) as exited:
            main([*command, "--env", "nowhere"])
        assert exited.value.code == 1 and ".shipyard/nowhere" in capsys.readouterr().err, command
    assert not (tmp_path / ".shipyard").exists()  # asking about an environment creates nothing
