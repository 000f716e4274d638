"""Flags through a real control plane: served on their own address, changed by apply within a second,
restarting nothing, rejected with the rest when invalid; and the CLI gives the same answers as OFREP."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

from tests.controlplane import ControlPlane, http_get, pid_alive, wait_for
from tests.projects import probe_service, write_project

FLAGS = {
    "flags": {
        "checkout": {"state": "ENABLED", "variants": {"old": "v1", "new": "v2"}, "defaultVariant": "old",
                     "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "new", None]}},
    },
}


@pytest.fixture
def plane(tmp_path: Path):
    project = write_project(tmp_path / "project", [probe_service("alpha")])
    write_flags(project, FLAGS)
    created = ControlPlane(project, tmp_path / "state")
    yield created
    created.teardown()


def write_flags(project: Path, document: dict[str, Any]) -> None:
    (project / "flags").mkdir(exist_ok=True)
    (project / "flags" / "shop.json").write_text(json.dumps(document, indent=2), encoding="utf-8")


def evaluate(ofrep: str, key: str, context: dict[str, Any]) -> dict[str, Any]:
    return dict(httpx.post(f"{ofrep}/ofrep/v1/evaluate/flags/{key}", json={"context": context}, timeout=5).json())


def test_flags_are_served_changed_and_rejected_without_restarts(plane: ControlPlane) -> None:
    plane.up()
    instance = plane.wait_ready("alpha", 1)[0]
    status = plane.status()
    ofrep = status["ofrep"]
    assert ofrep.startswith("http://127.0.0.1:") and ofrep != status["api"]
    assert [f["key"] for f in status["flags"]] == ["checkout"]
    # every instance is told where the flags are
    _, _, body = http_get(f"http://127.0.0.1:{instance['port']}/")
    assert json.loads(body)["env"]["SHIPYARD_OFREP_URL"] == ofrep
    # the OFREP listener answers flags only: the control API is not reachable through it
    assert http_get(f"{ofrep}/status")[0] == 404

    api.set_provider(OFREPProvider(ofrep), "cp")
    client = api.get_client("cp")
    details = client.get_string_details("checkout", "x", EvaluationContext("u1", {"email": "a@example.com"}))
    assert (details.value, details.variant, details.reason) == ("v2", "new", "TARGETING_MATCH")

    # a change of flags alone: new value served within a second of apply, nothing restarted
    changed = json.loads(json.dumps(FLAGS))
    changed["flags"]["checkout"]["defaultVariant"] = "new"
    write_flags(plane.project, changed)
    plane.cli("apply")
    applied = time.monotonic()
    wait_for(lambda: evaluate(ofrep, "checkout", {"targetingKey": "u2"}).get("value") == "v2", timeout=1.0,
             interval=0.01, what="the new default served")
    assert time.monotonic() - applied < 1.0
    after = plane.status()
    assert [i["pid"] for i in after["services"][0]["instances"]] == [instance["pid"]]
    assert after["services"][0]["release"] == status["services"][0]["release"]
    assert after["revision"] != status["revision"]
    events = json.loads(plane.cli("events", "-o", "json").stdout)
    [change] = [e for e in events if e["reason"] == "FlagsChanged" and "changed checkout" in e["message"]]
    assert change["data"] == {"added": [], "removed": [], "changed": ["checkout"]}

    # an invalid flag file rejects the whole apply, with file and line; the old flags keep being served
    broken = json.loads(json.dumps(changed))
    broken["flags"]["checkout"]["defaultVariant"] = "newest"
    write_flags(plane.project, broken)
    result = plane.cli("apply", check=False)
    line = next(n for n, text in enumerate(json.dumps(broken, indent=2).splitlines(), 1) if '"newest"' in text)
    assert result.returncode == 1
    assert f"flags/shop.json:{line}:" in result.stderr and "unknown variant `newest`" in result.stderr
    assert "Traceback" not in result.stderr
    assert plane.status()["revision"] == after["revision"]
    assert evaluate(ofrep, "checkout", {"targetingKey": "u2"})["value"] == "v2"


def test_cli_lists_and_evaluates_like_ofrep_and_the_address_survives_restarts(plane: ControlPlane) -> None:
    plane.up()
    ofrep = plane.status()["ofrep"]
    listed = json.loads(plane.cli("flags", "list", "-o", "json").stdout)
    assert listed == [{"key": "checkout", "state": "ENABLED", "type": "string", "defaultVariant": "old",
                       "variants": ["new", "old"], "targeting": True, "metadata": {}}]
    assert "checkout" in plane.cli("flags", "list").stdout
    assert f"flags 1 served over OFREP at {ofrep}" in plane.cli("status").stdout
    answer = json.loads(plane.cli("flags", "eval", "checkout", "--context", "targetingKey=u1",
                                  "--context", "email=a@example.com", "-o", "json").stdout)
    assert answer == evaluate(ofrep, "checkout", {"targetingKey": "u1", "email": "a@example.com"})
    assert answer["value"] == "v2"
    table = plane.cli("flags", "eval", "checkout", "--context", "targetingKey=u1").stdout
    assert '"v1"' in table and "DEFAULT" in table
    missing = plane.cli("flags", "eval", "nope", check=False)
    assert missing.returncode == 1 and missing.stderr.startswith("Error: FLAG_NOT_FOUND")
    usage = plane.cli("flags", "eval", "checkout", "--context", "novalue", check=False)
    assert usage.returncode == 2 and "NAME=VALUE" in usage.stderr

    os.kill(plane.control_pid(), signal.SIGKILL)
    wait_for(lambda: not pid_alive(plane.control_pid()), what="the control plane to die")
    plane.up()
    assert plane.status()["ofrep"] == ofrep
    assert evaluate(ofrep, "checkout", {"targetingKey": "u1"})["value"] == "v1"
