"""The control plane's side of flags: the current flag set, its own read-only OFREP listener, FlagsChanged events.

The listener is never the control API: it has its own port on 127.0.0.1, chosen once and kept in the
store, so `$SHIPYARD_OFREP_URL` stays the same across control-plane restarts. A new flag set replaces the
old one in a single assignment, so every answer comes from one whole flag set; flags are not part of any
release, so a change of flags alone restarts nothing.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Any, Callable

from shipyard.flags.evaluate import FlagSet
from shipyard.flags.files import value_type
from shipyard.flags.ofrep import build_ofrep_app
from shipyard.proxy.ports import free_port
from shipyard.state.store import Store

log = logging.getLogger("shipyard.flags")
PORT_KEY, URL_KEY, FLAGS_KEY, DOCUMENT_KEY = "ofrep_port", "ofrep_url", "flags", "flags_document"
Event = Callable[..., None]  # Reconciler.event(kind, object, reason, message, data=None)


class FlagService:
    """Holds the environment's flags and serves them over OFREP."""

    def __init__(self, store: Store, event: Event) -> None:
        self.store, self._event = store, event
        port = store.get(PORT_KEY)
        if not isinstance(port, int):
            port = free_port()
            store.put(PORT_KEY, port)
        self.port: int = port
        self.current: FlagSet | None = None
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def publish(self, flag_set: FlagSet | None) -> None:
        """Serve FLAG_SET from now on; records a FlagsChanged event when the flags differ from the last ones."""
        self.current = flag_set
        document = flag_set.document if flag_set is not None else {"flags": {}}
        previous = self.store.get(DOCUMENT_KEY) or {"flags": {}}
        self.store.put(FLAGS_KEY, summarize(flag_set))
        if previous == document:
            return
        self.store.put(DOCUMENT_KEY, document)
        changed = changed_keys(previous.get("flags", {}), document.get("flags", {}))
        self._event("Normal", "flags", "FlagsChanged", describe_change(changed), changed)

    async def start(self) -> None:
        """Listen on the stored port (a new free one if another process took it) and serve OFREP."""
        import uvicorn

        sock = self._bind()
        self.store.put(URL_KEY, self.url)
        self._server = uvicorn.Server(uvicorn.Config(build_ofrep_app(lambda: self.current), log_level="warning",
                                                     lifespan="off", access_log=False))
        self._server.install_signal_handlers = lambda: None
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        log.info("flags served over OFREP at %s", self.url)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: without it, uvicorn on a socket of ours answers a keep-alive
        # request ~40 ms late (Nagle on the split response write + the client's delayed ACK).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind(("127.0.0.1", self.port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            old, self.port = self.port, free_port()
            self.store.put(PORT_KEY, self.port)
            self._event("Warning", "flags", "OfrepPortChanged", f"port {old} is taken by another process: OFREP "
                        f"now at {self.url}; instances started before get it when they are replaced")
            sock.bind(("127.0.0.1", self.port))
        return sock


def summarize(flag_set: FlagSet | None) -> list[dict[str, Any]]:
    """One entry per flag, as `status` and `flags list` show them."""
    if flag_set is None:
        return []
    rows = []
    for key in sorted(flag_set.flags):
        flag = flag_set.flags[key]
        first = next(iter(flag.variants.values()), None)
        rows.append({"key": key, "state": flag.state, "type": value_type(first),
                     "defaultVariant": flag.default_variant, "variants": sorted(flag.variants),
                     "targeting": flag.targeting is not None, "metadata": flag.metadata})
    return rows


def changed_keys(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[str]]:
    return {"added": sorted(set(after) - set(before)), "removed": sorted(set(before) - set(after)),
            "changed": sorted(k for k in set(before) & set(after) if before[k] != after[k])}


def describe_change(changed: dict[str, list[str]]) -> str:
    parts = [f"{what} {', '.join(keys)}" for what, keys in changed.items() if keys]
    return "flags " + ("; ".join(parts) if parts else "unchanged")
