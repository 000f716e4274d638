"""Live updates for the dashboard: a server-sent event whenever what a page shows may have changed.

The control plane looks every 0.25 s at a fingerprint of its state (the newest event's id, each
rollout's status, phase, step and weight, each instance's state) and sends `event: change` when it
differs, so a page learns of a change well within a second; the page then fetches its `<main>` again
(ui/pages.py, `X-Fragment: 1`). A comment line every 5 s keeps idle connections open and lets the server notice a closed one.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any, AsyncIterator

from starlette.requests import Request
from starlette.responses import StreamingResponse

if TYPE_CHECKING:
    from shipyard.daemon import ControlPlane

POLL_S = 0.25
KEEPALIVE_S = 5.0


def fingerprint(plane: "ControlPlane") -> tuple[Any, ...]:
    events = plane.store.events(limit=1)
    reconciler = plane.reconciler
    rollouts = tuple(sorted((r.service, r.status, r.phase, r.step, r.weight, len(r.decisions))
                            for r in reconciler.rollouts.values()))
    instances = tuple(sorted((i.id, i.state.value, i.restarts) for i in reconciler.instances.values()))
    return (events[-1]["id"] if events else 0, rollouts, instances, reconciler.suspended)


def live_stream(plane: "ControlPlane", request: Request) -> StreamingResponse:
    async def changes() -> AsyncIterator[str]:
        last, quiet_since = None, time.monotonic()
        yield "retry: 1000\n\n"
        while not plane.shutdown.is_set():  # a closed connection cancels this (StreamingResponse)
            current = await asyncio.to_thread(fingerprint, plane)
            if current != last:
                if last is not None:
                    yield f"event: change\ndata: {json.dumps({'event': current[0]})}\n\n"
                last, quiet_since = current, time.monotonic()
            elif time.monotonic() - quiet_since > KEEPALIVE_S:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
            await asyncio.sleep(POLL_S)

    return StreamingResponse(changes(), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})
