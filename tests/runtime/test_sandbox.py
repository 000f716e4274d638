"""Tests of the bubblewrap and direct command lines (pure)."""

from __future__ import annotations

from pathlib import Path

from shipyard.runtime.base import InstanceSpec, Limits
from shipyard.runtime.sandbox import DEFAULT_PATH, bwrap_argv, command_argv, direct_argv, service_env, writable_paths


def make_spec(**overrides: object) -> InstanceSpec:
    values: dict[str, object] = {
        "instance_id": "catalog-1", "service": "catalog", "argv": ("python3", "app.py", "--port", "8000"),
        "snapshot_dir": Path("/state/snapshots/r1"), "data_dir": Path("/state/data/catalog"),
        "run_dir": Path("/state/instances/catalog-1"), "env": {"PORT": "8000"},
        "limits": Limits(cpu=0.5, memory=1 << 26), "hidden_dirs": (Path("/state"),),
    }
    values.update(overrides)
    return InstanceSpec(**values)  # type: ignore[arg-type]


def pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


def test_bwrap_argv_isolates_everything_but_the_network() -> None:
    argv = bwrap_argv(make_spec(), "/usr/bin/bwrap")
    assert argv[0] == "/usr/bin/bwrap"
    assert argv[1:4] == ["--ro-bind", "/", "/"]
    for flag in ("--unshare-pid", "--unshare-ipc", "--unshare-uts"):
        assert flag in argv
    for flag in ("--unshare-net", "--unshare-all", "--die-with-parent", "--as-pid-1"):
        assert flag not in argv
    assert pairs(argv, "--dev") == ["/dev"] and pairs(argv, "--proc") == ["/proc"]
    assert pairs(argv, "--cap-drop") == ["ALL"]
    assert pairs(argv, "--json-status-fd") == ["3"]
    assert argv[argv.index("--") + 1:] == ["python3", "app.py", "--port", "8000"]


def test_hidden_dirs_are_masked_read_only_before_snapshot_and_data_are_bound_again() -> None:
    argv = bwrap_argv(make_spec(), "bwrap")
    assert pairs(argv, "--tmpfs") == ["/tmp", "/state"]
    # mount points are made while the tmpfs is still writable, then it is made read-only
    assert pairs(argv, "--dir") == ["/state/snapshots/r1", "/state/data/catalog"]
    assert pairs(argv, "--remount-ro") == ["/state"]
    snapshot_bind = argv.index("--ro-bind", 4)
    assert argv[snapshot_bind:snapshot_bind + 3] == ["--ro-bind", "/state/snapshots/r1", "/state/snapshots/r1"]
    data_bind = argv.index("--bind")
    assert argv[data_bind:data_bind + 3] == ["--bind", "/state/data/catalog", "/state/data/catalog"]
    steps = [argv.index("/state"), argv.index("--dir"), argv.index("--remount-ro"), snapshot_bind, data_bind,
             argv.index("--chdir")]
    assert steps == sorted(steps)
    assert pairs(argv, "--chdir") == ["/state/snapshots/r1"]


def test_no_mount_points_are_made_for_dirs_outside_hidden_ones() -> None:
    argv = bwrap_argv(make_spec(hidden_dirs=(Path("/secrets"),)), "bwrap")
    assert "--dir" not in argv
    assert pairs(argv, "--remount-ro") == ["/secrets"]


def test_nested_hidden_dirs_are_masked_outer_first() -> None:
    argv = bwrap_argv(make_spec(hidden_dirs=(Path("/state/keys"), Path("/state"))), "bwrap")
    assert pairs(argv, "--tmpfs") == ["/tmp", "/state", "/state/keys"]


def test_direct_argv_passes_the_command_as_separate_arguments() -> None:
    argv = direct_argv(make_spec(argv=("echo", "a b", "$HOME")), "/run/pid", "/run/status.json")
    assert argv[:2] == ["/bin/sh", "-c"]
    assert argv[3:] == ["shipyard-supervise", "/run/pid", "/run/status.json", "echo", "a b", "$HOME"]


def test_service_env_adds_only_a_missing_path() -> None:
    assert service_env(make_spec(env={"A": "1"})) == {"A": "1", "PATH": DEFAULT_PATH}
    assert service_env(make_spec(env={"PATH": "/opt/bin"})) == {"PATH": "/opt/bin"}


def test_writable_paths() -> None:
    assert writable_paths(make_spec(), sandboxed=True) == ("/state/data/catalog", "/tmp", "/dev")
    assert writable_paths(make_spec(), sandboxed=False) == ("/",)


def test_command_argv_masks_the_state_dir_and_runs_read_only_in_the_workdir() -> None:
    argv = command_argv(["./smoke.sh", "a b"], Path("/state/revisions/abc"), [Path("/state")], "/usr/bin/bwrap")
    assert argv[:4] == ["/usr/bin/bwrap", "--ro-bind", "/", "/"]
    assert argv[-3:] == ["--", "./smoke.sh", "a b"]
    assert "--die-with-parent" in argv and pairs(argv, "--cap-drop") == ["ALL"]
    assert pairs(argv, "--tmpfs") == ["/tmp", "/state"] and pairs(argv, "--remount-ro") == ["/state"]
    # the mount point is made inside the masked dir before it turns read-only, then the revision is bound there
    assert argv.index("--dir") < argv.index("--remount-ro") < argv.index("--chdir")
    assert pairs(argv, "--dir") == ["/state/revisions/abc"] and pairs(argv, "--chdir") == ["/state/revisions/abc"]
    outside = command_argv(["true"], Path("/srv/shop"), [Path("/state")])
    assert "--dir" not in outside and pairs(outside, "--ro-bind")[-1] == "/srv/shop"
