"""HTTP probes of instances: one short GET on a fresh connection, cheap enough for hundreds a second."""

from __future__ import annotations

import asyncio


async def http_probe(port: int, path: str, timeout: float, host: str = "127.0.0.1") -> tuple[bool, str]:
    """(passed, detail): passed when the instance answers 2xx or 3xx within `timeout`.

    Hand-written on asyncio streams rather than an HTTP client library on purpose: a probe needs only
    the status line, and at 200 probes a second a full client's per-request cost shows in idle CPU.
    """
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: shipyard-probe\r\n"
                         f"Connection: close\r\n\r\n".encode())
            await writer.drain()
            status_line = await reader.readline()
    except TimeoutError:
        return False, f"GET {path}: no answer within {timeout:g}s"
    except OSError as exc:
        return False, f"GET {path}: {exc.strerror or exc}"
    finally:
        if writer is not None:
            writer.close()
    parts = status_line.decode("latin-1").split()
    if len(parts) < 2 or not parts[1].isdigit():
        return False, f"GET {path}: not an HTTP response"
    code = int(parts[1])
    return 200 <= code < 400, f"GET {path}: HTTP {code}"
