"""Spawn a process fully detached from the caller: new session, reparented to init, already in its cgroups."""

from __future__ import annotations

import functools
import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shipyard.errors import RuntimeDriverError
from shipyard.runtime import logwriter

# The caller is a multithreaded asyncio process, so it must not fork itself. Two ways to detach:
#
# "setsid" (preferred, a few ms): util-linux `setsid --fork` forks and exits at once (the caller reaps
# it); its child starts a new session and runs a shell that prints its pid on the caller's pipe,
# points stdin/stdout/stderr/status at their files (which closes the pipe), joins the cgroups and
# execs the target. Errors after the redirection land in stderr_path and end the process.
#
# "python" (where there is no util-linux setsid, ~50 ms): a short-lived intermediate interpreter
# (already in a new session: Popen's start_new_session) joins the cgroups
# (inherited by its child, so the target is in them before it execs), forks the target, waits only
# until the target has exec'd (a close-on-exec pipe reports exec errors), prints its pid and exits.
# The caller reaps the intermediate; the orphaned target is reparented to init, which reaps it later.
_INTERMEDIATE = r"""
import fcntl, json, os, signal, sys

def child(cfg, report):
    # Python ignores SIGPIPE and SIGXFSZ at start-up and exec keeps ignored signals ignored
    for number in range(1, signal.NSIG):
        try:
            signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    targets = [(os.devnull, os.O_RDONLY, 0), (cfg["stdout"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 1),
               (cfg["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 2)]
    if cfg["status"]:
        targets.append((cfg["status"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, cfg["status_fd"]))
    for path, flags, target in targets:
        fd = os.open(path, flags, 0o644)
        if fd != target:
            os.dup2(fd, target)
            os.close(fd)
        else:
            os.set_inheritable(fd, True)
    os.chdir(cfg["cwd"])
    os.execve(cfg["argv"][0], cfg["argv"], cfg["env"])

def main():
    cfg = json.loads(sys.stdin.read())
    for path in cfg["join"]:
        with open(path, "w") as file:
            file.write(str(os.getpid()))
    read_end, write_end = os.pipe()
    # keep the report pipe above the fds the child sets up (0-3)
    report = fcntl.fcntl(write_end, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(write_end)
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            child(cfg, report)
        except BaseException as exc:
            os.write(report, f"{type(exc).__name__}: {exc}".encode())
        os._exit(127)
    os.close(report)
    error = os.read(read_end, 4096)
    if error:
        os.waitpid(pid, 0)
        sys.stderr.write(error.decode(errors="replace"))
        sys.exit(1)
    sys.stdout.write(str(pid))

main()
"""

SPAWN_TIMEOUT = 10.0


@dataclass(frozen=True)
class LogRotation:
    """Keep each of stdout/stderr under `max_bytes`, with `backups` older files (`X.log.1` …)."""

    max_bytes: int = logwriter.DEFAULT_MAX_BYTES
    backups: int = logwriter.DEFAULT_BACKUPS

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "LogRotation":
        """SHIPYARD_LOG_MAX_BYTES (per file) and SHIPYARD_LOG_FILES (per stream, the live one included)."""
        try:
            max_bytes = int(environ.get("SHIPYARD_LOG_MAX_BYTES", logwriter.DEFAULT_MAX_BYTES))
            files = int(environ.get("SHIPYARD_LOG_FILES", logwriter.DEFAULT_BACKUPS + 1))
        except ValueError as exc:
            raise RuntimeDriverError(f"SHIPYARD_LOG_MAX_BYTES and SHIPYARD_LOG_FILES must be integers ({exc})") from None
        if max_bytes < 1 or files < 1:
            raise RuntimeDriverError("SHIPYARD_LOG_MAX_BYTES and SHIPYARD_LOG_FILES must be at least 1")
        return cls(max_bytes, files - 1)


@dataclass(frozen=True)
class Detached:
    """The detached process, and its session id (its own pid, or that of the intermediate that made it)."""

    pid: int
    session: int


def spawn_detached(argv: Sequence[str], *, env: Mapping[str, str], cwd: str, stdout_path: str,
                   stderr_path: str, status_path: str | None = None, status_fd: int = 3,
                   join_cgroups: Sequence[str] = (), method: str | None = None,
                   rotate: LogRotation | None = None) -> Detached:
    """Start `argv[0]` (an absolute path) detached; stdin is /dev/null, stdout/stderr append to the files.

    `status_path`, when given, is opened (truncated) as fd `status_fd` (3-9) for the target.
    `join_cgroups` are cgroup.procs files the target is placed in before it execs.
    `method` is "setsid" or "python" (default: setsid when it can fork). Raises RuntimeDriverError when
    the launcher fails; with "python" also when the target cannot be executed, with "setsid" that
    ends the detached process instead, with the reason in stderr_path.
    `rotate`, when given, caps stdout/stderr by size: the target runs behind `runtime/logwriter.py`'s
    shim (which also joins the cgroups), and its detached writer process rotates the files.
    """
    if not 3 <= status_fd <= 9:
        raise ValueError(f"status_fd must be 3..9, not {status_fd}")
    name = str(argv[0])
    if rotate is not None:
        argv = [sys.executable, "-I", "-S", logwriter.__file__, str(rotate.max_bytes), str(rotate.backups),
                stdout_path, stderr_path, *join_cgroups, "--", *argv]
        join_cgroups = ()
    setsid = setsid_with_fork()
    if setsid and method in (None, "setsid"):
        script = _launch_script(stdout_path, stderr_path, status_path, status_fd, join_cgroups)
        command = [setsid, "--fork", "/bin/sh", "-c", script, "shipyard-launch", *argv]
        return _via_setsid(command, env, cwd, name)
    config = {
        "argv": list(argv), "env": dict(env), "cwd": cwd, "stdout": stdout_path, "stderr": stderr_path,
        "status": status_path, "status_fd": status_fd, "join": list(join_cgroups),
    }
    return _via_python(config, name)


def _via_setsid(command: list[str], env: Mapping[str, str], cwd: str, name: str) -> Detached:
    out, err, code, _ = _run(command, None, dict(env), name, cwd=cwd)
    if not out.strip().isdigit() or err.strip():   # anything on stderr: the redirections failed
        raise RuntimeDriverError(f"could not start {name}: {_last_line(err, code)}")
    return Detached(pid=int(out), session=int(out))   # setsid made it a session leader


def _via_python(config: Mapping[str, object], name: str) -> Detached:
    command = [sys.executable, "-I", "-S", "-c", _INTERMEDIATE]
    out, err, code, session = _run(command, json.dumps(config).encode(), {}, name, new_session=True)
    if code != 0 or not out.strip().isdigit():
        raise RuntimeDriverError(f"could not start {name}: {_last_line(err, code)}")
    return Detached(pid=int(out), session=session)   # the intermediate led the new session


def _last_line(err: bytes, code: int) -> str:
    lines = err.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"exit {code}"


def _launch_script(stdout_path: str, stderr_path: str, status_path: str | None, status_fd: int,
                   join_cgroups: Sequence[str]) -> str:
    q = shlex.quote
    redirect = f"exec </dev/null >>{q(stdout_path)} 2>>{q(stderr_path)}"
    if status_path:
        redirect += f" {status_fd}>{q(status_path)}"
    joins = "".join(f"echo $$ > {q(path)} && " for path in join_cgroups)
    # no `cd` here: the shell would export OLDPWD to the service; the launcher starts in cwd instead
    return f'echo $$; {redirect}; {joins}exec "$@"'


def _run(command: list[str], stdin: bytes | None, env: dict[str, str], name: str,
         new_session: bool = False, cwd: str = "/") -> tuple[bytes, bytes, int, int]:
    try:
        proc = subprocess.Popen(
            command, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=new_session, env=env, cwd=cwd)
    except OSError as exc:
        raise RuntimeDriverError(f"could not spawn {name}: {exc}") from exc
    with proc:
        try:
            out, err = proc.communicate(stdin, timeout=SPAWN_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.communicate()
            raise RuntimeDriverError(f"could not spawn {name}: the launcher hung") from exc
    return out, err, proc.returncode, proc.pid


@functools.cache
def setsid_with_fork() -> str | None:
    """The path of a `setsid` that supports --fork (util-linux), or None."""
    path = shutil.which("setsid")
    if path is None:
        return None
    try:
        probe = subprocess.run([path, "--fork", "/bin/true"], capture_output=True, timeout=SPAWN_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if probe.returncode == 0 else None
