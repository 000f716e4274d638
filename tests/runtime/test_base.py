"""Tests of the runtime contract's values."""

from __future__ import annotations

import json

from shipyard.runtime.base import Handle


def test_handle_round_trips_through_json() -> None:
    handle = Handle(
        instance_id="catalog-3f2a1b9c-k7x2", pid=1234, start_time=99, supervisor_pid=1230,
        supervisor_start_time=98, cgroups={"memory": "/sys/fs/cgroup/memory/shipyard/x"},
        status_file="/s/status.json", stdout_path="/s/stdout.log", stderr_path="/s/stderr.log")
    assert Handle.from_dict(json.loads(json.dumps(handle.to_dict()))) == handle


def test_handle_from_dict_ignores_extra_keys_and_accepts_no_supervisor() -> None:
    data = {"instance_id": "a", "pid": 5, "start_time": 6, "supervisor_pid": None, "supervisor_start_time": None,
            "cgroups": {}, "status_file": "s", "stdout_path": "o", "stderr_path": "e", "limits": {"cpu": 1}}
    handle = Handle.from_dict(data)
    assert handle.supervisor_pid is None and handle.cgroups == {}
