"""A minimal HTTP/1.1 endpoint for benchmarks: it answers every POST with 201 (or, with
``FAIL_RATE``, that share with 503), keep-alive, no parsing beyond Content-Length, so the
endpoint is never what a client benchmark measures. Prints ``{"port": N}`` once listening;
counts accepted requests and prints ``{"accepted": N}`` at SIGTERM.

    python -m bench.rawserver [PORT] [FAIL_RATE]
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
from typing import Any

OK = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 0\r\n"
        b"Connection: keep-alive\r\n\r\n")  # fmt: skip


class Counter:
    accepted = 0


class Handler(asyncio.Protocol):
    def __init__(self, fail_rate: float, counter: type[Counter]) -> None:
        self.buffer = b""
        self.fail_rate = fail_rate
        self.counter = counter
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # (uvloop's transports are not asyncio.Transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                line_end = head.find(b"\r\n", at)
                length = int(head[at + 15 : line_end if line_end >= 0 else None].strip())
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            if self.fail_rate and random.random() < self.fail_rate:
                self.transport.write(BUSY)
            else:
                self.counter.accepted += 1
                self.transport.write(OK)


async def serve(port: int, fail_rate: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Handler(fail_rate, Counter), "127.0.0.1", port)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    done = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, done.set_result, None)
    await done
    server.close()
    print(json.dumps({"accepted": Counter.accepted}), flush=True)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    fail_rate = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    try:
        import uvloop

        uvloop.run(serve(port, fail_rate))
    except ImportError:  # pragma: no cover
        asyncio.run(serve(port, fail_rate))


if __name__ == "__main__":
    main()
