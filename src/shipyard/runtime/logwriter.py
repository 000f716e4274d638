"""Size-capped instance logs, written by a small process of their own that needs no control plane.

An instance is detached and outlives the control plane, so rotation cannot be done by the control
plane (it is not in the write path, and may be down for hours while the service keeps printing).
Instead the launcher execs this file as a short shim in the instance's own process (`python -I -S
logwriter.py …`; standard library only, so it starts in tens of milliseconds and needs no
site-packages):

1. it makes one pipe for stdout and one for stderr and double-forks the *writer*, which starts its
   own session (a stop that kills the instance's process group, cgroup or PID namespace does not
   touch it) and is reparented to init;
2. it joins the instance's cgroups (after the fork, so the writer's memory is not the instance's),
   points fds 1 and 2 at the pipes and execs the target, keeping its pid (pid + start time stay the
   instance's identity).

The writer copies each pipe to `stdout.log` / `stderr.log`; when a write would take a file past
`max_bytes` it renames `X.log` → `X.log.1` → … → `X.log.<backups>` (the oldest is dropped) and starts
a new file — the names `logging.handlers.RotatingFileHandler` uses. That handler is not used itself:
it rotates text records and counts characters, while an instance's output is bytes, kept exactly.
The writer ends when every process holding a write end (the service and anything it forked) has
exited, after draining what they wrote. A write that fails (a full disk) drops that chunk and the
writer keeps reading, so a service is never blocked on its own logs.

Usage: logwriter.py MAX_BYTES BACKUPS STDOUT_PATH STDERR_PATH [CGROUP_PROCS ...] -- PROGRAM [ARGS ...]
"""

from __future__ import annotations

import os
import selectors
import signal
import sys

DEFAULT_MAX_BYTES = 10 * 2**20
DEFAULT_BACKUPS = 2  # with the live file: 3 files of at most 10 MiB per stream and instance
CHUNK = 65536


def rotated_paths(path: str, backups: int) -> list[str]:
    """The files of one stream, oldest first: `X.<backups>` … `X.1`, `X`."""
    return [f"{path}.{n}" for n in range(backups, 0, -1)] + [path]


class RotatingFile:
    """Appends bytes to `path`, rotating before a write that would take it past `max_bytes`."""

    def __init__(self, path: str, max_bytes: int, backups: int) -> None:
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        self._fd = -1
        self._size = 0

    def write(self, data: bytes) -> None:
        """Append DATA, splitting it over as many files as needed (at a line end where one fits)."""
        try:
            if self._fd < 0:
                self._open()
            while data:
                room = self.max_bytes - self._size
                part = data[:max(room, 0)]
                if len(data) > room:
                    cut = part.rfind(b"\n") + 1
                    if cut:
                        part = part[:cut]
                    elif self._size:
                        self._rotate()  # no line end fits: the line starts the next file
                        continue
                os.write(self._fd, part)  # O_APPEND
                self._size += len(part)
                data = data[len(part):]
                if data:
                    self._rotate()
        except OSError:
            self.close()  # dropped (disk full, file gone): reopened on the next chunk

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self._size = os.fstat(self._fd).st_size

    def _rotate(self) -> None:
        self.close()
        if self.backups > 0:
            names = rotated_paths(self.path, self.backups)
            for older, newer in zip(names, names[1:]):  # X.1 → X.2 first, … X → X.1 last
                try:
                    os.replace(newer, older)
                except FileNotFoundError:
                    pass
        else:
            os.truncate(self.path, 0)
        self._open()


def pump(sources: dict[int, RotatingFile]) -> None:
    """Copy every readable fd to its file until all of them reach end of file."""
    selector = selectors.DefaultSelector()
    for fd, target in sources.items():
        selector.register(fd, selectors.EVENT_READ, target)
    while selector.get_map():
        for key, _ in selector.select():
            try:
                data = os.read(key.fd, CHUNK)
            except InterruptedError:
                continue
            if data:
                key.data.write(data)
            else:
                selector.unregister(key.fd)
                os.close(key.fd)
                key.data.close()


def _writer(read_ends: dict[int, RotatingFile], keep: set[int]) -> None:
    """In the double-forked writer: leave the instance's session and fds, then pump until the end."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)  # fd 2 stays on the stderr file: the writer's own errors land there
    for fd in range(3, 256):
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    pump(read_ends)


def main(argv: list[str]) -> None:
    split = argv.index("--")
    max_bytes, backups, stdout_path, stderr_path, *joins = argv[:split]
    program = argv[split + 1:]
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    sources = {out_r: RotatingFile(stdout_path, int(max_bytes), int(backups)),
               err_r: RotatingFile(stderr_path, int(max_bytes), int(backups))}
    child = os.fork()
    if child == 0:
        try:
            if os.fork() == 0:
                os.close(out_w)
                os.close(err_w)
                _writer(sources, {out_r, err_r})
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    os.close(out_r)
    os.close(err_r)
    for path in joins:
        with open(path, "w") as procs:
            procs.write(str(os.getpid()))
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.close(out_w)
    os.close(err_w)
    # Python ignores SIGPIPE and SIGXFSZ at start-up and exec keeps ignored signals ignored
    for number in range(1, signal.NSIG):
        try:
            signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    try:
        os.execv(program[0], program)
    except OSError as exc:
        os.write(2, f"shipyard-launch: cannot execute {program[0]}: {exc.strerror}\n".encode())
        os._exit(127)


if __name__ == "__main__":
    main(sys.argv[1:])
