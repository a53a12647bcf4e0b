"""Records per second into S3 (LocalStack on loopback) through the s3 sink, next to a bare
aioboto3 PutObject loop, in one run against one LocalStack.

The sink: ``synthstream run --sinks s3`` backfilling 1,000 BME280 devices at 1 s for 20
minutes of event time (1.2 M records, JSON lines, 100,000 records an object; the engine's
own elapsed time, start-up left out). The bare loop: the same stream's records (made
beforehand), encoded to JSON lines in the loop, 100,000 a body, put one after another with
aioboto3: what a minimal client of the same library does. Each under a fresh prefix; the
better of two runs each, taken in turn. Target (#19): the sink close to the bare loop.

    python -m bench.s3
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import aioboto3
import orjson

from producer.config import load_settings
from producer.encoding import encode_jsonl
from producer.records import RecordBatch, Schema
from producer.streams import build_stream
from tests.services import localstack

START, MINUTES, PER_OBJECT = "2024-05-01T00:00:00", 20, 100_000
ENV = {"SYNTHSTREAM_BME280__DEVICES": "1000", "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "1"}
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def through_the_sink(url: str, prefix: str) -> tuple[int, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")}
    env.update({**ENV, "SYNTHSTREAM_LOG__FORMAT": "json",
                "SYNTHSTREAM_SINKS__S3__ENDPOINT_URL": url,
                "SYNTHSTREAM_SINKS__S3__ACCESS_KEY_ID": "test",
                "SYNTHSTREAM_SINKS__S3__SECRET_ACCESS_KEY": "test",
                "SYNTHSTREAM_SINKS__S3__CREATE_BUCKET": "true",
                "SYNTHSTREAM_SINKS__S3__PREFIX": prefix})  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "producer", "run", "--sinks", "s3", "--backfill", "--start",
         START, "--end", f"2024-05-01T00:{MINUTES:02d}:00", "--metrics-port", "0",
         "--progress", "off"], capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    finished = orjson.loads(out.stderr.strip().splitlines()[-1])
    return finished["streams"]["bme280"]["sinks"]["s3"]["delivered"], float(finished["elapsed_s"])


def batches() -> tuple[Schema, list[RecordBatch]]:
    tree = {"streams": ["bme280"], "bme280": {"devices": 1000, "rate": {"interval_s": 1}}}
    stream = build_stream("bme280", load_settings(tree, environ={}))
    schema = stream.source.channels["bme280"]
    start = round(datetime.fromisoformat(START).replace(tzinfo=UTC).timestamp() * 1000)
    whole = RecordBatch.concat(list(stream.source.advance(start, start + MINUTES * 60_000,
                                                          None).values()))  # fmt: skip
    return schema, [whole.take(slice(i, i + PER_OBJECT)) for i in range(0, len(whole), PER_OBJECT)]


async def bare(url: str, prefix: str, schema: Schema, parts: list[RecordBatch]
               ) -> tuple[int, float]:  # fmt: skip
    session = aioboto3.Session(region_name="us-east-1", **CREDENTIALS)
    async with session.client("s3", endpoint_url=url) as client:
        began = time.perf_counter()
        for i, part in enumerate(parts):
            await client.put_object(Bucket="synthstream", Key=f"{prefix}/part-{i}.jsonl",
                                    Body=encode_jsonl(schema, part))  # fmt: skip
        return sum(len(p) for p in parts), time.perf_counter() - began


def main() -> None:
    with localstack() as url:
        schema, parts = batches()
        sink_runs, bare_runs = [], []
        for i in range(2):
            sink_runs.append(through_the_sink(url, f"sink{i}"))
            bare_runs.append(asyncio.run(bare(url, f"bare{i}", schema, parts)))
        sink_n, sink_s = min(sink_runs, key=lambda r: r[1])
        bare_n, bare_s = min(bare_runs, key=lambda r: r[1])
        print(f"LocalStack S3 on loopback, BME280 1,000 devices x {MINUTES} min, "
              f"{PER_OBJECT:,} records an object, best of 2 each")  # fmt: skip
        print(f"{'path':<34} {'records':>10} {'seconds':>8} {'records/s':>10}")
        print(f"{'s3 sink (synthstream run)':<34} {sink_n:>10,} {sink_s:>8.2f} "
              f"{sink_n / sink_s:>10,.0f}")  # fmt: skip
        print(f"{'bare aioboto3 put_object loop':<34} {bare_n:>10,} {bare_s:>8.2f} "
              f"{bare_n / bare_s:>10,.0f}")  # fmt: skip
        print(
            f"sink / bare: {(sink_n / sink_s) / (bare_n / bare_s):.2f}x "
            "(both encode JSON lines in their time; the sink also generates the records)"
        )


if __name__ == "__main__":
    main()
