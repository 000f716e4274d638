"""When to fetch next, purely: on request, every interval, and backing off while fetches fail."""

from __future__ import annotations

MAX_RETRY_DELAY = 600.0


def next_fetch_due(last_fetch: float | None, interval: float, now: float, requested: bool) -> bool:
    """Whether to fetch at NOW: a webhook asked, nothing was fetched yet, or INTERVAL has passed.

    After failed fetches, pass `retry_delay(...)` as INTERVAL.
    """
    return requested or last_fetch is None or now - last_fetch >= interval


def retry_delay(interval: float, failures: int, cap: float = MAX_RETRY_DELAY) -> float:
    """The wait before the next fetch after FAILURES failed ones in a row: INTERVAL doubled per failure.

    Capped at CAP, which never shortens the normal interval: above CAP, failures change nothing.
    """
    doubled = interval * 2.0 ** min(max(failures, 0), 64)  # the exponent bound keeps floats finite
    return min(doubled, max(cap, interval))
