"""Kinesis sink throughput against LocalStack, next to a bare aioboto3 PutRecords loop.

Starts LocalStack (scripts/localstack; a fresh one for each side, as kinesis-mock slows down
as it fills), then in one run: (1) a bare loop of PutRecords calls of 500 pre-encoded
air-quality records, (2) the engine delivering the same number of records
through the kinesis sink (a backfill). Prints records/s of both and their ratio.
Target: the sink reaches at least 0.9 x the bare loop.

    python -m bench.kinesis [RECORDS]
"""

from __future__ import annotations

import asyncio
import sys
import time

import aioboto3
import numpy as np
import orjson
import uvloop

from producer import logs
from producer.app import Engine
from producer.clock import Stopper
from producer.config import load_settings
from producer.domains.air_quality.kind import AirQualitySettings
from producer.domains.air_quality.model import AirQualityGenerator
from producer.generators import entity_keys
from producer.metrics import Metrics
from producer.rates import FixedInterval
from producer.settings import LogSettings
from tests.services import localstack


def payloads(records: int) -> list[list[dict[str, object]]]:
    ids = np.arange(300, dtype=np.int64)
    keys = entity_keys(1, "air_quality", ids)
    gen = AirQualityGenerator(AirQualitySettings(), ids, keys)
    due = FixedInterval(ids, keys, 1000).due(0, records * 1000 // 300 + 1000)
    rows = gen.schema.rows(gen.generate(due.head(records)))
    entries = [{"Data": orjson.dumps(r), "PartitionKey": r["city_id"]} for r in rows]
    return [entries[i : i + 500] for i in range(0, len(entries), 500)]


async def bare(url: str, calls: list[list[dict[str, object]]]) -> float:
    session = aioboto3.Session(aws_access_key_id="test", aws_secret_access_key="test",
                               region_name="us-east-1")  # fmt: skip
    async with session.client("kinesis", endpoint_url=url) as client:
        await client.create_stream(StreamName="bare", ShardCount=4)
        await client.get_waiter("stream_exists").wait(
            StreamName="bare", WaiterConfig={"Delay": 0.2}
        )
        started = time.perf_counter()
        for call in calls:
            await client.put_records(StreamName="bare", Records=call)
        return time.perf_counter() - started


async def through_sink(url: str, records: int) -> tuple[float, int]:
    seconds = records // 100
    settings = load_settings(
        {
            "streams": "air_quality", "metrics": {"enabled": False}, "log": {"level": "warning"},
            "backfill": {"enabled": True, "start": "2024-01-01T00:00:00",
                         "end": f"2024-01-01T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:"
                                f"{seconds % 60:02d}", "progress": "off"},
            "air_quality": {"sinks": "kinesis",
                            "rate": {"total_per_s": 100.0},
                            "faults": {"drop_rate": 0, "duplicate_rate": 0}},
            "sinks": {"kinesis": {"endpoint_url": url, "shards": 4,
                                  "streams": {"air_quality": "sink"},
                                  "access_key_id": "test",
                                  "secret_access_key": "test"}},
        }
    )  # fmt: skip
    metrics = Metrics()
    engine = Engine(settings, metrics)
    await engine.sinks["kinesis"].open()  # create the stream outside the timed part
    started = time.perf_counter()
    outcome = await engine.run(Stopper())
    elapsed = time.perf_counter() - started
    labels = {"stream": "air_quality", "sink": "kinesis"}
    if outcome.exit_code != 0:
        failed = {
            s.labels["reason"]: s.value
            for f in metrics.registry.collect() if f.name == "synthstream_records_failed"
            for s in f.samples if s.name.endswith("_total")
        }  # fmt: skip
        raise SystemExit(f"the sink left records undelivered: {failed}")
    return elapsed, int(metrics.value("synthstream_records_delivered_total", labels))


def main() -> None:
    logs.configure(LogSettings(level="error", format="json"))
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    calls = payloads(records)
    # Each in a fresh LocalStack: kinesis-mock slows down as it fills.
    with localstack() as url:
        bare_s = uvloop.run(bare(url, calls))
    with localstack() as url:
        sink_s, delivered = uvloop.run(through_sink(url, records))
    bare_rate, sink_rate = records / bare_s, delivered / sink_s
    print("kinesis sink vs bare aioboto3 PutRecords loop, LocalStack on loopback")
    print(f"{'records':>9} {'bare rec/s':>11} {'sink rec/s':>11} {'ratio':>6}")
    print(f"{records:>9,} {bare_rate:>11,.0f} {sink_rate:>11,.0f} {sink_rate / bare_rate:>6.2f}")
    print("target: sink >= 0.9 x bare loop")


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
