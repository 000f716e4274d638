"""Crash back-off: the first crash restarts at once, repeated ones wait 1 s doubling to 60 s."""

from __future__ import annotations

MAX_DELAY = 60.0
HEALTHY_RESET = 600.0  # ready this long before a crash: the crash starts a new count


def crash_count(previous: int, ready_since: float | None, now: float) -> int:
    """Consecutive crashes after this one."""
    if ready_since is not None and now - ready_since >= HEALTHY_RESET:
        return 1
    return previous + 1


def restart_delay(crashes: int) -> float:
    """Seconds to wait before restarting after `crashes` consecutive crashes."""
    if crashes <= 1:
        return 0.0
    return min(MAX_DELAY, 2.0 ** (crashes - 2))


PASS_MAX_DELAY = 10.0  # a failing reconcile pass is retried at least this often


def pass_retry_delay(failures: int) -> float:
    """Seconds before the next reconcile pass after `failures` failed passes in a row: 0.5 s doubling to 10 s."""
    return min(PASS_MAX_DELAY, 0.5 * 2.0 ** (max(failures, 1) - 1))
