"""Tests of rollout gates with real subprocesses and a real local HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from shipyard.delivery.gates import OUTPUT_LINES, GateResult, GateSandbox, run_gate, run_gates
from shipyard.runtime.capabilities import capabilities
from shipyard.spec.models import ApprovalGate, CommandGate, UrlGate


def command(*argv: str, timeout: float = 10.0, cwd: Path | None = None,
            target: str = "http://127.0.0.1:9/") -> GateResult:
    gate = CommandGate(command=list(argv), timeout=timeout)
    return asyncio.run(run_gate(gate, target, service="catalog", release="catalog.r2", cwd=cwd))


def url(template: str, target: str = "http://unused", timeout: float = 5.0) -> GateResult:
    gate = UrlGate(url=template, timeout=timeout)
    return asyncio.run(run_gate(gate, target, service="catalog", release="catalog.r2"))


def gone(pid: int, timeout_s: float = 5.0) -> bool:
    """Whether `pid` has exited (a zombie waiting for its new parent counts as exited)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.02)
    return False


# ---- command gates ------------------------------------------------------------------------------


def test_exit_0_passes_and_other_codes_fail() -> None:
    passed = command("true")
    assert passed.passed and passed.kind == "command"
    assert passed.detail.startswith("command `true` exited 0 after ")
    failed = command("sh", "-c", "exit 3")
    assert not failed.passed
    assert failed.detail.startswith("command `sh -c 'exit 3'` exited 3 after ")
    assert command("false").to_dict()["passed"] is False


def test_the_command_gets_the_target_service_and_release_in_its_environment() -> None:
    script = ('test "$TARGET_URL" = http://127.0.0.1:8123/ && '
              'echo "$SHIPYARD_SERVICE $SHIPYARD_RELEASE"')
    result = command("sh", "-c", script, target="http://127.0.0.1:8123/")
    assert result.passed, result
    assert result.output == "catalog catalog.r2"
    assert command("sh", "-c", script, target="http://elsewhere/").passed is False


def test_the_last_lines_of_stdout_and_stderr_are_kept() -> None:
    script = "for i in $(seq 1 30); do echo out $i; echo err $i >&2; done; exit 1"
    result = command("sh", "-c", script)
    lines = result.output.splitlines()
    assert len(lines) == OUTPUT_LINES
    assert lines[-2:] == ["out 30", "err 30"]


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    started = time.monotonic()
    result = command("sh", "-c", f"sleep 30 & echo $! > {pid_file}; echo waiting; sleep 30",
                     timeout=0.5)
    assert time.monotonic() - started < 5
    assert not result.passed
    assert result.detail == "command `sh -c 'sleep 30 & echo $! > " \
        f"{pid_file}; echo waiting; sleep 30'` timed out after 0.5s and was killed"
    assert result.output == "waiting" and 0.5 <= result.seconds < 5
    assert gone(int(pid_file.read_text()))


def test_cancelling_the_gate_kills_the_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    gate = CommandGate(command=["sh", "-c", f"sleep 30 & echo $! > {pid_file}; sleep 30"])

    async def cancel_soon() -> None:
        task = asyncio.create_task(run_gate(gate, "http://x", service="s", release="r"))
        while not pid_file.exists() or not pid_file.read_text():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(cancel_soon(), 10))
    assert gone(int(pid_file.read_text()))


def test_processes_left_behind_by_a_finished_command_are_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    started = time.monotonic()
    result = command("sh", "-c", f"sleep 30 & echo $! > {pid_file}")
    assert result.passed and time.monotonic() - started < 5
    assert gone(int(pid_file.read_text()))


def test_a_command_killed_by_a_signal_says_which() -> None:
    result = command("sh", "-c", "kill -TERM $$")
    assert not result.passed and " was killed by SIGTERM after " in result.detail


def test_a_missing_command_is_a_failed_result_not_an_exception(tmp_path: Path) -> None:
    result = command("/nonexistent/smoke.sh")
    assert not result.passed
    assert result.detail == ("command `/nonexistent/smoke.sh` could not start: "
                             "No such file or directory")
    result = command("./smoke.sh", cwd=tmp_path)
    assert result.detail.endswith(f"could not start: No such file or directory (in {tmp_path})")


def test_a_relative_command_runs_in_cwd(tmp_path: Path) -> None:
    script = tmp_path / "smoke.sh"
    script.write_text("#!/bin/sh\npwd\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    result = command("./smoke.sh", cwd=tmp_path)
    assert result.passed and result.output == str(tmp_path)


def test_an_approval_gate_is_not_run() -> None:
    with pytest.raises(TypeError, match="approval gate is waited for by the engine"):
        asyncio.run(run_gate(ApprovalGate(approval=True), "http://x",  # type: ignore[arg-type]
                             service="catalog", release="catalog.r2"))


def test_run_gates_goes_in_order_skips_approvals_and_stops_at_the_first_failure(
        tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    gates = [CommandGate(command=["true"]), ApprovalGate(approval=True),
             CommandGate(command=["sh", "-c", "exit 2"]),
             CommandGate(command=["touch", str(marker)])]
    results = asyncio.run(run_gates(gates, "http://x", service="catalog", release="catalog.r2"))
    assert [r.passed for r in results] == [True, False]
    assert "exited 2" in results[-1].detail and not marker.exists()
    everything = asyncio.run(run_gates(gates[:2], "http://x", service="s", release="r"))
    assert [r.passed for r in everything] == [True]


# ---- URL gates ----------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/slow":
            time.sleep(1.5)
        status = 503 if self.path == "/fail" else 200
        body = b"database down\n" if status == 503 else b"ok\n"
        with contextlib.suppress(OSError):  # the client of /slow gave up
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A local HTTP server: /fail answers 503, /slow takes 1.5 s, anything else 200."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_a_2xx_answer_passes_and_target_is_substituted(server: str) -> None:
    result = url("{target}/health", target=server)
    assert result.passed and result.kind == "url"
    assert result.detail.startswith(f"GET {server}/health → 200 after ")
    assert result.output == "ok"


def test_a_5xx_answer_fails_with_its_status_and_body(server: str) -> None:
    result = url(f"{server}/fail")
    assert not result.passed
    assert result.detail.startswith(f"GET {server}/fail → 503 after ")
    assert result.output == "database down"


def test_a_slow_answer_times_out(server: str) -> None:
    result = url(f"{server}/slow", timeout=0.2)
    assert not result.passed
    assert result.detail == f"GET {server}/slow timed out after 0.2s"
    assert result.seconds < 1.0


def test_a_refused_connection_fails_with_the_reason() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/health"
    result = url(closed)
    assert not result.passed
    assert result.detail.startswith(f"GET {closed} failed after ")
    assert "ConnectError" in result.detail


def test_a_target_that_is_no_url_fails_cleanly() -> None:
    result = url("{target}/health", target="not a url")
    assert not result.passed and result.detail.startswith("GET not a url/health failed after ")


def test_results_are_json_ready() -> None:
    assert GateResult(True, "url", "GET x → 200 after 0.0s", 0.01).to_dict() == {
        "passed": True, "kind": "url", "detail": "GET x → 200 after 0.0s", "seconds": 0.01,
        "output": ""}


def test_the_environment_of_the_control_plane_is_not_passed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANTED_SECRET", "hunter2")
    monkeypatch.setenv("SHIPYARD_TOKEN", "hunter3")
    output = command("env").output
    assert "hunter" not in output
    assert {line.split("=", 1)[0] for line in output.splitlines()} == {
        "PATH", "HOME", "TARGET_URL", "SHIPYARD_SERVICE", "SHIPYARD_RELEASE"}


@pytest.mark.skipif(capabilities().bwrap is None, reason="needs a working bubblewrap")
def test_a_sandboxed_gate_runs_in_its_directory_and_cannot_see_the_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    revision = state / "revisions" / "abc123"  # a followed commit's snapshot lives inside the state dir
    revision.mkdir(parents=True)
    (state / "token").write_text("hunter2\n")
    script = revision / "smoke.sh"
    script.write_text('#!/bin/sh\npwd\necho "pid $$"\ncat ../../token || echo no-token\n'
                      'touch written 2>/dev/null || echo read-only\n')
    script.chmod(0o755)
    gate = CommandGate(command=["./smoke.sh"], timeout=10)
    sandbox = GateSandbox(capabilities().bwrap, (state,))
    result = asyncio.run(run_gate(gate, "http://127.0.0.1:9/", service="catalog", release="catalog.r2",
                                  cwd=revision, sandbox=sandbox))
    assert result.passed, result
    lines = result.output.splitlines()
    assert lines[0] == str(revision) and "no-token" in lines and "read-only" in lines
    assert "hunter2" not in result.output
    assert int(lines[1].split()[1]) < 10  # its own pid namespace
    assert result.detail.startswith("command `./smoke.sh` exited 0")


@pytest.mark.skipif(capabilities().bwrap is None, reason="needs a working bubblewrap")
def test_a_sandboxed_gate_that_times_out_leaves_nothing_running(tmp_path: Path) -> None:
    marker = f"{61 + os.getpid() % 1000 / 1000:.3f}"  # a sleep no other test runs
    gate = CommandGate(command=["sh", "-c", f"sleep {marker} & wait"], timeout=1)
    (tmp_path / "hidden").mkdir()
    sandbox = GateSandbox(capabilities().bwrap, (tmp_path / "hidden",))
    result = asyncio.run(run_gate(gate, "http://x/", service="s", release="r", cwd=tmp_path, sandbox=sandbox))
    assert not result.passed and "timed out" in result.detail

    def sleepers() -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and (entry / "cmdline").read_bytes() == f"sleep\0{marker}\0".encode() \
                        and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
            except OSError:
                pass
        return found

    deadline = time.monotonic() + 5
    while sleepers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sleepers() == []
