"""Kafka sink throughput against a real Kafka-protocol broker, next to a bare aiokafka loop.

Starts a Tansu broker (scripts/kafka-broker) and, in one run and one process, sends the same
e-commerce user events (keyed by session, with the sink's headers) two ways, each to a fresh
topic: (1) a bare aiokafka loop over pre-encoded messages, (2) the kafka sink, which turns
the record batches into JSON and headers itself and waits for every future. Both use the
sink's producer settings (acks=all, linger 5 ms, 1 MiB batches). Prints messages/s of both
and their ratio, best of three rounds each, alternating. Target: sink >= 0.8 x bare loop.

    python -m bench.kafka [RECORDS]
"""

from __future__ import annotations

import asyncio
import sys
import time

import uvloop
from aiokafka import AIOKafkaProducer

from producer.config import load_settings
from producer.encoding import json_documents
from producer.records import RecordBatch
from producer.streams import build_stream
from sinks.kafka import KafkaSink, KafkaSinkSettings
from tests.services import kafka_broker

T0 = 1_714_996_800_000


def batches(records: int) -> tuple[list[RecordBatch], object]:
    stream = build_stream("ecommerce", load_settings({"streams": "ecommerce"}, environ={}))
    out: list[RecordBatch] = []
    t, total = T0, 0
    while total < records:
        batch = stream.source.advance(t, t + 60_000, None).get("user-events")
        t += 60_000
        if batch is None:
            continue
        batch = batch.take(slice(0, records - total))
        for start in range(0, len(batch), 5000):  # the sink's default max_records
            out.append(batch.take(slice(start, start + 5000)))
        total += len(batch)
    return out, stream.source.channels["user-events"]


async def bare(bootstrap: str, topic: str, batches: list[RecordBatch], schema: object) -> float:
    messages = []
    for batch in batches:
        rows = schema.rows(batch)  # type: ignore[attr-defined]
        docs = json_documents(schema, batch, rows)  # type: ignore[arg-type]
        stamps, ids = batch.iso_times(), batch.message_ids()
        for i, row in enumerate(rows):
            headers = [("message_id", bytes(ids[i])), ("event_time", stamps[i].encode()),
                       ("is_duplicate", b"false")]  # fmt: skip
            messages.append((str(row["session_id"]).encode(), docs[i], headers,
                             int(batch.time_ms[i])))  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                max_batch_size=1_048_576)  # fmt: skip
    await producer.start()
    try:
        started = time.perf_counter()
        for chunk in range(0, len(messages), 5000):
            futures = [
                await producer.send(topic, value=v, key=k, headers=h, timestamp_ms=ts)
                for k, v, h, ts in messages[chunk : chunk + 5000]
            ]
            await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def sink(bootstrap: str, topic: str, batches: list[RecordBatch], schema: object) -> float:
    settings = KafkaSinkSettings(
        bootstrap_servers=bootstrap, create_topics=False, idempotence="off"
    )
    kafka = KafkaSink(settings, {"user-events": topic})
    await kafka.open()
    try:
        started = time.perf_counter()
        for batch in batches:
            await kafka.send(kafka.encode(batch, schema))  # type: ignore[arg-type]
        return time.perf_counter() - started
    finally:
        await kafka.aclose()


async def main(records: int) -> None:
    data, schema = batches(records)
    n = sum(len(b) for b in data)
    with kafka_broker() as bootstrap:
        await bare(bootstrap, "warmup", data[:2], schema)
        best = {"bare": float("inf"), "sink": float("inf")}
        for round_ in range(3):
            best["bare"] = min(best["bare"], await bare(bootstrap, f"bare{round_}", data, schema))
            best["sink"] = min(best["sink"], await sink(bootstrap, f"sink{round_}", data, schema))
    print(f"kafka: {n:,} user events to a Tansu broker on loopback, best of 3")
    print(f"  bare aiokafka loop (pre-encoded): {n / best['bare']:>10,.0f} msg/s")
    print(f"  kafka sink (encodes itself):      {n / best['sink']:>10,.0f} msg/s")
    print(f"  ratio sink / bare: {best['bare'] / best['sink']:.2f} (target >= 0.80)")


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
