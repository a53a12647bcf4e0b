"""HTTP sink throughput against the reference ingest endpoint, next to a bare httpx loop.

Starts the reference endpoint (``python -m ingest``) on loopback, then, in one run and
against the same server: (1) a bare httpx loop POSTing pre-encoded bodies with the same
concurrency, (2) the engine delivering the same number of BME280 records through the http
sink (a backfill, so generation is not the limit). Single mode (one reading per request) and
batch mode (arrays of 100). Prints records/s for both and their ratio.
Target: the sink reaches at least 0.8 x the bare loop in both modes.

    python -m bench.http [SINGLE_RECORDS] [BATCH_RECORDS]
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import httpx
import numpy as np
import orjson
import uvloop

from producer import logs
from producer.app import Engine
from producer.clock import Stopper
from producer.generators.bme280 import Bme280Generator
from producer.metrics import Metrics
from producer.rates import FixedInterval
from producer.settings import Bme280Settings, LogSettings, load_settings
from producer.streams import entity_keys

CONCURRENCY = 8
BATCH = 100
DEVICES = 100


def bodies(records: int, batch: int) -> list[bytes]:
    ids = np.arange(DEVICES, dtype=np.int64)
    keys = entity_keys(1, "bme280", ids)
    gen = Bme280Generator(Bme280Settings(devices=DEVICES), ids, keys)
    due = FixedInterval(ids, keys, 1000).due(0, records * 1000 // DEVICES)
    rows = gen.schema.rows(gen.generate(due))
    if batch == 1:
        return [orjson.dumps(r) for r in rows]
    return [orjson.dumps(rows[i : i + batch]) for i in range(0, len(rows), batch)]


async def bare(port: int, payloads: list[bytes]) -> float:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for p in payloads:
        queue.put_nowait(p)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers={"Content-Type": "application/json"},
        limits=httpx.Limits(max_connections=CONCURRENCY),
    ) as client:  # fmt: skip

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                response = await client.post("/api/v1/sensors/bme280", content=body)
                assert response.status_code == 201

        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(CONCURRENCY):
                group.create_task(worker())
        return time.perf_counter() - started


async def through_sink(port: int, records: int, mode: str) -> tuple[float, int]:
    seconds = records // DEVICES
    settings = load_settings(
        {
            "metrics": {"enabled": False},
            "log": {"level": "warning"},
            "backfill": {"enabled": True, "start": "2024-01-01T00:00:00",
                         "end": f"2024-01-01T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:"
                                f"{seconds % 60:02d}", "progress": "off"},
            "bme280": {"devices": DEVICES, "sinks": "http", "rate": {"interval_s": 1},
                       "faults": {"drop_rate": 0, "duplicate_rate": 0}},
            "sinks": {"http": {"base_url": f"http://127.0.0.1:{port}", "mode": mode,
                               "batch_size": BATCH, "max_in_flight": CONCURRENCY}},
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


def main() -> None:
    logs.configure(LogSettings(level="warning", format="json"))
    single = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    batched = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
    server = subprocess.Popen(
        [sys.executable, "-m", "ingest", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = json.loads(server.stdout.readline())["port"]
        print(f"http sink vs bare httpx loop, reference endpoint on loopback, "
              f"{CONCURRENCY} in flight")  # fmt: skip
        print(f"{'mode':>7} {'records':>9} {'bare rec/s':>11} {'sink rec/s':>11} {'ratio':>6}")
        for mode, records, size in (("single", single, 1), ("batch", batched, BATCH)):
            payloads = bodies(records, size)
            bare_s = uvloop.run(bare(port, payloads))
            sink_s, delivered = uvloop.run(through_sink(port, records, mode))
            bare_rate, sink_rate = records / bare_s, delivered / sink_s
            print(f"{mode:>7} {records:>9,} {bare_rate:>11,.0f} {sink_rate:>11,.0f} "
                  f"{sink_rate / bare_rate:>6.2f}")  # fmt: skip
        print("target: sink >= 0.8 x bare loop in both modes")
    finally:
        server.terminate()
        server.communicate(timeout=10)


if __name__ == "__main__":
    main()
