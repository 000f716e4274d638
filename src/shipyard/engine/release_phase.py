"""The release phase: a command (schema migrations) run once per new release before any of its instances starts.

How it holds a rollout back without a second state machine: while the phase of the target release has
not succeeded, the service's rollout record for that release has status `releasing` (the plan then only
heals what runs, as for a failed rollout); a failed or timed-out phase turns that record `failed`, with
the exit code and the last output lines in its message; a phase that succeeded turns it `progressing`,
and the rollout goes on as it would have. Each phase run is recorded in the store under
`release_phase/<release>`, so a restarted control plane neither loses nor repeats it; the service's
last successful phase is `release_phase_last/<service>`, which decides a rerun on rollback.

`decide` is pure; `run_phase` is the side effect (the runtime driver, a pidfd, a timeout).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.engine.model import DesiredService, Instance, Rollout, State
from shipyard.delivery.phases import STARTING
from shipyard.runtime.base import Handle, InstanceSpec, RuntimeDriver

RELEASING = "releasing"           # rollout status while the target's release phase runs
TAIL_LINES = 10


def record_key(release_id: str) -> str:
    return f"release_phase/{release_id}"


def last_key(service: str) -> str:
    return f"release_phase_last/{service}"


@dataclass(frozen=True)
class Decision:
    """What the reconciler does about one service's release phase in this pass (all None/False: nothing)."""

    run: bool = False                  # start the phase (and hold the rollout)
    rollout: Rollout | None = None     # the rollout record to save (hold, fail or release)


def needs_run(desired: DesiredService, record: dict[str, Any] | None, last: str | None) -> bool:
    """Whether the target release's phase must (still) run: never ran, or a declared rerun on rollback."""
    release = desired.release
    if not release.release_command:
        return False
    if record is None:
        return True
    if record.get("status") == "succeeded" and release.rerun_on_rollback and last not in (None, release.id):
        return True
    return False


def decide(desired: DesiredService, rollout: Rollout | None, record: dict[str, Any] | None, last: str | None,
           instances: list[Instance], running: bool, now: float) -> Decision:
    """The step for one service: hold its rollout while the phase runs, fail it, or let it go on."""
    release = desired.release
    target = release.id
    if not release.release_command:
        return Decision()
    ours = rollout if rollout is not None and rollout.target == target else None
    status = (record or {}).get("status")
    rerun = needs_run(desired, record, last)
    if rerun and not running:
        return Decision(run=True, rollout=_hold(desired, ours, instances, now))
    if running or status == "running":
        return Decision(rollout=None if ours is not None and ours.status == RELEASING else _hold(desired, ours,
                                                                                                instances, now))
    if status == "failed":
        if ours is not None and ours.status == "failed":
            return Decision()
        held = ours if ours is not None else _hold(desired, None, instances, now)
        return Decision(rollout=dataclasses.replace(
            held, status="failed", reason="ReleasePhaseFailed", updated_at=now,
            message=failure_message(release.release_command, record or {}, target, held.previous)))
    if status == "succeeded" and ours is not None and ours.status == RELEASING:
        previous = ours.previous
        progressive = desired.progressive is not None and previous is not None and any(
            i.release == previous and i.state is State.READY for i in instances)
        return Decision(rollout=dataclasses.replace(
            ours, status="progressing", reason="", updated_at=now, phase=STARTING if progressive else "",
            message=(f"release phase done; rolling out release {target}" if previous
                     else f"release phase done; deploying release {target}")))
    return Decision()


def _hold(desired: DesiredService, ours: Rollout | None, instances: list[Instance], now: float) -> Rollout:
    command = " ".join(shlex.quote(part) for part in desired.release.release_command)
    serving = [i.release for i in instances if i.release != desired.release.id and i.live]
    previous = max(set(serving), key=serving.count) if serving else (ours.previous if ours else None)
    return Rollout(service=desired.name, target=desired.release.id, started_at=now, strategy=desired.strategy,
                   status=RELEASING, reason="ReleasePhase", previous=previous, updated_at=now,
                   message=f"release phase `{command}` running for release {desired.release.id}"
                           + (f"; release {previous} keeps serving" if previous else ""))


def failure_message(command: tuple[str, ...], record: dict[str, Any], target: str, previous: str | None) -> str:
    what = " ".join(shlex.quote(part) for part in command)
    if record.get("timed_out"):
        outcome = f"timed out after {record.get('timeout', 0):g}s"
    else:
        outcome = f"exited with code {record.get('exit_code')}"
    tail = " | ".join(record.get("output") or []) or "(no output)"
    kept = f"release {previous} keeps serving" if previous else "nothing was deployed"
    return f"release phase `{what}` {outcome}; release {target} is not deployed, {kept}; last output: {tail}"


@dataclass(frozen=True)
class PhaseResult:
    exit_code: int | None
    timed_out: bool
    output: list[str]
    started_at: float
    finished_at: float

    def to_record(self, release_id: str, timeout: float) -> dict[str, Any]:
        ok = self.exit_code == 0 and not self.timed_out
        return {"release": release_id, "status": "succeeded" if ok else "failed", "exit_code": self.exit_code,
                "timed_out": self.timed_out, "timeout": timeout, "output": self.output,
                "started_at": self.started_at, "finished_at": self.finished_at}


def phase_spec(spec: InstanceSpec, command: tuple[str, ...], run_dir: Path, job_id: str) -> InstanceSpec:
    """An instance's spec (files, env, sandbox, limits) turned into the release phase's job."""
    return dataclasses.replace(spec, instance_id=job_id, argv=command, run_dir=run_dir)


async def wait_phase(driver: RuntimeDriver, handle: Handle, timeout: float) -> PhaseResult:
    """Wait for a started job; kill its whole cgroup at the timeout; never raises for its failure."""
    started = time.time()
    timed_out = not await _wait_exit(handle, timeout)
    if timed_out:
        driver.kill_all(handle)
        await _wait_exit(handle, 10.0)
    exit_code = None
    for _ in range(50):  # the supervisor records the status as it exits
        exit_code = driver.status(handle).exit_code
        if exit_code is not None:
            break
        await asyncio.sleep(0.02)
    await asyncio.to_thread(driver.release, handle)
    return PhaseResult(exit_code, timed_out, _collect(handle), started, time.time())


async def _wait_exit(handle: Handle, timeout: float) -> bool:
    """True once the job's supervisor (or the job) has exited, False at the timeout; a pidfd, no polling."""
    pid = handle.supervisor_pid or handle.pid
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    loop = asyncio.get_running_loop()
    exited = asyncio.Event()
    loop.add_reader(fd, exited.set)
    try:
        await asyncio.wait_for(exited.wait(), timeout)
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def _collect(handle: Handle) -> list[str]:
    """The job's last lines; then its run dir goes (the record keeps what status shows)."""
    lines = tail(handle)
    run_dir = Path(handle.stdout_path).parent
    if run_dir.parent.name == "jobs":
        shutil.rmtree(run_dir, ignore_errors=True)
    return lines


def tail(handle: Handle, lines: int = TAIL_LINES) -> list[str]:
    """The last lines the job wrote, stdout then stderr (a migration's error is usually the last thing said)."""
    found: list[str] = []
    for path in (handle.stdout_path, handle.stderr_path):
        try:
            with open(path, "rb") as stream:
                stream.seek(max(0, os.fstat(stream.fileno()).st_size - 8192))
                found += [line.rstrip() for line in stream.read().decode("utf-8", "replace").splitlines() if line.strip()]
        except OSError:
            continue
    return [line[:300] for line in found[-lines:]]


async def resume_phase(driver: RuntimeDriver, handle: Handle, started_at: float, timeout: float) -> PhaseResult:
    """A phase started by a previous control plane: wait for what is left of its time, then read its exit."""
    remaining = max(0.0, started_at + timeout - time.time())
    timed_out = not await _wait_exit(handle, remaining) if driver.status(handle).alive else False
    if timed_out:
        driver.kill_all(handle)
        await _wait_exit(handle, 10.0)
    exit_code = driver.status(handle).exit_code
    await asyncio.to_thread(driver.release, handle)
    return PhaseResult(exit_code, timed_out, _collect(handle), started_at, time.time())
