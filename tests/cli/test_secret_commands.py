"""Secrets end to end with the real CLI, a real control plane and the real `sops`: a value reaches the
instance's environment and nowhere else; a tampered file is refused; the commands keep files sops reads."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.controlplane import ControlPlane, http_get, run_cli, wait_for
from tests.projects import probe_service, write_project
from tests.secrets.conftest import sops_path

FIRST = "sk_live_FIRST-7f3a9c1e"
SECOND = "sk_live_SECOND-b24d80aa"


def _git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com",
           "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com"}
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True).stdout


def _set(plane: ControlPlane, key: str, value: str) -> None:
    result = subprocess.run([*run_cli.__globals__["SHIPYARD"], "secrets", "set", plane.environment, key,
                             "-C", str(plane.project), "--state-dir", str(plane.state_dir)],
                            input=value, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def _instance_env(plane: ControlPlane) -> dict[str, str]:
    port = plane.wait_ready("payments", 1)[0]["port"]
    return json.loads(http_get(f"http://127.0.0.1:{port}/")[2])["env"]


def _pids(plane: ControlPlane) -> set[int]:
    instances = {i["pid"] for i in plane.service("payments")["instances"] if i["pid"]}
    assert instances
    return {plane.control_pid(), *instances}


def _argv(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode("latin-1")


@pytest.fixture
def plane(tmp_path: Path):
    service = probe_service("payments", env={"API_KEY": {"secret": "payments.api_key"}, "MODE": "test"})
    project = write_project(tmp_path / "project", [service])
    created = ControlPlane(project, tmp_path / "state")
    public = run_cli("secrets", "keygen", "--state-dir", str(created.state_dir)).stdout.strip()
    assert public.startswith("age1")
    assert (created.state_dir / "age.key").stat().st_mode & 0o777 == 0o600
    _set(created, "payments.api_key", FIRST)
    _git(project, "init", "--quiet", "--initial-branch=main")
    _git(project, "add", "--all")
    _git(project, "commit", "--quiet", "-m", "first")
    yield created
    created.teardown()


def test_a_secret_reaches_the_instance_only_and_never_shows_anywhere_else(plane: ControlPlane) -> None:
    plane.up()
    env = _instance_env(plane)
    assert env["API_KEY"] == FIRST and env["MODE"] == "test"
    first_release = plane.service("payments")["instances"][0]["release"]
    argv = {pid: _argv(pid) for pid in _pids(plane)}

    _set(plane, "payments.api_key", SECOND)
    _git(plane.project, "commit", "--quiet", "-am", "second")
    planned = run_cli("plan", str(plane.project), "--env", "dev", "--from", "HEAD~1", "--to", "HEAD", "-o", "json",
                      check=False)
    assert planned.returncode == 3, planned.stderr  # 3: something changes
    plan = planned.stdout
    changes = json.loads(plan)["environments"]["dev"]["services"]["payments"]["config"]
    assert [c["key"] for c in changes] == ["env.API_KEY.encrypted"], "plan says the secret changed, no more"

    plane.cli("apply", str(plane.project))
    wait_for(lambda: _instance_env(plane)["API_KEY"] == SECOND, 30, 0.2, "the new value in the instance")
    assert plane.service("payments")["instances"][0]["release"] != first_release, "a new value is a new release"

    outputs = {
        "status": plane.cli("status", "-o", "json").stdout + plane.cli("status").stdout,
        "render": run_cli("render", str(plane.project), "--env", "dev", "-o", "json").stdout,
        "plan": plan + run_cli("plan", str(plane.project), "--env", "dev", "--from", "HEAD~1", "--to", "HEAD",
                               check=False).stdout,
        "history": plane.cli("history", "-o", "json").stdout,
        "events": plane.cli("events", "-o", "json").stdout,
        "control-plane log": (plane.state_dir / "control-plane.log").read_text(errors="replace"),
        "secrets file": (plane.project / "secrets" / "dev.yaml").read_text(),
    }
    for path in plane.state_dir.glob("state.db*"):  # the database and its WAL
        outputs[path.name] = path.read_bytes().decode("latin-1")
    argv.update({pid: _argv(pid) for pid in _pids(plane)})
    outputs.update({f"argv of {pid}": text for pid, text in argv.items()})
    assert '"secret": "payments.api_key"' in outputs["render"], "render shows the reference"
    for name, text in outputs.items():
        for value in (FIRST, SECOND):
            assert value not in text, f"a secret value appears in {name}"


def test_a_tampered_file_or_a_missing_key_is_rejected_and_the_running_release_stays(plane: ControlPlane) -> None:
    plane.up()
    release = plane.service("payments")["instances"][0]["release"]
    path = plane.project / "secrets" / "dev.yaml"
    yaml = YAML(typ="safe", pure=True)
    data = yaml.load(path.read_text())
    data["payments"]["extra"] = data["payments"]["api_key"]  # a valid ciphertext, moved: the MAC must catch it
    with path.open("w") as handle:
        yaml.dump(data, handle)

    result = plane.cli("apply", str(plane.project), check=False)
    assert result.returncode == 1
    assert "secrets/dev.yaml" in result.stderr and "does not decrypt" in result.stderr
    assert [i["release"] for i in plane.instances("payments", "ready")] == [release]
    env = {"PATH": os.environ["PATH"], "SOPS_AGE_KEY_FILE": str(plane.state_dir / "age.key")}
    assert subprocess.run([sops_path(), "--disable-version-check", "decrypt", str(path)], env=env,
                          capture_output=True).returncode != 0, "sops agrees the file is tampered"

    _git(plane.project, "checkout", "--", "secrets/dev.yaml")
    (plane.state_dir / "age.key").rename(plane.state_dir / "age.key.away")
    result = plane.cli("apply", str(plane.project), check=False)
    assert result.returncode == 1 and "no age key at" in result.stderr and "shipyard secrets keygen" in result.stderr
    assert [i["release"] for i in plane.instances("payments", "ready")] == [release]


def test_validate_refuses_plaintext_and_unknown_references(plane: ControlPlane) -> None:
    services = plane.project / "services" / "payments.yaml"
    services.write_text(services.read_text().replace("payments.api_key", "payments.apikey"))
    (plane.project / "secrets" / "plain.yaml").write_text("password: hunter2\n")
    result = run_cli("validate", str(plane.project), check=False)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(line.startswith("secrets/plain.yaml:1:1: error: plaintext secrets file") for line in lines), lines
    assert any(line.startswith("services/payments.yaml:") and "unknown secret `payments.apikey`" in line
               and "(keys: payments.api_key)" in line for line in lines), lines


def test_edit_and_rotate_keep_files_sops_reads(plane: ControlPlane, tmp_path: Path) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "payments:\\n  api_key: edited\\n  webhook: w\\n" > "$1"\n')
    editor.chmod(0o700)
    common = ["-C", str(plane.project), "--state-dir", str(plane.state_dir)]
    run_cli("secrets", "edit", "dev", *common, env={"EDITOR": str(editor)})
    newcomer = tmp_path / "newcomer.key"
    public = run_cli("secrets", "keygen", env={"SHIPYARD_AGE_KEY_FILE": str(newcomer)}).stdout.strip()
    run_cli("secrets", "rotate", "dev", "-r", public, *common)

    env = {"PATH": os.environ["PATH"], "SOPS_AGE_KEY_FILE": str(newcomer)}
    decrypted = subprocess.run([sops_path(), "--disable-version-check", "decrypt", "secrets/dev.yaml"], env=env,
                               cwd=plane.project, capture_output=True, text=True, check=True).stdout
    assert YAML(typ="safe", pure=True).load(decrypted) == {"payments": {"api_key": "edited", "webhook": "w"}}
    old_key = run_cli("secrets", "edit", "dev", *common, env={"EDITOR": "true"}, check=False)
    assert old_key.returncode == 1 and "none of its age recipients" in old_key.stderr
    listed = json.loads(run_cli("secrets", "list", "dev", "-C", str(plane.project), "-o", "json").stdout)
    assert listed["keys"] == ["payments.api_key", "payments.webhook"] and listed["recipients"] == [public]
