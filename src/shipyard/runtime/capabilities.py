"""What isolation this machine offers (bubblewrap, cgroup version and controllers), probed once per process."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass

from shipyard.runtime import cgroups
from shipyard.runtime.cgroups import CgroupLayout

PROBE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Capabilities:
    """The machine's isolation features; `notes` explains in plain language what is missing and what follows."""

    bwrap: str | None                 # path of a bubblewrap that works with the flags the driver uses, or None
    cgroups: CgroupLayout             # version None when cgroups cannot be used
    sandbox_notes: tuple[str, ...]    # why there is no sandbox, if there is none
    cgroup_notes: tuple[str, ...]     # why some or all resource limits cannot be enforced

    @property
    def notes(self) -> tuple[str, ...]:
        return self.sandbox_notes + self.cgroup_notes

    @property
    def cgroup_version(self) -> str | None:
        return self.cgroups.version

    @property
    def controllers(self) -> tuple[str, ...]:
        return tuple(sorted(self.cgroups.mounts))


def probe_bwrap() -> tuple[str | None, str | None]:
    """(path, None) when bubblewrap runs a command with the driver's namespaces, else (None, why not)."""
    path = shutil.which("bwrap")
    if path is None:
        return None, "bubblewrap not found: running without a sandbox"
    argv = [path, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--cap-drop", "ALL", "--", "/bin/sh", "-c", ":"]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=PROBE_TIMEOUT, cwd="/", check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"bubblewrap at {path} does not work ({exc}): running without a sandbox"
    if proc.returncode != 0:
        why = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        return None, f"bubblewrap at {path} does not work ({why[0]}): running without a sandbox"
    return path, None


def usable_cgroups(layout: CgroupLayout) -> tuple[CgroupLayout, list[str]]:
    """The layout if we may create cgroups in it, with notes on what is missing."""
    if layout.version is None:
        return layout, ["cgroups not mounted: running without resource limits"]
    writable = {c: m for c, m in layout.mounts.items() if os.access(m, os.W_OK)}
    if not writable:
        return CgroupLayout(None, {}), [
            f"cgroup {layout.version} hierarchy not writable (not root?): running without resource limits"]
    notes = [f"cgroup controller {c} unavailable: no {c} limit" for c in cgroups.CONTROLLERS if c not in writable]
    return CgroupLayout(layout.version, writable), notes


@functools.cache
def capabilities() -> Capabilities:
    """The machine's isolation features (cached: the probe runs bwrap once)."""
    bwrap, bwrap_note = probe_bwrap()
    layout, notes = usable_cgroups(cgroups.detect())
    return Capabilities(bwrap=bwrap, cgroups=layout, sandbox_notes=(bwrap_note,) if bwrap_note else (),
                        cgroup_notes=tuple(notes))
