"""HTTP sink throughput against a minimal raw endpoint, next to bare client loops.

Starts ``bench.rawserver`` (a raw asyncio HTTP/1.1 server that answers 201, so the endpoint
is not the bound) on loopback, then, in one run and against the same server, with the same
concurrency: a bare httpx loop and a bare aiohttp loop POSTing pre-encoded bodies, and the
engine delivering BME280 records through the http sink (a backfill, so generation is not
the limit), in single mode (one reading per request, the seed's contract) and batch mode
(arrays of 100); then the sink in single mode against a server that answers 30 % of
requests with 503 (each retried by itself while the other lanes go on).

Against the raw endpoint the bare loops send pre-encoded bodies, so in batch mode (100
readings a request) the sink is bound by generating and encoding them, not by HTTP; the
ratio against a bare loop is also printed on the reference endpoint (``synthstream-ingest``,
what users run), as the README has kept it.

Targets: single mode at least 3,000 requests/s here; with 30 % 503s at least 1/3 of the
clean run; on the reference endpoint at least 0.8 x the bare loop.

    python -m bench.http [SINGLE_RECORDS] [BATCH_RECORDS]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
import httpx
import numpy as np
import orjson
import uvloop

from producer import logs
from producer.app import Engine
from producer.clock import Stopper
from producer.config import load_settings
from producer.domains.bme280.kind import Bme280Settings
from producer.domains.bme280.model import Bme280Generator
from producer.generators import entity_keys
from producer.metrics import Metrics
from producer.rates import FixedInterval
from producer.settings import LogSettings

CONCURRENCY = 8
BATCH = 100
DEVICES = 100
PATH = "/api/v1/sensors/bme280"


def bodies(records: int, batch: int) -> list[bytes]:
    ids = np.arange(DEVICES, dtype=np.int64)
    keys = entity_keys(1, "bme280", ids)
    gen = Bme280Generator(Bme280Settings(devices=DEVICES), ids, keys)
    due = FixedInterval(ids, keys, 1000).due(0, records * 1000 // DEVICES)
    rows = gen.schema.rows(gen.generate(due))
    if batch == 1:
        return [orjson.dumps(r) for r in rows]
    return [orjson.dumps(rows[i : i + batch]) for i in range(0, len(rows), batch)]


async def _workers(payloads: list[bytes], post: object) -> float:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for p in payloads:
        queue.put_nowait(p)

    async def worker() -> None:
        while not queue.empty():
            await post(queue.get_nowait())  # type: ignore[operator]

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(CONCURRENCY):
            group.create_task(worker())
    return time.perf_counter() - started


async def bare_httpx(port: int, payloads: list[bytes]) -> float:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers={"Content-Type": "application/json"},
        limits=httpx.Limits(max_connections=CONCURRENCY),
    ) as client:  # fmt: skip

        async def post(body: bytes) -> None:
            response = await client.post(PATH, content=body)
            assert response.status_code == 201

        return await _workers(payloads, post)


async def bare_aiohttp(port: int, payloads: list[bytes]) -> float:
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(
        f"http://127.0.0.1:{port}", connector=connector,
        headers={"Content-Type": "application/json"},
    ) as session:  # fmt: skip

        async def post(body: bytes) -> None:
            async with session.post(PATH, data=body) as response:
                await response.read()
                assert response.status == 201

        return await _workers(payloads, post)


async def through_sink(port: int, records: int, mode: str) -> tuple[float, int]:
    seconds = records // DEVICES
    settings = load_settings(
        {
            "metrics": {"enabled": False},
            "log": {"level": "error"},
            "backfill": {"enabled": True, "start": "2024-01-01T00:00:00",
                         "end": f"2024-01-01T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:"
                                f"{seconds % 60:02d}", "progress": "off"},
            "bme280": {"devices": DEVICES, "sinks": "http", "rate": {"interval_s": 1},
                       "faults": {"drop_rate": 0, "duplicate_rate": 0}},
            "sinks": {"http": {"base_url": f"http://127.0.0.1:{port}", "mode": mode,
                               "batch_size": BATCH, "max_in_flight": CONCURRENCY}},
            "delivery": {"backoff_base_s": 0.005, "backoff_max_s": 0.05, "max_attempts": 50},
        }
    )  # fmt: skip
    metrics = Metrics()
    started = time.perf_counter()
    outcome = await Engine(settings, metrics).run(Stopper())
    elapsed = time.perf_counter() - started
    delivered = int(
        metrics.value("synthstream_records_delivered_total", {"stream": "bme280", "sink": "http"})
    )
    assert outcome.exit_code == 0
    return elapsed, delivered


@contextmanager
def listening(*module_args: str) -> Iterator[int]:
    """A server module run as a process that prints ``{"port": N}`` once it listens."""
    server = subprocess.Popen([sys.executable, "-m", *module_args], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert server.stdout is not None
        yield int(json.loads(server.stdout.readline())["port"])
    finally:
        server.terminate()
        server.communicate(timeout=10)


def raw_server(fail_rate: float = 0.0) -> contextlib.AbstractContextManager[int]:
    return listening("bench.rawserver", "0", str(fail_rate))


def reference_endpoint() -> contextlib.AbstractContextManager[int]:
    return listening("ingest", "--port", "0")


def main() -> None:
    logs.configure(LogSettings(level="error", format="json"))
    single = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    batched = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
    print(f"http sink vs bare client loops, raw endpoint on loopback, {CONCURRENCY} in flight")
    print(f"{'mode':>7} {'records':>9} {'httpx req/s':>12} {'aiohttp req/s':>14} "
          f"{'sink req/s':>11} {'sink/best':>9}")  # fmt: skip
    rates = {}
    with raw_server() as port:
        for mode, records, size in (("single", single, 1), ("batch", batched, BATCH)):
            payloads = bodies(records, size)
            httpx_s = uvloop.run(bare_httpx(port, payloads))
            aiohttp_s = uvloop.run(bare_aiohttp(port, payloads))
            sink_s, delivered = uvloop.run(through_sink(port, records, mode))
            requests = len(payloads)
            best = max(requests / httpx_s, requests / aiohttp_s)
            sink = delivered / size / sink_s
            rates[mode] = delivered / sink_s
            print(f"{mode:>7} {records:>9,} {requests / httpx_s:>12,.0f} "
                  f"{requests / aiohttp_s:>14,.0f} {sink:>11,.0f} {sink / best:>9.2f}")  # fmt: skip
    with reference_endpoint() as port:  # the endpoint users run: the ratio the README keeps
        for mode, records, size in (("single", 5_000, 1), ("batch", 100_000, BATCH)):
            payloads = bodies(records, size)
            bare_s = uvloop.run(bare_aiohttp(port, payloads))
            old_s = uvloop.run(bare_httpx(port, payloads))
            sink_s, delivered = uvloop.run(through_sink(port, records, mode))
            rate = delivered / sink_s
            print(f"reference endpoint, {mode}: sink {rate:,.0f} records/s, "
                  f"{rate / (records / bare_s):.2f} x a bare aiohttp loop, "
                  f"{rate / (records / old_s):.2f} x a bare httpx loop")  # fmt: skip
    with raw_server(0.3) as port:
        sink_s, delivered = uvloop.run(through_sink(port, single, "single"))
        faulty = delivered / sink_s
    print(
        f"single mode with 30 % 503s: {faulty:,.0f} records/s, "
        f"{faulty / rates['single']:.2f} x the clean run (target >= 0.33)"
    )
    print("targets: single >= 3,000 req/s; 30 % 503s >= 0.33 x; reference endpoint >= 0.8 x")


if __name__ == "__main__":
    main()
