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

# What one request may cost, whoever sends it: the port is open to every scraper. A request
# is its line and headers (at most HEAD_BYTES together, MAX_HEADERS of them, lines of at most
# MAX_LINE) and a body of at most MAX_BODY, all within REQUEST_TIMEOUT_S; at most
# MAX_CONNECTIONS at once (more are answered 503 and closed). The worst case is about
# MAX_CONNECTIONS x (HEAD_BYTES + MAX_BODY), a few MB.
REQUEST_TIMEOUT_S = 5.0
MAX_LINE = 8 * 1024
MAX_HEADERS = 100
HEAD_BYTES = 32 * 1024
MAX_BODY = 64 * 1024
MAX_CONNECTIONS = 32
LINGER_S, LINGER_BYTES = 1.0, 256 * 1024
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
        self._open = 0  # connections being served

    async def _body(self) -> bytes:
        if self._render is not None:
            return await self._render()
        assert self.metrics is not None
        return generate_latest(self.metrics.registry)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port,
                                                  limit=HEAD_BYTES)  # fmt: skip
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= MAX_CONNECTIONS:
            writer.write(_reply("503 Service Unavailable", "text/plain", b"too many connections\n"))
            return await _close(writer)
        self._open += 1
        try:
            method, refused = "", False
            try:
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT_S):
                        method, path, headers, body = await _read(reader)
                except TimeoutError:
                    why = f"a request: whole within {REQUEST_TIMEOUT_S:g} s"
                    raise Refused("408 Request Timeout", why) from None
                status, ctype, out = await self._route(method, path, headers, body)
            except Refused as exc:
                status, ctype, out = exc.status, "text/plain", f"{exc}\n".encode()
                refused = True
            reply = _reply(status, ctype, out)
            writer.write(
                reply.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" if method == "HEAD" else reply
            )
            async with asyncio.timeout(REQUEST_TIMEOUT_S):  # a client that does not read
                await writer.drain()
            if refused:
                await _linger(reader, writer)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._open -= 1
            await _close(writer)

    async def _route(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[str, str, bytes]:
        if path == "/control" or path.startswith("/control/"):
            if self.control is None:
                return "404 Not Found", "text/plain", _CONTROL_OFF
            return self.control(method, path, headers, body)
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain", b"GET only\n"
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, await self._body()
        if path in ("/healthz", "/health") and not self._healthy():
            return "503 Service Unavailable", "application/json", b'{"status":"failing"}\n'
        if path in ("/healthz", "/health"):
            return "200 OK", "application/json", b'{"status":"ok"}\n'
        return "404 Not Found", "text/plain", b"try /metrics or /healthz\n"


class Refused(Exception):
    """A request answered without being served: its status line and why, in one line."""

    def __init__(self, status: str, why: str) -> None:
        super().__init__(why)
        self.status = status


async def _read(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    """One request's method, path, headers and body, each bounded before it is read."""
    try:
        block = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        why = f"request line and headers: at most {HEAD_BYTES} bytes"
        raise Refused("431 Request Header Fields Too Large", why) from None
    lines = block[:-4].split(b"\r\n")
    request, fields = lines[0], lines[1:]
    if len(request) > MAX_LINE:
        raise Refused("414 URI Too Long", f"request line: at most {MAX_LINE} bytes")
    if len(fields) > MAX_HEADERS or any(len(line) > MAX_LINE for line in fields):
        raise Refused("431 Request Header Fields Too Large",
                      f"headers: at most {MAX_HEADERS}, of {MAX_LINE} bytes each")  # fmt: skip
    parts = request.decode("latin-1").split()
    method, path = (parts[0], parts[1].split("?")[0]) if len(parts) >= 2 else ("", "")
    headers: dict[str, str] = {}
    for line in fields:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise Refused("411 Length Required", "body: send Content-Length, not chunked")
    length = headers.get("content-length", "0") or "0"
    if not (length.isdigit() and len(length) <= 12):
        raise Refused("400 Bad Request", "content-length: accepted: a whole number")
    if int(length) > MAX_BODY:
        raise Refused("413 Content Too Large", f"body: at most {MAX_BODY} bytes")
    body = await reader.readexactly(int(length)) if int(length) else b""
    return method, path, headers, body


def _reply(status: str, ctype: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n"
        "Cache-Control: no-store\r\n\r\n"
    )
    return head.encode() + body


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """After a refusal, let the client read it: a socket closed with unread bytes resets the
    connection, and the reset can overtake the answer. Up to LINGER_BYTES more of what it
    sends are read and dropped, for at most LINGER_S."""
    if writer.can_write_eof():
        writer.write_eof()
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(LINGER_S):
            dropped = 0
            while dropped < LINGER_BYTES and (chunk := await reader.read(16 * 1024)):
                dropped += len(chunk)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1.0)
