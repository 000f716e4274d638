"""The composition root: one control plane for one environment — store, runtime, router, reconciler, API."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from shipyard.engine.desired import DesiredState, assign_endpoints, build_desired
from shipyard.engine.gc import collect_periodically
from shipyard.engine.model import Capacity
from shipyard.engine.reconciler import Reconciler
from shipyard.engine.router import NoRouter, Router
from shipyard.engine.supervisor import Supervisor, health
from shipyard.errors import StateError
from shipyard.flags.service import FlagService
from shipyard.gitops.decide import services_after, with_overrides
from shipyard.gitops.follower import Follower
from shipyard.promotion.service import PromotionService
from shipyard.gitops.settings import SourceSettings, load_settings, save_settings
from shipyard.source.git import Mirror
from shipyard.spec.render import DesiredEnvironment, render
from shipyard.state.control import (PRIVATE_UMASK, SOCKET_FILE, ensure_token, read_control, secure_state_dir,
                                    write_control)
from shipyard.state.ledger import Ledger
from shipyard.state.store import Store

log = logging.getLogger("shipyard.daemon")
OVERRIDES_KEY = "overrides"  # service → replicas set by `shipyard scale`


class ControlPlane:
    """Everything one `shipyard up` runs; the API calls into it."""

    def __init__(self, state_dir: Path, project_dir: Path | None, environment: str, capacity: Capacity,
                 router: Router | None = None, ingress_port: int = 8080) -> None:
        self.state_dir, self.environment = state_dir, environment
        self.store = Store(state_dir / "state.db")
        self.project_dir = project_dir or Path(self.store.get("project_dir", "."))
        self.store.put("project_dir", str(self.project_dir.resolve()))
        self.store.put("environment", environment)
        from shipyard.runtime.process import ProcessDriver

        self.reconciler = Reconciler(self.store, ProcessDriver(), router or NoRouter(), state_dir, capacity)
        self.reconciler.ledger = machine_ledger(state_dir, environment)
        self.ingress_port = ingress_port
        self.api = ""
        self.shutdown = asyncio.Event()
        self.base: DesiredState | None = None  # what the source says, before `shipyard scale` overrides
        self.overrides: dict[str, int] = {k: int(v) for k, v in (self.store.get(OVERRIDES_KEY) or {}).items()}
        self.follower: Follower | None = None
        self._following: asyncio.Task[None] | None = None
        self.flags = FlagService(self.store, self.reconciler.event)
        self.supervisor = Supervisor(
            lambda kind, reason, message: self.reconciler.event(kind, "control-plane", reason, message),
            lambda conditions: self.reconciler.report_conditions("tasks", conditions))
        self.promotion = PromotionService(self)  # verification here, automation and promotion commits

    def apply(self, project_dir: Path | None = None) -> DesiredState:
        """Render the project directory and make it the desired state; raises SpecError and changes nothing if invalid."""
        directory, desired = self._build_local(project_dir)
        self._install_local(directory, desired)
        return desired

    async def apply_async(self, project_dir: Path | None = None) -> DesiredState:
        """`POST /apply`: render and snapshot in a thread (slow), install on the event loop — the only
        place the reconciler's state changes (as the follower does)."""
        directory, desired = await asyncio.to_thread(self._build_local, project_dir)
        self._install_local(directory, desired)
        return desired

    def _build_local(self, project_dir: Path | None) -> tuple[Path, DesiredState]:
        directory = (project_dir or self.project_dir).resolve()
        rendered = render(directory, self.environment)
        revision = "local-" + hashlib.sha256(json.dumps(rendered.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
        return directory, self._desired(rendered, revision)

    def _install_local(self, directory: Path, desired: DesiredState) -> None:
        revision = desired.revision
        if directory != self.project_dir.resolve():
            self.project_dir = directory
            self.store.put("project_dir", str(directory))
        previous = self.store.get("revision")
        self.install(desired, str(directory), directory)
        if previous != revision:
            self.reconciler.event("Normal", "environment", "Applied", f"revision {revision} from {directory}")
            self.store.add_history(revision, "applied", {"commit": None, "trigger": "apply", "errors": [],
                                                         "source": str(directory), "services": services_after(desired)})
        return desired

    def build(self, directory: Path, revision: str) -> DesiredState:
        """Render DIRECTORY (a revision's snapshot) into a desired state named REVISION, without applying it.

        Raises SpecError when invalid. Records releases, endpoints and artifact snapshots, which a later
        revision may reuse; what runs changes only with `install`.
        """
        return self._desired(render(directory, self.environment), revision)

    def _desired(self, rendered: DesiredEnvironment, revision: str) -> DesiredState:
        endpoints = assign_endpoints(rendered, self.store, {self.ingress_port, self.flags.port})
        desired = build_desired(rendered, self.store, self.state_dir, revision, endpoints)
        return dataclasses.replace(desired, ofrep_url=self.flags.url)

    def install(self, desired: DesiredState, origin: str, directory: Path | None = None) -> None:
        """Make DESIRED (rendered from DIRECTORY) the desired state; `scale` overrides survive only while the
        environment is suspended."""
        if directory is not None:
            self.reconciler.runner.workdir = directory  # command gates run in the applied revision
            self.promotion.configure(directory)
        if self.overrides and not self.reconciler.suspended:
            self.overrides = {}
            self.store.put(OVERRIDES_KEY, {})
        self.base = desired
        self.store.put("project", desired.project)
        self.store.put("revision", desired.revision)
        self.reconciler.set_desired(with_overrides(desired, self.overrides))
        self.flags.publish(desired.flags)  # atomically with the services, restarting nothing
        log.info("desired state: revision %s from %s", desired.revision, origin)

    def scale(self, service: str, replicas: int) -> int:
        """Run REPLICAS instances of SERVICE until the source is applied again; returns what the source says."""
        if self.base is None or service not in self.base.services:
            known = ", ".join(sorted(self.base.services)) if self.base else "none"
            raise StateError(f"no service {service!r} in this environment (services: {known})")
        declared = self.base.services[service].replicas
        self.overrides[service] = replicas
        self.store.put(OVERRIDES_KEY, self.overrides)
        self.reconciler.set_desired(with_overrides(self.base, self.overrides))
        until = "kept while suspended" if self.reconciler.suspended else "until the source is applied again"
        self.reconciler.event("Normal", service, "Scaled", f"replicas {declared} → {replicas} by `shipyard scale` "
                              f"({until})")
        return declared

    def suspend(self, suspended: bool) -> None:
        """Hold (True) or release (False) the source: while suspended nothing is applied and overrides stay."""
        if self.reconciler.suspended == suspended:
            return
        self.store.put("suspended", suspended)
        self.reconciler.suspended = suspended
        if suspended:
            self.reconciler.event("Normal", "environment", "Suspended", "new revisions and drift corrections wait "
                                  "until `shipyard resume`")
            return
        self.reconciler.event("Normal", "environment", "Resumed", "the source is applied again")
        if self.follower is not None:
            self.follower.request("resume")

    def follow(self, settings: SourceSettings) -> Follower:
        """Feed the desired state from a git repository (mirrored under `<state>/git`)."""
        self.follower = Follower(self, settings, Mirror(self.state_dir / "git", settings.url))
        return self.follower

    def source_status(self) -> dict[str, Any] | None:
        return self.follower.status() if self.follower else None

    def start_following(self) -> None:
        if self.follower is not None:
            self.supervisor.start("follower", self.follower.run)

    async def stop_following(self) -> None:
        """No more fetches or applies (`down`, shutdown); one in progress is cancelled."""
        await self.supervisor.stop("follower")

    def health(self) -> tuple[bool, str]:
        """`/healthz`: (healthy, reason) — see engine/supervisor.health."""
        reconciler = self.reconciler
        return health(time.monotonic(), reconciler.last_pass_at, reconciler.timer(), self.supervisor.down(),
                      reconciler.failure)

    async def take_down(self) -> None:
        """`shipyard down`, the one sequence for the API and the CLI's offline `down`: stop following,
        let no pass start anything more, drain and stop every instance, stop the data plane."""
        await self.stop_following()
        await self.reconciler.stop_all()
        await self.supervisor.close()
        await self.reconciler.close()
        await self.reconciler.router.shutdown()
        self.store.put("revision", None)


def lock_state_dir(state_dir: Path) -> int:
    """Hold an exclusive lock for the life of the process; a second control plane fails at once."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(state_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = read_control(state_dir)
        who = f" (pid {owner['pid']}, {owner['api']})" if owner else ""
        os.close(fd)
        raise StateError(f"another control plane{who} already owns {state_dir}") from None
    return fd


def machine_capacity() -> Capacity:
    memory = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    return Capacity(cpu=float(os.cpu_count() or 1), memory=memory)


def machine_ledger(state_dir: Path, environment: str) -> Ledger:
    """This control plane's entry in the capacity ledger every environment on the machine shares."""
    from shipyard.runtime import procfs
    from shipyard.state.ledger import ledger_path

    return Ledger(ledger_path(), state_dir, environment, os.getpid(), procfs.start_time(os.getpid()),
                  procfs.is_running)


async def serve(plane: ControlPlane, listen: tuple[str, int] | None = None) -> None:
    """Run the API and the reconcile loop until `plane.shutdown` is set.

    The API always answers on `STATE/api.sock` (0600, for the CLI); a TCP listener opens only when
    LISTEN is given (`up --api-listen`), and there every request but /healthz and the signed webhook
    needs the state dir's bearer token.
    """
    import uvicorn

    from shipyard.api.app import build_app
    from shipyard.api.auth import TokenAuth
    from shipyard.api.listeners import tcp_listener, unix_listener

    sockets = [unix_listener(plane.state_dir / SOCKET_FILE)]
    plane.api = f"unix://{plane.state_dir / SOCKET_FILE}"
    if listen is not None:
        sockets.append(tcp_listener(*listen))
        host, port = sockets[-1].getsockname()[:2]
        plane.api = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    app = TokenAuth(build_app(plane), ensure_token(plane.state_dir))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    plane.reconciler.adopt()
    await plane.flags.start()
    plane.supervisor.start("reconcile-loop", plane.reconciler.run)
    plane.supervisor.start("watchdog", lambda: _watch_data_plane(plane))
    plane.supervisor.start("garbage-collector", lambda: collect_periodically(plane.reconciler))  # engine/gc.py
    plane.supervisor.start("promotion", plane.promotion.run)  # promotion/service.py
    api_task = asyncio.create_task(server.serve(sockets=sockets))
    plane.start_following()
    control = {"pid": os.getpid(), "api": plane.api, "socket": str(plane.state_dir / SOCKET_FILE),
               "started_at": time.time(), "environment": plane.environment}
    write_control(plane.state_dir, control)
    log.info("control plane for %s at %s (state %s)", plane.environment, plane.api, plane.state_dir)
    await plane.shutdown.wait()
    server.should_exit = True
    await plane.stop_following()
    await plane.supervisor.close()
    await asyncio.gather(api_task, return_exceptions=True)
    for listener in sockets:
        listener.close()
    await plane.flags.stop()
    await plane.reconciler.close()


async def _watch_data_plane(plane: ControlPlane) -> None:
    """Envoy must serve again within a second of dying: check it five times a second (a /proc read)."""
    while True:
        await asyncio.sleep(0.2)
        try:
            await plane.reconciler.router.check()
        except Exception as exc:  # noqa: BLE001 - keep watching; the failure is reported as an event
            plane.reconciler.event("Warning", "data-plane", "ProxyRestartFailed", str(exc))
            await asyncio.sleep(1.0)


def main(argv: list[str] | None = None) -> None:
    """`python -m shipyard.daemon`: what `shipyard up` runs, in the foreground or detached."""
    parser = argparse.ArgumentParser(prog="shipyard-daemon")
    parser.add_argument("--project", type=Path, help="a project directory (local mode)")
    parser.add_argument("--git", metavar="URL", help="follow this repository instead of a directory")
    parser.add_argument("--ref", default="main")
    parser.add_argument("--path", default="")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between fetches")
    parser.add_argument("--webhook-secret-file", type=Path)
    parser.add_argument("--env", required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--capacity-cpu", type=float)
    parser.add_argument("--capacity-memory", type=int)
    parser.add_argument("--ingress-port", type=int, default=8080)
    parser.add_argument("--no-proxy", action="store_true")
    from shipyard.api.listeners import parse_listen

    parser.add_argument("--api-listen", metavar="HOST:PORT", type=parse_listen,
                        help="also serve the API over TCP (bearer token required)")
    args = parser.parse_args(argv)
    os.umask(PRIVATE_UMASK)  # the store, logs, proxy config and snapshots are nobody else's business
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per admin call would drown the log
    from shipyard.errors import ShipyardError

    try:
        asyncio.run(_run(args))
    except ShipyardError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(1)


async def _run(args: argparse.Namespace) -> None:
    state_dir = args.state_dir.resolve()
    lock = lock_state_dir(state_dir)
    secure_state_dir(state_dir)
    machine = machine_capacity()
    capacity = Capacity(cpu=args.capacity_cpu or machine.cpu, memory=args.capacity_memory or machine.memory)
    router = None if args.no_proxy else _envoy_router(state_dir, args.ingress_port)
    plane = ControlPlane(state_dir, args.project, args.env, capacity, router, args.ingress_port)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, plane.shutdown.set)
    settings = _source_settings(args, plane.store, state_dir)
    if settings is None:
        plane.apply()
    else:
        await plane.follow(settings).start()
    try:
        await serve(plane, args.api_listen)
    finally:
        os.close(lock)


def _source_settings(args: argparse.Namespace, store: Store, state_dir: Path) -> SourceSettings | None:
    """The repository to follow: --git, else none with --project, else what this state dir followed last."""
    if args.git:
        settings = SourceSettings.create(args.git, args.ref, args.path, args.interval, args.webhook_secret_file)
        save_settings(store, settings)
        return settings
    if args.project is not None:
        save_settings(store, None)
        return None
    stored = load_settings(store)
    if stored is None:
        raise StateError(f"{state_dir} has never followed a repository: give a directory or --git URL")
    return stored


def _envoy_router(state_dir: Path, ingress_port: int) -> Router | None:
    try:
        from shipyard.proxy.envoy_router import EnvoyRouter
    except ImportError:
        return None
    return EnvoyRouter(state_dir / "proxy", ingress_port)  # type: ignore[no-any-return]


if __name__ == "__main__":
    main()
