"""The command lines that run an instance: inside bubblewrap, or directly under a recording shell (pure)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from shipyard.runtime.base import InstanceSpec

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NAMESPACES = ("pid", "ipc", "uts", "mount")
STATUS_FD = 3                       # the fd bwrap writes its JSON status to (child-pid, then exit-code)
ROOTFS_DATA = "/data"               # a full image's data dir, inside its own root
PRIVATE_WRITABLE = ("/tmp", "/dev")  # private tmpfs mounts: writable, but invisible outside the instance

# Runs the service as a foreground child (so no signal is ignored, unlike `cmd &`): the inner shell
# writes its own pid and execs the service, keeping that pid; the outer shell waits and records the
# exit status ($? is 128+signal when the service was killed) in bwrap's status format.
SUPERVISE_SCRIPT = (
    'p=$1; s=$2; shift 2; '
    '/bin/sh -c \'echo $$ > "$0"; exec "$@"\' "$p" "$@"; '
    'c=$?; printf \'{"exit-code": %d}\\n\' "$c" >> "$s"'
)


def service_env(spec: InstanceSpec) -> dict[str, str]:
    """The service's environment: exactly `spec.env`, plus a PATH when it has none."""
    env = dict(spec.env)
    env.setdefault("PATH", DEFAULT_PATH)
    return env


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _abs(path: Path) -> str:
    return os.path.abspath(path)


def bwrap_argv(spec: InstanceSpec, bwrap: str = "bwrap", status_fd: int = STATUS_FD) -> list[str]:
    """The bubblewrap command line for `spec`: own pid/ipc/uts/mount namespaces, read-only host, shared network.

    Hidden dirs become empty read-only tmpfs mounts; mount points for the snapshot and data dirs are
    made inside them first (`--dir`), because bwrap cannot create them once the tmpfs is read-only.
    No --die-with-parent (instances outlive the control plane) and no --as-pid-1 (bwrap's init stays
    pid 1, so the service gets default SIGTERM handling).
    """
    if spec.rootfs:
        return rootfs_argv(spec, bwrap, status_fd)
    snapshot, data = _abs(spec.snapshot_dir), _abs(spec.data_dir)
    hidden = sorted({_abs(h) for h in spec.hidden_dirs}, key=lambda p: (p.count("/"), p))
    argv = [
        bwrap,
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
        "--unshare-pid", "--unshare-ipc", "--unshare-uts",
        # bwrap run as root keeps every capability; a root service could then remount / read-write
        "--cap-drop", "ALL",
    ]
    for directory in hidden:
        argv += ["--tmpfs", directory]
    for mount_point in (snapshot, data):
        if any(_under(mount_point, h) for h in hidden):
            argv += ["--dir", mount_point]
    for directory in hidden:
        argv += ["--remount-ro", directory]
    argv += [
        "--ro-bind", snapshot, snapshot,
        "--bind", data, data,
        "--chdir", snapshot,
        "--json-status-fd", str(status_fd),
        "--", *spec.argv,
    ]
    return argv


def rootfs_argv(spec: InstanceSpec, bwrap: str = "bwrap", status_fd: int = STATUS_FD) -> list[str]:
    """A full OCI image: its unpacked root read-only as `/`, private /dev, /proc and /tmp, the data dir at /data.

    The mount points exist in the root (made when it was unpacked), as bwrap cannot create them in a
    read-only root. The host's file system is not visible at all. An image's User runs in a user namespace
    of its own, where it is that uid:gid (mapped to the control plane's user outside, with no capability).
    """
    user = ["--unshare-user", "--uid", spec.user.split(":")[0], "--gid", spec.user.split(":")[1]] if spec.user else []
    return [
        bwrap,
        "--ro-bind", _abs(spec.snapshot_dir), "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
        "--unshare-pid", "--unshare-ipc", "--unshare-uts", *user,
        "--cap-drop", "ALL",
        "--bind", _abs(spec.data_dir), ROOTFS_DATA,
        "--chdir", spec.workdir or "/",
        "--json-status-fd", str(status_fd),
        "--", *spec.argv,
    ]


def direct_argv(spec: InstanceSpec, pid_file: str, status_file: str, shell: str = "/bin/sh") -> list[str]:
    """Run the command without a sandbox; the service's pid goes to `pid_file`, its exit code to `status_file`."""
    return [shell, "-c", SUPERVISE_SCRIPT, "shipyard-supervise", pid_file, status_file, *spec.argv]


def writable_paths(spec: InstanceSpec, sandboxed: bool) -> tuple[str, ...]:
    """What the instance can write: inside bubblewrap its data dir and private tmpfs mounts; else everything."""
    if not sandboxed:
        return ("/",)
    if spec.rootfs:
        return (ROOTFS_DATA, *PRIVATE_WRITABLE)
    return (_abs(spec.data_dir), *PRIVATE_WRITABLE)


def command_argv(argv: Sequence[str], workdir: Path, hidden_dirs: Sequence[Path], bwrap: str = "bwrap") -> list[str]:
    """A one-off command (a rollout gate) in the instances' sandbox: read-only host, the hidden dirs (the
    state dir, with the control plane's socket and token) masked, WORKDIR read-only and current, a private
    /tmp. Unlike an instance it dies with its parent: a gate never outlives its run.
    """
    work = _abs(workdir)
    hidden = sorted({_abs(h) for h in hidden_dirs}, key=lambda p: (p.count("/"), p))
    command = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
               "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--cap-drop", "ALL", "--die-with-parent"]
    for directory in hidden:
        command += ["--tmpfs", directory]
    if any(_under(work, h) for h in hidden):
        command += ["--dir", work]
    for directory in hidden:
        command += ["--remount-ro", directory]
    return [*command, "--ro-bind", work, work, "--chdir", work, "--", *argv]
