"""The comparator of a parallel run: takes copies of live requests and compares three answers to each.

It listens on its own address; the data plane sends it a share of live requests (a mirror: the user's
answer never waits for it, and mirror answers are discarded). Each copy is acknowledged at once (202) and
then sent to the primary, the secondary and the candidate concurrently; their answers go to compare.record.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.parallel.compare import Answer, Report, Settings, record

MAX_PENDING = 64  # comparisons under way; copies beyond are dropped (counted), so a flood never piles up
HOP_BY_HOP = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "upgrade"})


class Comparator:
    """Compares a candidate with two instances of the live release, one copied request at a time."""

    def __init__(self, primary: str, secondary: str, candidate: str, settings: Settings, timeout: float = 10.0) -> None:
        self.targets = (primary.rstrip("/"), secondary.rstrip("/"), candidate.rstrip("/"))
        self.settings = settings
        self.report = Report()
        self.failed = 0  # copies one of the three targets did not answer
        self.dropped = 0  # copies not compared because MAX_PENDING comparisons were under way
        self._client = httpx.AsyncClient(timeout=timeout)
        self._pending: set[asyncio.Task[None]] = set()

    async def compare(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        """Send one copied request to the three targets and record the comparison."""
        if not all(self.targets):
            return  # the instances to compare are not ready (yet)
        route = f"{method} {path.split('?', 1)[0]}"
        forward = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            answers = await asyncio.gather(*(self._send(target, method, path, forward, body)
                                             for target in self.targets))
        except httpx.HTTPError:
            self.failed += 1
            return
        record(self.report, route, *answers, self.settings)

    async def _send(self, base: str, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        response = await self._client.request(method, base + path, headers=headers, content=body)
        return Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content)

    def app(self) -> Starlette:
        """Accepts any request as a copy: 202 at once (compared in the background), 204 for methods not copied."""
        async def copy(request: Request) -> Response:
            if not self.settings.copies(request.method):
                return Response(status_code=204)
            if len(self._pending) >= MAX_PENDING:
                self.dropped += 1
                return Response(status_code=202)
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            task = asyncio.create_task(self.compare(request.method, path, dict(request.headers), await request.body()))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            return Response(status_code=202)

        methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        return Starlette(routes=[Route("/{path:path}", copy, methods=methods)])

    async def drain(self) -> None:
        """Wait for the comparisons under way."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        await self._client.aclose()

    def summary(self) -> dict[str, Any]:
        return {**self.report.to_dict(), "failed": self.failed, "dropped": self.dropped}

    def restore(self, summary: dict[str, Any]) -> None:
        """Continue from a summary (a restarted comparator keeps what its predecessor learnt)."""
        self.report = Report.from_dict(summary)
        self.failed, self.dropped = int(summary.get("failed", 0)), int(summary.get("dropped", 0))
