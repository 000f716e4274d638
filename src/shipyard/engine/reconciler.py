"""The reconcile loop: read desired and actual state, plan with a pure function, apply, repeat.

This is the only module that changes instance records; everything it decides comes from plan.py
and health.py, and everything it does to processes and the proxy goes through the runtime driver
and the router.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from pathlib import Path
from typing import Any

from shipyard.data.databases import servers_for, stop_servers
from shipyard.engine import health
from shipyard.engine.backoff import crash_count, pass_retry_delay, restart_delay
from shipyard.engine.capacity import after_others, new_shortfalls
from shipyard.engine.desired import DesiredState, free_port_except
from shipyard.delivery import phases as progressive
from shipyard.engine import release_phase
from shipyard.engine.model import (DOWN_STATES, Capacity, Condition, DesiredService, Instance, Plan, Release,
                                   Rollout, State)
from shipyard.engine.pins import Pin, apply_pins, pin_conditions, undo_target
from shipyard.delivery.phases import decision_reason
from shipyard.delivery.runner import RolloutRunner
from shipyard.engine.plan import World, plan
from shipyard.engine.probes import http_probe
from shipyard.engine.processes import ExitWatcher, instance_spec, start_process
from shipyard.engine.router import Router
from shipyard.engine.routing import data_plane
from shipyard.parallel.runs import ParallelRuns
from shipyard.engine.supervisor import one_line
from shipyard.errors import ShipyardError, StateError
from shipyard.proxy.model import Endpoint, cluster_name
from shipyard.proxy.ports import port_in_use
from shipyard.runtime.base import Handle, RuntimeDriver
from shipyard.state.ledger import Ledger
from shipyard.state.store import Store

log = logging.getLogger("shipyard.engine")
RESYNC = 5.0  # seconds between passes when nothing wakes the loop


class Reconciler:
    """Keeps one environment in its desired state."""

    def __init__(self, store: Store, driver: RuntimeDriver, router: Router, state_dir: Path,
                 capacity: Capacity) -> None:
        self.store, self.driver, self.router = store, driver, router
        self.state_dir, self.capacity = state_dir, capacity
        self.desired: DesiredState | None = None      # what runs: the declared state with the pins applied
        self.declared: DesiredState | None = None     # what the spec asks for
        self.pins: dict[str, Pin] = {name: Pin(**data) for name, data in (store.get("pins") or {}).items()}
        self._pin_conditions: list[Condition] = []
        self.instances: dict[str, Instance] = {i.id: i for i in store.instances()}
        self.rollouts: dict[str, Rollout] = store.current_rollouts()
        self.conditions: list[Condition] = []
        self.source_conditions: list[Condition] = []  # set by whoever feeds desired state (e.g. ValidationFailed)
        self.suspended: bool = bool(store.get("suspended", False))
        self.passes = 0
        self.last_pass_at = time.monotonic()   # when a pass last completed (or the reconciler was made)
        self.failure: str | None = None        # the error of the last pass, while passes fail
        self._failed_passes = 0
        self._publish_error: str | None = None  # the data plane refused the newest picture
        # Records changed in memory that the store could not take (locked, full): written by the next pass.
        self._unsaved: set[str] = set()
        self._unsaved_rollouts: dict[str, Rollout] = {}
        self._store_error: Exception | None = None  # the store's last refusal; no writes are tried until the next pass
        self.reported: dict[str, list[Condition]] = {}  # by reporter: the supervisor's tasks, the source's fetches
        self._wake = asyncio.Event()
        self._tallies: dict[str, health.ProbeTally] = {}
        self._monitors: dict[str, asyncio.Task[None]] = {}
        self._stops: dict[str, asyncio.Task[None]] = {}
        self._exits = ExitWatcher(self._exited)
        self._replacing: dict[str, str] = {}  # instance id → why we are killing it
        self._routed: object = None
        self._releases: dict[str, asyncio.Task[None]] = {}  # sweeps of dead processes, awaited before a restart
        self._sync_lock = asyncio.Lock()
        self._pass_lock = asyncio.Lock()   # one pass at a time; `stop_all` waits for the one under way
        self._halted = False               # after `stop_all`: no pass starts anything any more
        self._lingering: set[str] = set()  # stopping instances still in their cluster, without weight
        self._closing = False
        self.previews: dict[str, int] = dict(store.get("previews") or {})  # service → preview port
        self.runner = RolloutRunner(self)
        self.ledger: Ledger | None = None  # the machine-wide capacity ledger, when other environments may share it
        self.held: tuple[float, int] = (0.0, 0)  # cpu, memory this environment held after the last pass
        self._phases: dict[str, asyncio.Task[None]] = {}  # release id → its release phase, under way
        self.parallel = ParallelRuns(self)  # comparators of canaries with a parallel run

    # ---- lifecycle ---------------------------------------------------------------------------------
    def adopt(self) -> None:
        """Take over the instances a previous control plane left running; note the ones that died."""
        for instance in list(self.instances.values()):
            if instance.handle is None:
                if instance.state not in DOWN_STATES:
                    self._record_down(instance, State.FAILED, None, False, "never started (control plane stopped)")
                continue
            if instance.state is State.STOPPING:
                self._stops[instance.id] = asyncio.create_task(self._finish_stop(instance.id, "resuming a stop"))
                continue
            status = self.driver.status(Handle.from_dict(instance.handle))
            if status.alive:
                self._exits.watch(instance.id, Handle.from_dict(instance.handle))
                self._monitor(instance.id)
                self.event("Normal", instance.id, "Adopted", f"re-adopted pid {instance.pid} ({instance.state.value})")
            elif instance.state not in DOWN_STATES:
                self._exited(instance.id)

    def set_desired(self, desired: DesiredState) -> None:
        self.declared = desired
        self._apply_pins()
        self.wake()

    def _apply_pins(self) -> None:
        assert self.declared is not None
        releases = {p.release: r for p in self.pins.values() if (r := self.store.release(p.release)) is not None}
        services, kept, dropped = apply_pins(self.declared.services, self.pins, releases)
        for pin in dropped:
            self.event("Normal", pin.service, "UndoEnded", f"the spec no longer asks for {pin.declared}: "
                                                           f"following the spec again instead of {pin.release}")
        if kept != self.pins:
            self.pins = kept
            self.store.put("pins", {name: pin.to_dict() for name, pin in kept.items()})
        self._pin_conditions = pin_conditions(kept, self.declared.services, releases)
        self.desired = dataclasses.replace(self.declared, services=services)

    def undo(self, service: str, to: str | None) -> Release:
        """`rollout undo`: run an older release of `service` until the spec changes; returns that release."""
        if self.declared is None or self.desired is None or service not in self.declared.services:
            raise StateError(f"no service {service!r} in the applied revision")
        running = self.desired.services[service].release.id
        history = self.store.rollout_history(service)
        target = undo_target(service, running, history, [r for _, r in self.store.releases(service)], to)
        declared = self.declared.services[service].release.id
        now = time.time()
        pins = {k: v for k, v in self.pins.items() if k != service}
        if target.id != declared:
            pins[service] = Pin(service, target.id, declared, f"`rollout undo` at "
                                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(now))}", now)
        self.pins = pins
        self.store.put("pins", {name: pin.to_dict() for name, pin in pins.items()})
        current = self.rollouts.get(service)
        if current is not None and current.status == "progressing":
            self._save_rollout(dataclasses.replace(current, status="superseded", reason="Superseded", updated_at=now,
                                                   message=f"superseded by `rollout undo` to {target.id}"))
        self._save_rollout(Rollout(service=service, target=target.id, started_at=now, strategy="rolling",
                                   previous=running, updated_at=now, revision=self.declared.revision,
                                   reason="Undo", message=f"undo: rolling back from {running} to release "
                                                          f"{target.id} (version {target.version})"))
        self._apply_pins()
        self.wake()
        return target

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Reconcile until cancelled. No exception ends the loop: a failed pass is logged with its
        traceback, becomes an event and a `ReconcileFailed` condition, and is retried with back-off."""
        while True:
            try:
                await self.reconcile_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any bug or fault in one pass
                self._pass_failed(exc)
            else:
                self._pass_succeeded()
            if self._failed_passes:
                # Back-off that nothing shortens: wake-ups (probes, exits) would otherwise spin a failing pass.
                await asyncio.sleep(pass_retry_delay(self._failed_passes))
            else:
                # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation that arrives
                # as the wake-up does, and the loop would outlive `down`.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._next_timer()):
                        await self._wake.wait()
            self._wake.clear()

    def _pass_failed(self, exc: Exception) -> None:
        self._failed_passes += 1
        message = one_line(exc)
        log.error("reconcile pass failed (%d in a row)", self._failed_passes, exc_info=exc)
        if message != self.failure:
            self.event("Warning", "environment", "ReconcileFailed", message)
        self.failure = message

    def _pass_succeeded(self) -> None:
        if self.failure is not None:
            self.event("Normal", "environment", "ReconcileRecovered",
                       f"a pass completed again after {self._failed_passes} failed: {self.failure}")
        self.failure, self._failed_passes = None, 0

    def loop_conditions(self) -> list[Condition]:
        """What is wrong with the loop itself: failing passes, a data plane refusing what it is told."""
        conditions = []
        if self.failure is not None:
            conditions.append(Condition("Reconciled", "False", "ReconcileFailed",
                                        f"{self.failure} ({self._failed_passes} passes failed in a row; "
                                        f"retrying in {pass_retry_delay(self._failed_passes):g}s)"))
        if self._publish_error is not None and not self.router.describe().get("problem"):
            conditions.append(Condition("DataPlaneInSync", "False", "PublishFailed", self._publish_error))
        return conditions

    def desired_service(self, name: str) -> DesiredService | None:
        """The rollout runner's view of a service (see delivery.runner.RolloutHost)."""
        return self.desired.services.get(name) if self.desired is not None else None

    def ready_ports(self, release: str) -> list[int]:
        return sorted(i.port for i in self.instances.values() if i.release == release and i.state is State.READY)

    def report_conditions(self, reporter: str, conditions: list[Condition]) -> None:
        """Conditions someone beside the loop knows (supervised tasks, git fetches), shown by `status`."""
        self.reported[reporter] = list(conditions)

    def timer(self) -> float:
        """The loop's longest sleep between passes (`/healthz` allows three of them)."""
        return RESYNC

    async def reconcile_once(self) -> Plan:
        async with self._pass_lock:
            if self._halted:
                return Plan()
            return await self._reconcile_locked()

    async def _reconcile_locked(self) -> Plan:
        # The data plane's own health is the watchdog's job (daemon.py): a dead Envoy must never
        # stop instances from being healed.
        try:
            self._flush_unsaved()
            self._store_error = None
        except Exception as exc:  # noqa: BLE001 - the pass goes on from memory, then fails with this error
            self._store_error = exc
        if self.desired is None:
            self.last_pass_at = time.monotonic()
            return Plan()
        # Only a progressive rollout that is under way or rolled back may still start its previous release.
        previous = {r.previous for r in self.rollouts.values()
                    if r.progressive and r.previous and r.status in ("progressing", "failed")}
        releases = {rid: release for rid in previous if (release := self.store.release(rid)) is not None}
        self._release_phases()
        await self._supervise_database()
        world = World(self.desired.services, tuple(self.instances.values()), dict(self.rollouts), self.capacity,
                      time.time(), self.desired.revision, self.suspended, releases)
        result = self._plan(world)
        self.conditions = [*result.conditions, *self._pin_conditions]
        await self._apply(result)
        self.passes += 1
        self._assign_previews()
        await self.parallel.tick()
        await self._sync_routes()
        self.runner.tick(time.time())
        if self._store_error is not None:
            raise self._store_error   # the pass acted, but its records could not be written: say so
        self.last_pass_at = time.monotonic()
        return result

    def _plan(self, world: World) -> Plan:
        """Plan within what the other environments on this machine leave, record what this one holds,
        and report each new capacity shortfall once (an event), not every pass."""
        if self.ledger is None:
            result = plan(world)
        else:
            try:
                with self.ledger.transaction() as others:
                    result = plan(dataclasses.replace(world, capacity=after_others(world.capacity, others)))
                    self.ledger.hold(*result.held)
            except StateError as exc:
                log.warning("planning without the capacity ledger: %s", exc)
                result = plan(world)
        self.held = result.held
        for shortfall in new_shortfalls(self.conditions, result.conditions):
            self.event("Warning", shortfall.object or "environment", shortfall.reason, shortfall.message)
        return result

    async def close(self) -> None:
        """Stop watching (instances keep running: the data plane outlives the control plane)."""
        self._closing = True
        self.runner.close()
        await self.parallel.close()
        for task in [*self._monitors.values(), *self._stops.values()]:
            task.cancel()
        self._exits.close()
        if self.ledger is not None and not self.instances:
            try:
                self.ledger.forget()  # nothing runs any more (`down`): hold nothing
            except StateError as exc:
                log.warning("%s", exc)

    async def stop_all(self) -> None:
        """`shipyard down`: drain and stop every instance, then forget them."""
        # Desired becomes "no services" rather than nothing: routes are still published (each
        # instance leaves routing before it is signalled) and grace periods are still known.
        # No pass may start anything from now on, and one under way finishes first: an instance it is
        # starting gets its process recorded, and is then stopped below like every other.
        self._halted = True
        async with self._pass_lock:
            if self.desired is not None:
                self.desired = dataclasses.replace(self.desired, services={})
            ids = [i.id for i in self.instances.values() if i.state is not State.STOPPING]
            for instance_id in ids:
                if self.instances[instance_id].state in DOWN_STATES:
                    self._forget(instance_id)
                else:
                    self._begin_stop(instance_id, "environment shut down")
        await asyncio.gather(*self._stops.values(), return_exceptions=True)
        for task in self._phases.values():
            task.cancel()
        await asyncio.to_thread(stop_servers, self.state_dir)  # their data stays for the next `up`

    # ---- applying a plan ---------------------------------------------------------------------------
    async def _apply(self, result: Plan) -> None:
        for rollout in result.rollouts:
            self._save_rollout(rollout)
        for instance_id in result.forget:
            self._forget(instance_id)
        for instance_id, reason in result.stop:
            self._begin_stop(instance_id, reason)
        starts = [self._start_new(service, release) for service, release in result.start]
        starts += [self._start(self.instances[i], restart=True) for i in result.restart]
        if starts:
            await asyncio.gather(*starts)

    def _save_rollout(self, rollout: Rollout) -> None:
        previous = self.rollouts.get(rollout.service)
        self.rollouts[rollout.service] = rollout
        self._unsaved_rollouts[rollout.service] = rollout
        self._store_quietly()
        same = previous is not None and previous.started_at == rollout.started_at
        if same and previous is not None:
            seen = previous.decisions[-1]["at"] if previous.decisions else 0.0
            for record in rollout.decisions:
                if record["at"] > seen:
                    self.event("Warning" if record.get("verdict") == "fail" else "Normal", rollout.service,
                               decision_reason(record), str(record.get("reason", "")), record)
            if previous.phase != rollout.phase and rollout.status == "progressing":
                self.event("Normal", rollout.service, "RolloutPhase",
                           f"{previous.phase} → {rollout.phase} (new release {rollout.target} at {rollout.weight}%)")
        if previous is None or previous.status != rollout.status or previous.target != rollout.target or not same:
            kind = "Warning" if rollout.status == "failed" else "Normal"
            reason = rollout.reason or "RolloutStarted"
            if rollout.phase == progressive.ROLLED_BACK:
                reason = f"RolledBack{rollout.reason}"   # e.g. RolledBackAnalysisFailed, RolledBackAborted
            self.event(kind, rollout.service, reason, rollout.message)

    async def update_rollout(self, rollout: Rollout) -> None:
        """A gate or analysis outcome (or a command) moved a rollout: record it and act on it at once."""
        current = self.rollouts.get(rollout.service)
        if current is None or current.started_at != rollout.started_at:
            return
        self._save_rollout(rollout)
        await self._sync_routes_or_wake()

    def command(self, service: str, verb: str, full: bool = False) -> Rollout:
        """`rollout promote | approve | abort | retry` on the current rollout of `service`."""
        rollout = self.rollouts.get(service)
        if self.desired is None or service not in self.desired.services or rollout is None:
            raise StateError(f"no rollout of {service!r} in this environment")
        desired = self.desired.services[service]
        config = desired.progressive
        now = time.time()
        if verb == "retry":
            moved = progressive.retry(rollout, desired.release.id, now)
        elif verb == "abort":
            moved = progressive.abort(rollout, now)
        elif verb == "approve":
            moved = progressive.approve(rollout, now)
        elif config is None:
            raise StateError(f"{service}: `rollout {verb}` applies to canary and blue-green rollouts")
        else:
            moved = progressive.promote(rollout, config, desired.strategy, full, now)
        self._save_rollout(moved)
        self.wake()
        return moved

    async def _supervise_database(self) -> None:
        """Start a database server of the environment again if it died (PostgreSQL recovers from its WAL,
        Redis from its append-only file)."""
        assert self.desired is not None
        variables = [variable for s in self.desired.services.values() for variable, _ in s.release.databases]
        for label, server in servers_for(self.state_dir, variables):
            if not server.exists() or server.alive():
                continue
            self.event("Warning", "environment", "DatabaseDown", f"{label} is not running: starting it again")
            try:
                await asyncio.to_thread(server.ensure_running)
            except ShipyardError as exc:
                self.event("Warning", "environment", "DatabaseFailed", str(exc))
                continue
            self.event("Normal", "environment", "DatabaseStarted", f"{label} is back on port {server.port}")

    def _release_phases(self) -> None:
        """Hold each rollout whose target's release phase has not succeeded; start the phases that must run."""
        assert self.desired is not None
        now = time.time()
        for name, desired in sorted(self.desired.services.items()):
            if not desired.release.release_command:
                continue
            record = self.store.get(release_phase.record_key(desired.release.id))
            instances = [i for i in self.instances.values() if i.service == name]
            running = desired.release.id in self._phases
            decision = release_phase.decide(desired, self.rollouts.get(name), record,
                                            self.store.get(release_phase.last_key(name)), instances, running, now)
            if decision.rollout is not None:
                self._save_rollout(decision.rollout)
            if decision.run or (record or {}).get("status") == "running" and not running:
                self._phases[desired.release.id] = asyncio.create_task(
                    self._release_phase(desired.release, record if not decision.run else None))

    async def _release_phase(self, release: Release, resumed: dict[str, Any] | None) -> None:
        """Run (or, after a restart, wait for) a release phase and record its outcome; then plan again."""
        key = release_phase.record_key(release.id)
        try:
            if resumed is not None and resumed.get("handle"):
                result = await release_phase.resume_phase(self.driver, Handle.from_dict(resumed["handle"]),
                                                          resumed["started_at"], release.release_timeout)
            else:
                assert self.desired is not None
                job = f"{release.service}-release-{release.id.rsplit('-', 1)[-1][:6]}-{secrets.token_hex(2)}"
                pseudo = Instance(id=job, service=release.service, release=release.id, port=0,
                                  state=State.STARTING, created_at=time.time())
                spec = release_phase.phase_spec(instance_spec(self.state_dir, self.desired, release, pseudo),
                                                release.release_command, self.state_dir / "jobs" / job, job)
                self.event("Normal", release.service, "ReleasePhaseStarted", f"release phase for {release.id}")
                handle = await asyncio.to_thread(start_process, self.driver, spec)
                self.store.put(key, {"release": release.id, "status": "running", "started_at": time.time(),
                                     "handle": handle.to_dict()})
                result = await release_phase.wait_phase(self.driver, handle, release.release_timeout)
            record = result.to_record(release.id, release.release_timeout)
        except (ShipyardError, OSError) as exc:
            record = {"release": release.id, "status": "failed", "exit_code": None, "timed_out": False,
                      "output": [f"cannot start: {exc}"], "started_at": time.time(), "finished_at": time.time()}
        self.store.put(key, record)
        if record["status"] == "succeeded":
            self.store.put(release_phase.last_key(release.service), release.id)
            self.event("Normal", release.service, "ReleasePhaseSucceeded", f"release phase for {release.id} done")
        else:
            self.event("Warning", release.service, "ReleasePhaseFailed",
                       f"release phase for {release.id}: exit code {record['exit_code']}"
                       + (" (timed out)" if record.get("timed_out") else ""))
        self._phases.pop(release.id, None)
        self.wake()

    def _assign_previews(self) -> None:
        """A stable preview port per service that has had a progressive rollout."""
        wanted = {s for s, r in self.rollouts.items() if r.progressive and r.status == "progressing"}
        missing = wanted - set(self.previews)
        if not missing:
            return
        for service in sorted(missing):
            self.previews[service] = free_port_except(self._ports() | set(self.previews.values()))
        self.store.put("previews", self.previews)

    async def _start_new(self, service: str, release_id: str) -> None:
        assert self.desired is not None
        instance = Instance(id=f"{service}-{release_id.rsplit('-', 1)[-1][:6]}-{secrets.token_hex(2)}",
                            service=service, release=release_id, port=free_port_except(self._ports()),
                            state=State.STARTING, created_at=time.time())
        self._save(instance)
        await self._start(instance, restart=False)

    async def _start(self, instance: Instance, restart: bool) -> None:
        assert self.desired is not None
        release = self.store.release(instance.release)
        if release is None:
            self._forget(instance.id)
            return
        sweep = self._releases.pop(instance.id, None)
        if sweep is not None:
            await sweep  # the restarted process reuses the instance's cgroups: the old sweep must be done
        if restart and port_in_use(instance.port):
            # Taken by another process while this one was down (free ports race on a busy machine): on the
            # same port it would crash-loop for ever. Routing follows the instance's port.
            moved = free_port_except(self._ports())
            self.event("Warning", instance.id, "PortTaken",
                       f"port {instance.port} is held by another process: restarting on port {moved}")
            instance = instance.evolve(port=moved)
        spec = instance_spec(self.state_dir, self.desired, release, instance)
        now = time.time()
        instance = instance.evolve(state=State.STARTING, started_at=now, ready_since=None, pid=None,
                                   restarts=instance.restarts + (1 if restart else 0), next_attempt_at=None,
                                   message="starting")
        self._save(instance)
        starting = asyncio.ensure_future(asyncio.to_thread(start_process, self.driver, spec))
        try:
            # Shielded: a process once spawned must be recorded, even if the pass is cancelled meanwhile
            # (shutdown); else it would run on with no record, and its restart would make a second one.
            handle = await asyncio.shield(starting)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                spawned = await starting
                self._save(instance.evolve(pid=spawned.pid, handle={
                    **spawned.to_dict(), "limits": {"cpu": release.cpu, "memory": release.memory}}))
            raise
        except (ShipyardError, OSError) as exc:
            self._record_down(instance, State.FAILED, None, False, f"cannot start: {exc}")
            return
        except Exception as exc:
            # A bug or fault in the driver: the record must not stay `starting` with no process (nothing
            # would ever restart it); it is down like any failed start, and the pass reports the error.
            self._record_down(instance, State.FAILED, None, False, f"cannot start: {one_line(exc)}")
            raise
        handle_data = {**handle.to_dict(), "limits": {"cpu": release.cpu, "memory": release.memory}}
        instance = instance.evolve(pid=handle.pid, handle=handle_data)
        self._save(instance)
        self._tallies[instance.id] = health.ProbeTally()
        self._exits.watch(instance.id, handle)
        self._monitor(instance.id)
        verb = "Restarted" if restart else "Started"
        self.event("Normal", instance.id, verb, f"pid {handle.pid} on port {instance.port} (release {release.id})")

    def _begin_stop(self, instance_id: str, reason: str) -> None:
        instance = self.instances.get(instance_id)
        if instance is None or instance_id in self._stops:
            return
        if instance.state is State.READY:
            self._lingering.add(instance_id)  # before any sync: its weight must go before its endpoint
        self._save(instance.evolve(state=State.STOPPING, stopping_since=time.time(), message=reason))
        self.event("Normal", instance_id, "Stopping", reason)
        self._stops[instance_id] = asyncio.create_task(self._finish_stop(instance_id, reason))

    async def _finish_stop(self, instance_id: str, reason: str) -> None:
        """Out of routing, confirmed drained, then SIGTERM; the grace period bounds the whole wait."""
        instance = self.instances[instance_id]
        grace = self._grace(instance)
        deadline = time.monotonic() + grace
        try:
            self._cancel_monitor(instance_id)
            try:
                await self._sync_routes()   # first its weight goes …
                self._lingering.discard(instance_id)
                await self._sync_routes()   # … then its endpoint
                await self.router.drain(cluster_name(instance.release), Endpoint("127.0.0.1", instance.port), grace)
            except Exception as exc:  # noqa: BLE001 - whatever fails in routing, the process must still stop
                log.exception("%s: leaving routing failed", instance_id)
                self._lingering.discard(instance_id)
                self.event("Warning", instance_id, "DrainFailed", f"{one_line(exc)}; stopping it anyway")
            if instance.handle is not None:
                self._exits.unwatch(instance_id)
                handle = Handle.from_dict(instance.handle)
                remaining = max(0.5, deadline - time.monotonic())
                status = await self.driver.stop(handle, remaining)
                await asyncio.to_thread(self.driver.release, handle)
                self.event("Normal", instance_id, "Stopped", f"exit code {status.exit_code}")
        finally:
            self._stops.pop(instance_id, None)
            if not self._closing:
                self._forget(instance_id)
                self.wake()

    def _grace(self, instance: Instance) -> float:
        for state in (self.desired, self.declared):
            if state is not None and instance.service in state.services:
                return state.services[instance.service].grace_period
        return 10.0

    def _forget(self, instance_id: str) -> None:
        self._cancel_monitor(instance_id)
        self._exits.unwatch(instance_id)
        self._tallies.pop(instance_id, None)
        self.instances.pop(instance_id, None)
        self._unsaved.add(instance_id)
        self._store_quietly()

    # ---- observing processes -----------------------------------------------------------------------
    def _exited(self, instance_id: str) -> None:
        instance = self.instances.get(instance_id)
        if instance is None or instance.state is State.STOPPING or instance.handle is None:
            return
        handle = Handle.from_dict(instance.handle)
        status = self.driver.status(handle)
        if status.alive:
            self._exits.watch(instance_id, handle)  # a spurious wake-up: keep watching
            return
        self._releases[instance_id] = asyncio.get_running_loop().create_task(self._release(handle))
        why = self._replacing.pop(instance_id, None)
        state = State.FAILED if why else State.EXITED
        detail = why or ("OOM-killed" if status.oom_killed else f"exited with code {status.exit_code}")
        self._record_down(instance, state, status.exit_code, status.oom_killed, detail)

    async def _release(self, handle: Handle) -> None:
        """Sweep what is left of a dead instance (its cgroups, stray children) off the event loop."""
        try:
            await asyncio.to_thread(self.driver.release, handle)
        except ShipyardError as exc:
            self.event("Warning", handle.instance_id, "CleanupFailed", str(exc))

    def _record_down(self, instance: Instance, state: State, exit_code: int | None, oom: bool, why: str) -> None:
        now = time.time()
        crashes = crash_count(instance.crashes, instance.ready_since, now)
        delay = restart_delay(crashes)
        self._cancel_monitor(instance.id)
        self._save(instance.evolve(state=state, exit_code=exit_code, oom_killed=oom, pid=None, ready_since=None,
                                   crashes=crashes, next_attempt_at=now + delay, message=why))
        reason = "OOMKilled" if oom else ("Failed" if state is State.FAILED else "Exited")
        self.event("Warning", instance.id, reason, f"{why}; restart in {delay:g}s (crash {crashes} in a row)")
        self.wake()

    def _monitor(self, instance_id: str) -> None:
        self._cancel_monitor(instance_id)
        self._monitors[instance_id] = asyncio.create_task(self._probe_loop(instance_id))

    def _cancel_monitor(self, instance_id: str) -> None:
        task = self._monitors.pop(instance_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _probe_loop(self, instance_id: str) -> None:
        tally = self._tallies.setdefault(instance_id, health.ProbeTally())
        instance = self.instances[instance_id]
        release = self.store.release(instance.release)
        if release is None:
            return
        tally.ever_ready = tally.ever_ready or instance.ready_since is not None or instance.state is State.UNREADY
        next_liveness = time.monotonic() + release.liveness.interval
        while True:
            await asyncio.sleep(health.readiness_period(release, tally.ever_ready))
            instance = self.instances.get(instance_id)
            if instance is None or not instance.live:
                return
            overdue = health.startup_overdue(instance.started_at or 0.0, time.time(), release, tally.ever_ready)
            if overdue:
                await self._replace(instance, overdue)
                return
            passed, detail = await http_probe(instance.port, release.readiness.path, release.readiness.timeout)
            await self._readiness(instance_id, health.after_readiness(
                tally, passed, release, instance.state is State.READY), detail)
            if time.monotonic() >= next_liveness:
                next_liveness = time.monotonic() + release.liveness.interval
                if release.liveness.path != release.readiness.path:
                    passed, detail = await http_probe(instance.port, release.liveness.path, release.liveness.timeout)
                verdict = health.after_liveness(tally, passed, release)
                if verdict.replace:
                    await self._replace(self.instances[instance_id], f"{verdict.replace} ({detail})")
                    return

    async def _readiness(self, instance_id: str, verdict: health.Verdict, detail: str) -> None:
        instance = self.instances.get(instance_id)
        if verdict.ready is None or instance is None or not instance.live:
            return
        if verdict.ready:
            self._save(instance.evolve(state=State.READY, ready_since=time.time(), message="ready"))
            self.event("Normal", instance_id, "Ready", detail)
        else:
            self._save(instance.evolve(state=State.UNREADY, ready_since=None, message=detail))
            self.event("Warning", instance_id, "Unready", detail)
        await self._sync_routes_or_wake()

    async def _replace(self, instance: Instance, why: str) -> None:
        """Kill an instance that failed its probes; its exit is then recorded as a failure and restarted."""
        self._replacing[instance.id] = why
        self.event("Warning", instance.id, "Unhealthy", why)
        if instance.handle is not None:
            await asyncio.to_thread(self.driver.kill_all, Handle.from_dict(instance.handle))

    # ---- helpers -----------------------------------------------------------------------------------
    async def _sync_routes_or_wake(self) -> None:
        """Publish now outside a pass (a probe verdict, a rollout decision); if that fails, the pass
        woken here tries again and reports why."""
        try:
            await self._sync_routes()
        except Exception:  # noqa: BLE001 - reported by the pass, which meets the same error
            log.debug("publishing outside a pass failed; the next pass retries", exc_info=True)
        self.wake()

    async def _sync_routes(self) -> None:
        # Serialised, and the state is read once the lock is held: an older picture of the
        # instances must never be published after a newer one.
        async with self._sync_lock:
            await self._sync_routes_locked()

    async def _sync_routes_locked(self) -> None:
        if self.desired is None:
            return
        progressing = tuple(sorted((r.service, r.target, r.phase, r.weight, r.status)
                                   for r in self.rollouts.values() if r.progressive))
        fingerprint = (self.desired.revision, tuple(sorted(
            (i.id, i.state.value, i.port) for i in self.instances.values() if i.state is State.READY)),
            tuple(sorted({i.release for i in self.instances.values()})), tuple(sorted(self._lingering)),
            progressing, tuple(sorted(self.previews.items())), self.parallel.fingerprint())
        if fingerprint == self._routed:
            return
        try:
            await self.router.sync(self.parallel.data_plane(
                data_plane(self.desired, list(self.instances.values()), self.router.ingress_port,
                           frozenset(self._lingering), dict(self.rollouts), dict(self.previews))))
        except ShipyardError as exc:
            # Envoy keeps serving what it accepted last; the next pass tries again.
            if str(exc) != self._publish_error:
                self.event("Warning", "data-plane", "PublishFailed", str(exc))
            self._publish_error = str(exc)
            return
        self._publish_error = None
        self._routed = fingerprint

    def _save(self, instance: Instance) -> None:
        self.instances[instance.id] = instance
        self._unsaved.add(instance.id)
        self._store_quietly()

    def _store_quietly(self) -> None:
        """Write what changed; if the store refuses (locked, full disk), memory stays the truth and the
        next pass writes it or fails with the store's error (a `ReconcileFailed` condition)."""
        if self._store_error is not None:
            return   # the store refused the last write: each try could block for its busy timeout
        try:
            self._flush_unsaved()
        except Exception as exc:  # noqa: BLE001 - reported by the next pass, which tries again
            self._store_error = exc
            log.warning("the state database refused a write; the next pass retries", exc_info=True)

    def _flush_unsaved(self) -> None:
        for instance_id in sorted(self._unsaved):
            instance = self.instances.get(instance_id)
            if instance is None:
                self.store.delete_instance(instance_id)
            else:
                self.store.save_instance(instance)
            self._unsaved.discard(instance_id)
        for service, rollout in list(self._unsaved_rollouts.items()):
            self.store.save_rollout(rollout)
            del self._unsaved_rollouts[service]

    def _ports(self) -> set[int]:
        taken = {i.port for i in self.instances.values()}
        if self.desired is not None:
            taken |= {s.endpoint_port for s in self.desired.services.values() if s.endpoint_port}
        return taken

    def _next_timer(self) -> float:
        now = time.time()
        due = [i.next_attempt_at for i in self.instances.values() if i.state in DOWN_STATES and i.next_attempt_at]
        if self.desired is not None:
            for instance in self.instances.values():
                desired = self.desired.services.get(instance.service)
                if desired and instance.ready_since and desired.rolling.min_ready:
                    due.append(instance.ready_since + desired.rolling.min_ready)
            for rollout in self.rollouts.values():
                desired = self.desired.services.get(rollout.service)
                if rollout.status != "progressing" or desired is None or desired.progressive is None:
                    continue
                if rollout.next_check_at:
                    due.append(rollout.next_check_at)
                if rollout.switched_at:
                    due.append(rollout.switched_at + desired.progressive.scale_down_delay)
        pending = [t - now for t in due if t > now - 0.01]
        return max(0.01, min([RESYNC, *pending]))

    def event(self, kind: str, obj: str, reason: str, message: str, data: dict[str, Any] | None = None) -> None:
        log.info("%s %s: %s", obj, reason, message)
        if self._store_error is not None:
            return   # logged only: the store refuses writes (the pass reports why)
        try:
            self.store.add_event(kind, obj, reason, message, data)
        except Exception:  # noqa: BLE001 - a locked or full store must not turn reporting into a second failure
            log.exception("cannot record event %s %s: %s", obj, reason, message)

