"""An OFREP listener over a fixed flag set, run by uvicorn in a thread for the duration of a test."""

from __future__ import annotations

import asyncio
import threading
import uvicorn

from shipyard.flags.evaluate import FlagSet
from shipyard.flags.ofrep import build_ofrep_app
from tests.controlplane import free_port, wait_for


class OfrepServer:
    def __init__(self, flag_set: FlagSet) -> None:
        self.flag_set = flag_set
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(build_ofrep_app(lambda: self.flag_set), host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def __enter__(self) -> "OfrepServer":
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=10, what="the OFREP listener")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

