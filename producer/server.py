"""``/metrics`` and ``/healthz`` on one port, served on the engine's own event loop.

Serving on the loop (not in a thread) is what makes every scrape see a consistent set of
counters: the engine updates related counters without an ``await`` in between.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from producer.metrics import Metrics

_REQUEST_TIMEOUT_S = 5.0


class MetricsServer:
    def __init__(
        self, metrics: Metrics | None, host: str, port: int,
        render: Callable[[], Awaitable[bytes]] | None = None,
        healthy: Callable[[], bool] = lambda: True,
    ) -> None:  # fmt: skip
        """``render`` makes /metrics' body instead of ``metrics`` (the parent of workers
        gathers theirs); /healthz answers 503 while ``healthy()`` is false."""
        self.metrics = metrics
        self.host = host
        self.port = port
        self._render = render
        self._healthy = healthy
        self._server: asyncio.Server | None = None

    async def _body(self) -> bytes:
        if self._render is not None:
            return await self._render()
        assert self.metrics is not None
        return generate_latest(self.metrics.registry)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_REQUEST_TIMEOUT_S):
                request = await reader.readline()
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    del line
            parts = request.decode("latin-1").split()
            method, path = (parts[0], parts[1].split("?")[0]) if len(parts) >= 2 else ("", "")
            if method not in ("GET", "HEAD"):
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path == "/metrics":
                status, ctype = "200 OK", CONTENT_TYPE_LATEST
                body = await self._body()
            elif path in ("/healthz", "/health") and not self._healthy():
                status, ctype = "503 Service Unavailable", "application/json"
                body = b'{"status":"failing"}\n'
            elif path in ("/healthz", "/health"):
                status, ctype, body = "200 OK", "application/json", b'{"status":"ok"}\n'
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"try /metrics or /healthz\n"
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            writer.write(head if method == "HEAD" else head + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
