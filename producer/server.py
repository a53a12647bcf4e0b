"""``/metrics``, ``/healthz`` and live control (``/control``) on one port, served on the
engine's own event loop.

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
_MAX_BODY = 64 * 1024
_CONTROL_OFF = b"control is off: SYNTHSTREAM_CONTROL__ENABLED=true turns it on\n"
# (method, path, headers, body) -> (status line, content type, body)
Handler = Callable[[str, str, dict[str, str], bytes], tuple[str, str, bytes]]


class MetricsServer:
    def __init__(
        self, metrics: Metrics | None, host: str, port: int,
        render: Callable[[], Awaitable[bytes]] | None = None,
        healthy: Callable[[], bool] = lambda: True, control: Handler | None = None,
    ) -> None:  # fmt: skip
        """``render`` makes /metrics' body instead of ``metrics`` (the parent of workers
        gathers theirs); /healthz answers 503 while ``healthy()`` is false."""
        self.metrics = metrics
        self.host = host
        self.port = port
        self._render = render
        self._healthy = healthy
        self.control = control  # /control and /control/... (producer.control_api)
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
        method = ""
        try:
            async with asyncio.timeout(_REQUEST_TIMEOUT_S):
                request = await reader.readline()
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                if not 0 <= length <= _MAX_BODY:
                    raise ValueError("body too large")
                body = await reader.readexactly(length) if length else b""
            parts = request.decode("latin-1").split()
            method, path = (parts[0], parts[1].split("?")[0]) if len(parts) >= 2 else ("", "")
            if path == "/control" or path.startswith("/control/"):
                if self.control is None:
                    status, ctype, out = "404 Not Found", "text/plain", _CONTROL_OFF
                else:
                    status, ctype, out = self.control(method, path, headers, body)
            elif method not in ("GET", "HEAD"):
                status, ctype, out = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path == "/metrics":
                status, ctype = "200 OK", CONTENT_TYPE_LATEST
                out = await self._body()
            elif path in ("/healthz", "/health") and not self._healthy():
                status, ctype = "503 Service Unavailable", "application/json"
                out = b'{"status":"failing"}\n'
            elif path in ("/healthz", "/health"):
                status, ctype, out = "200 OK", "application/json", b'{"status":"ok"}\n'
            else:
                status, ctype, out = "404 Not Found", "text/plain", b"try /metrics or /healthz\n"
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(out)}\r\nConnection: close\r\n"
                "Cache-Control: no-store\r\n\r\n"
            ).encode()
            writer.write(head if method == "HEAD" else head + out)
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
