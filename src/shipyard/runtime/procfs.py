"""Facts about processes read from /proc: start time, state, parent, session, children."""

from __future__ import annotations

import os
from dataclasses import dataclass

PROC = "/proc"


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/<pid>/stat the runtime needs."""

    pid: int
    state: str          # R, S, D, Z, T, ...
    ppid: int
    session: int
    start_time: int     # field 22: clock ticks after boot; with the pid it identifies a process for good
    name: str = ""      # field 2 without its parentheses: the executable's name (at most 15 characters)


def parse_stat(text: str) -> ProcStat:
    """Parse one /proc/<pid>/stat line; the command name may contain spaces and parentheses."""
    pid_part, _, rest = text.partition(" (")
    fields = rest[rest.rindex(")") + 2:].split()
    # fields[0] is field 3 of the file (state); field N of the file is fields[N - 3]
    return ProcStat(
        pid=int(pid_part), state=fields[0], ppid=int(fields[1]), session=int(fields[3]),
        start_time=int(fields[19]), name=rest[:rest.rindex(")")],
    )


def read_stat(pid: int) -> ProcStat | None:
    """The stat of `pid`, or None when there is no such process."""
    if pid <= 0:
        return None
    try:
        with open(f"{PROC}/{pid}/stat", encoding="utf-8", errors="replace") as file:
            return parse_stat(file.read())
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return None


def is_running(pid: int, start_time: int | None) -> bool:
    """True when `pid` is the same process as when recorded (same start time) and not a zombie."""
    stat = read_stat(pid)
    if stat is None or stat.state in ("Z", "X"):
        return False
    return start_time is None or stat.start_time == start_time


def start_time(pid: int) -> int | None:
    stat = read_stat(pid)
    return None if stat is None else stat.start_time


def children(pid: int) -> list[int]:
    """Direct children of `pid` (threads' children included)."""
    try:
        tids = os.listdir(f"{PROC}/{pid}/task")
    except FileNotFoundError:
        return []
    found: list[int] = []
    try:
        for tid in tids:
            with open(f"{PROC}/{pid}/task/{tid}/children", encoding="ascii") as file:
                found.extend(int(child) for child in file.read().split())
    except FileNotFoundError:
        # kernels without CONFIG_PROC_CHILDREN: scan every process's parent instead
        return [stat.pid for stat in all_stats() if stat.ppid == pid]
    return found


def all_stats() -> list[ProcStat]:
    """The stat of every process on the host (a /proc scan: for rare operations, not for polling)."""
    stats = []
    for name in os.listdir(PROC):
        if name.isdigit():
            stat = read_stat(int(name))
            if stat is not None:
                stats.append(stat)
    return stats


def ns_pid(pid: int) -> int | None:
    """The pid of `pid` inside its innermost pid namespace (the last NSpid entry)."""
    try:
        with open(f"{PROC}/{pid}/status", encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except FileNotFoundError:
        return None
    return None


def session_members(session: int) -> list[int]:
    """Live processes whose session id is `session`."""
    return [s.pid for s in all_stats() if s.session == session and s.state not in ("Z", "X")]
