"""The external checks of a rollout: run a command or GET a URL against the new release.

A command gate runs in the applied revision's directory, in the instances' bubblewrap sandbox (the state
dir masked: no token, no API socket), with a minimal environment: PATH, HOME, TARGET_URL and SHIPYARD_*
(never the control plane's own, which may hold credentials).

A gate never raises for the check's own failure (a missing command, a timeout, a refused
connection): it answers with a failed `GateResult` whose `detail` says why, so the engine can
record it as an event and decide. Approval gates are not run here: the engine waits for the
approval flag itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Literal

import httpx

from shipyard.runtime.sandbox import DEFAULT_PATH, command_argv
from shipyard.spec.models import ApprovalGate, CommandGate, UrlGate

OUTPUT_LINES = 20
"""Lines of a gate's output kept for events: enough to see why a smoke test failed."""

_OUTPUT_BYTES = 16_384  # the end of an output that is kept: enough for OUTPUT_LINES


@dataclass(frozen=True)
class GateResult:
    """One gate's outcome: `detail` is one line with the numbers, `output` the last lines of
    the command's stdout+stderr, or of the URL's answer."""

    passed: bool
    kind: Literal["command", "url"]
    detail: str
    seconds: float
    output: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-serialisable values, for events and the API."""
        return asdict(self)


@dataclass(frozen=True)
class GateSandbox:
    """Where command gates run: bubblewrap at `bwrap` (None: this machine has none, so they run unsandboxed,
    still with the minimal environment) with `hidden_dirs` masked."""

    bwrap: str | None
    hidden_dirs: tuple[Path, ...]


def gate_env(target_url: str, service: str, release: str, home: str) -> dict[str, str]:
    """Everything a command gate's environment holds: nothing inherited from the control plane."""
    return {"PATH": DEFAULT_PATH, "HOME": home, "TARGET_URL": target_url, "SHIPYARD_SERVICE": service,
            "SHIPYARD_RELEASE": release}


async def run_gate(gate: CommandGate | UrlGate, target_url: str, *, service: str, release: str,
                   cwd: Path | None = None, sandbox: GateSandbox | None = None) -> GateResult:
    """Run one command or URL gate against `target_url` (the canary or preview endpoint).

    Raises TypeError for an ApprovalGate (or anything else): approvals are waited for, not run.
    """
    if isinstance(gate, CommandGate):
        argv: Sequence[str] = gate.command
        if sandbox is not None and sandbox.bwrap is not None:
            argv = command_argv(argv, cwd or Path.cwd(), sandbox.hidden_dirs, sandbox.bwrap)
        env = gate_env(target_url, service, release, home="/tmp")
        return await run_command(argv, gate.timeout, env, cwd, shown=gate.command)
    if isinstance(gate, UrlGate):
        return await get_url(gate.url.replace("{target}", target_url), gate.timeout)
    raise TypeError(f"run_gate() runs command and url gates, not {type(gate).__name__}; "
                    "an approval gate is waited for by the engine")


async def run_gates(gates: Sequence[CommandGate | UrlGate | ApprovalGate], target_url: str, *,
                    service: str, release: str, cwd: Path | None = None,
                    sandbox: GateSandbox | None = None) -> list[GateResult]:
    """Run `gates` in order and stop after the first failure; the last result tells which.

    Approval gates are skipped: the engine asks for approval separately (before or after these,
    as it sees fit), so a list mixing both can be handed over as written in the spec.
    """
    results: list[GateResult] = []
    for gate in gates:
        if isinstance(gate, ApprovalGate):
            continue
        result = await run_gate(gate, target_url, service=service, release=release, cwd=cwd, sandbox=sandbox)
        results.append(result)
        if not result.passed:
            break
    return results


async def run_command(argv: Sequence[str], timeout: float, env: dict[str, str],
                      cwd: Path | None = None, shown: Sequence[str] | None = None) -> GateResult:
    """Run `argv` (no shell) in a process group of its own; exit 0 within `timeout` passes.

    On timeout (or cancellation) the whole group is killed, so a script's children do not
    outlive the gate; processes still in the group when the command exits are killed as well.
    Output goes to a temporary file rather than a pipe: a pipe held open by a background child
    would keep the gate waiting after the command itself has finished.
    """
    shown_text = f"command `{shlex.join(shown or argv)}`"
    started = time.monotonic()
    with tempfile.TemporaryFile() as output:
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=output,
                stderr=asyncio.subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)
        except OSError as exc:
            return GateResult(False, "command", f"{shown_text} could not start: "
                              f"{exc.strerror or exc}{_in_directory(cwd)}",
                              time.monotonic() - started)
        try:
            async with asyncio.timeout(timeout):
                code: int | None = await process.wait()
        except TimeoutError:
            code = None
        finally:
            _kill_group(process.pid)
            await process.wait()
        seconds = time.monotonic() - started
        tail = _last_lines(_tail(output))
    if code is None:
        detail = f"{shown_text} timed out after {timeout:g}s and was killed"
    elif code < 0:
        detail = f"{shown_text} was killed by {_signal_name(-code)} after {seconds:.1f}s"
    else:
        detail = f"{shown_text} exited {code} after {seconds:.1f}s"
    return GateResult(code == 0, "command", detail, seconds, tail)


async def get_url(url: str, timeout: float) -> GateResult:
    """GET `url`; a 2xx answer within `timeout` (for the whole exchange) passes.

    Redirects are not followed: a health URL answering 3xx is reported as such.
    """
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout), httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url)
    except (TimeoutError, httpx.TimeoutException):
        return GateResult(False, "url", f"GET {url} timed out after {timeout:g}s",
                          time.monotonic() - started)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        seconds = time.monotonic() - started
        return GateResult(False, "url", f"GET {url} failed after {seconds:.1f}s: "
                          f"{type(exc).__name__}: {exc}", seconds)
    seconds = time.monotonic() - started
    passed = 200 <= response.status_code < 300
    return GateResult(passed, "url", f"GET {url} → {response.status_code} after {seconds:.1f}s",
                      seconds, _last_lines(response.content[-_OUTPUT_BYTES:]))


def _tail(file: IO[bytes]) -> bytes:
    """The last `_OUTPUT_BYTES` written to `file`."""
    size = file.seek(0, os.SEEK_END)
    file.seek(max(0, size - _OUTPUT_BYTES))
    return file.read()


def _last_lines(data: bytes) -> str:
    lines = data.decode(errors="replace").splitlines()
    return "\n".join(lines[-OUTPUT_LINES:])


def _kill_group(pgid: int) -> None:
    """SIGKILL every process left in group `pgid` (the command's own, see start_new_session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _in_directory(cwd: Path | None) -> str:
    return f" (in {cwd})" if cwd is not None else ""
