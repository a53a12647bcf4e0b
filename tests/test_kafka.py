"""The kafka sink against a real Kafka-protocol broker (Tansu) on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from producer.app import Engine
from producer.clock import Stopper
from producer.config import load_settings
from producer.metrics import Metrics
from tests.conftest import cli, next_event
from tests.services import free_port, kafka_broker
from tests.test_end_to_end import delivered_series, log_events, scrape_until

pytestmark = pytest.mark.services  # a real server (scripts/ start it)


def settings(bootstrap: str, topic: str) -> Any:
    return load_settings(
        {
            "metrics": {"enabled": False},
            "backfill": {"enabled": True, "start": "2024-05-01T00:00:00",
                         "end": "2024-05-01T00:00:50", "progress": "off"},
            "bme280": {"devices": 20, "sinks": "kafka", "rate": {"interval_s": 1},
                       "faults": {"drop_rate": 0.01, "duplicate_rate": 0.02}},
            "sinks": {"kafka": {"bootstrap_servers": bootstrap, "topics": {"bme280": topic}}},
        }
    )  # fmt: skip


async def consume(bootstrap: str, topic: str, expected: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        fetch_max_wait_ms=50, enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    messages: list[Any] = []
    try:
        empty_polls = 0
        while len(messages) < expected and empty_polls < 40:
            batch = await consumer.getmany(timeout_ms=250)
            got = [m for part in batch.values() for m in part]
            empty_polls = 0 if got else empty_polls + 1
            messages += got
    finally:
        await consumer.stop()
    return messages


async def test_every_record_lands_keyed_with_headers_in_per_device_order() -> None:
    with kafka_broker() as bootstrap:
        metrics = Metrics()
        outcome = await Engine(settings(bootstrap, "bme280-a"), metrics).run(Stopper())
        assert outcome.exit_code == 0
        labels = {"stream": "bme280"}
        generated = metrics.value("synthstream_records_generated_total", labels)
        dropped = metrics.value("synthstream_records_dropped_by_fault_total", labels)
        duplicated = metrics.value("synthstream_records_duplicated_by_fault_total", labels)
        messages = await consume(bootstrap, "bme280-a", int(generated - dropped))
    assert len(messages) == generated - dropped
    assert dropped > 0
    assert duplicated > 0
    rows = [orjson.loads(m.value) for m in messages]
    assert sum(r["is_duplicate"] for r in rows) == duplicated
    partitions: dict[bytes, set[int]] = {}
    last: dict[tuple[int, bytes], int] = {}
    for message, row in zip(messages, rows, strict=True):
        assert message.key == row["device_id"].encode()
        headers = dict(message.headers)
        assert headers["message_id"] == row["message_id"].encode()
        assert headers["is_duplicate"] == (b"true" if row["is_duplicate"] else b"false")
        partitions.setdefault(message.key, set()).add(message.partition)
        slot = (message.partition, message.key)
        assert message.timestamp >= last.get(slot, 0), "a device's readings in order"
        last[slot] = message.timestamp
    assert all(len(p) == 1 for p in partitions.values()), "one partition per key"
    assert len({m.partition for m in messages}) > 1, "keys spread over the partitions"


def test_check_reports_the_broker_and_only_looks_at_the_topics() -> None:
    with kafka_broker() as bootstrap:
        env = {"SYNTHSTREAM_SINKS__KAFKA__BOOTSTRAP_SERVERS": bootstrap,
               "SYNTHSTREAM_SINKS__KAFKA__TOPICS": '{"bme280": "only-looked-at"}'}  # fmt: skip
        for _ in range(2):  # a topic check does not find is still missing when it looks again
            ok = cli("check", "--sinks", "kafka", env=env)
            assert ok.returncode == 0, ok.stdout + ok.stderr
            assert "kafka: reachable" in ok.stdout
            assert "topics only-looked-at (only-looked-at: missing, a run creates it)" in ok.stdout
    nowhere = f"127.0.0.1:{free_port()}"
    down = cli("check", "--sinks", "kafka",
               env={"SYNTHSTREAM_SINKS__KAFKA__BOOTSTRAP_SERVERS": nowhere})  # fmt: skip
    assert down.returncode == 1
    assert (
        f"kafka: NOT reachable ({nowhere}: no broker answers); start it, or wait for it "
        "with --wait-for-sinks SECONDS; the address is SYNTHSTREAM_SINKS__KAFKA__"
        "BOOTSTRAP_SERVERS" in down.stdout
    )
    assert "AddressFamily" not in down.stdout
    assert down.stderr == "", "aiokafka's own line is not added"


def resilient_env(port: int, topic: str, interval_s: str) -> dict[str, str]:
    """A producer of 20 devices, no faults, that retries a missing broker for a long time."""
    return {
        **os.environ, "SYNTHSTREAM_LOG__FORMAT": "json",
        "SYNTHSTREAM_SINKS__KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
        "SYNTHSTREAM_SINKS__KAFKA__REQUEST_TIMEOUT_MS": "2000",
        "SYNTHSTREAM_SINKS__KAFKA__TOPICS": orjson.dumps({"bme280": topic}).decode(),
        "SYNTHSTREAM_BME280__DEVICES": "20", "SYNTHSTREAM_BME280__RATE__INTERVAL_S": interval_s,
        "SYNTHSTREAM_BME280__FAULTS__DROP_RATE": "0",
        "SYNTHSTREAM_BME280__FAULTS__DUPLICATE_RATE": "0",
        "SYNTHSTREAM_DELIVERY__BACKOFF_MAX_S": "0.3", "SYNTHSTREAM_DELIVERY__MAX_ATTEMPTS": "1000",
        "SYNTHSTREAM_DELIVERY__LINGER_S": "0",
    }  # fmt: skip


def test_broker_down_at_start_fails_fast_or_is_waited_for_and_loses_nothing() -> None:
    port = free_port()
    env = resilient_env(port, "bme280-late", interval_s="1")
    args = [sys.executable, "-m", "producer", "run", "--backfill", "--start",
            "2024-05-01T00:00:00", "--end", "2024-05-01T00:01:00", "--sinks", "kafka",
            "--metrics-port", "0", "--progress", "off"]  # fmt: skip
    down = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    assert down.returncode == 1
    assert down.stderr.strip().splitlines() == [down.stderr.strip()], "one line, no aiokafka"
    assert "kafka sink not reachable" in down.stderr
    producer = subprocess.Popen(
        [*args, "--wait-for-sinks", "120"],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
    )  # fmt: skip
    try:
        assert producer.stderr is not None
        next_event(producer.stderr, "sink_unreachable")  # the producer says it waits
        with kafka_broker(port) as bootstrap:
            _, err = producer.communicate(timeout=120)
            messages = asyncio.run(consume(bootstrap, "bme280-late", 1200))
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.communicate()
    assert producer.returncode == 0, err
    summary = log_events(err)["synthstream_finished"]["streams"]["bme280"]
    assert summary["generated"] == 1200
    assert summary["sinks"]["kafka"]["delivered"] == 1200
    assert len({orjson.loads(m.value)["message_id"] for m in messages}) == 1200


def test_broker_gone_mid_stream_and_back_every_record_is_acknowledged() -> None:
    port = free_port()
    env = resilient_env(port, "bme280-restart", interval_s="0.1")
    with kafka_broker(port):
        producer = subprocess.Popen(
            [sys.executable, "-m", "producer", "run", "--duration", "8", "--sinks", "kafka",
             "--metrics-port", "0"],
            stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
        )  # fmt: skip
        assert producer.stderr is not None
        metrics_port = next_event(producer.stderr, "synthstream_started")["metrics_port"]
        scrape_until(metrics_port, delivered_series("kafka"), 200)  # records flow
    try:
        # The broker is gone now; wait for the producer to notice, then bring it back.
        next_event(producer.stderr, "send_retry")
        with kafka_broker(port):
            _, err = producer.communicate(timeout=120)
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.communicate()
    assert producer.returncode == 0, err
    summary = log_events(err)["synthstream_finished"]["streams"]["bme280"]
    assert summary["sinks"]["kafka"]["delivered"] == summary["generated"]
    assert summary["sinks"]["kafka"]["failed"] == 0
    assert summary["generated"] > 1000
    # What the broker held before it went away is gone with it (Tansu keeps data in memory):
    # the claim here is the producer's, that every record was acknowledged by a broker.


async def test_ecommerce_topics_keyed_in_order_and_referentially_whole() -> None:
    """All five e-commerce topics: counts against the metrics, one partition per key, time
    order per key (so per user for transactions), and references that resolve."""
    channels = ("transactions", "user-events", "product-updates", "fraud-alerts",
                "analytics-results")  # fmt: skip
    with kafka_broker() as bootstrap:
        settings = load_settings(
            {
                "streams": "ecommerce", "metrics": {"enabled": False},
                "backfill": {"enabled": True, "start": "2024-05-01T12:00:00",
                             "end": "2024-05-01T12:10:00", "progress": "off"},
                "ecommerce": {"sinks": "kafka", "scenario": "fraud_testing",
                              "faults": {"drop_rate": 0, "duplicate_rate": 0.01}},
                "sinks": {"kafka": {"bootstrap_servers": bootstrap,
                                    "destination": "shop.{channel}"}},
            }
        )  # fmt: skip
        metrics = Metrics()
        outcome = await Engine(settings, metrics).run(Stopper())
        assert outcome.exit_code == 0
        topics: dict[str, list[Any]] = {}
        for channel in channels:
            generated = metrics.value("synthstream_records_generated_total", {"stream": channel})
            delivered = metrics.value(
                "synthstream_records_delivered_total", {"stream": channel, "sink": "kafka"}
            )
            assert delivered == generated > 0, channel
            topics[channel] = await consume(bootstrap, f"shop.{channel}", int(generated))
            assert len(topics[channel]) == generated, channel
    keys = {"transactions": "user_id", "user-events": "session_id",
            "product-updates": "product_id", "fraud-alerts": "transaction_id",
            "analytics-results": "metric_type"}  # fmt: skip
    rows: dict[str, list[dict[str, Any]]] = {}
    for channel, messages in topics.items():
        rows[channel] = [orjson.loads(m.value) for m in messages]
        partitions: dict[bytes, set[int]] = {}
        last: dict[tuple[int, bytes], int] = {}
        for message, row in zip(messages, rows[channel], strict=True):
            assert message.key == str(row[keys[channel]]).encode()
            partitions.setdefault(message.key, set()).add(message.partition)
            slot = (message.partition, message.key)
            assert message.timestamp >= last.get(slot, 0), f"{channel}: a key's records in order"
            last[slot] = message.timestamp
        assert all(len(p) == 1 for p in partitions.values()), channel
    # References resolve: users and products exist, every transaction is a session's purchase
    # event, every alert is about a fraudulent transaction that came before it.
    purchases = {
        r["transaction_id"]: (r["user_id"], r["session_id"], r["timestamp"])
        for r in rows["user-events"] if r["event_type"] == "purchase"
    }  # fmt: skip
    fraud = {}
    for txn in rows["transactions"]:
        assert 1 <= int(txn["user_id"][5:]) <= 10_000
        assert all(1 <= int(p["product_id"][5:]) <= 1_000 for p in txn["products"])
        assert purchases[txn["transaction_id"]] == (txn["user_id"], txn["session_id"],
                                                    txn["timestamp"])  # fmt: skip
        if txn["is_fraud"]:
            fraud[txn["transaction_id"]] = txn
    assert len(fraud) > 50
    for alert in rows["fraud-alerts"]:
        txn = fraud[alert["transaction_id"]]
        assert alert["fraud_type"] == txn["fraud_pattern"]
        assert alert["timestamp"] > txn["timestamp"] == alert["transaction_timestamp"]


async def test_incident_lifecycles_keyed_by_number_in_order() -> None:
    with kafka_broker() as bootstrap:
        settings = load_settings(
            {
                "streams": "incidents", "metrics": {"enabled": False},
                "backfill": {"enabled": True, "start": "2024-05-01T00:00:00",
                             "end": "2024-05-02T00:00:00", "progress": "off"},
                "incidents": {"sinks": "kafka", "incidents_per_hour": 60,
                              "faults": {"drop_rate": 0, "duplicate_rate": 0}},
                "sinks": {"kafka": {"bootstrap_servers": bootstrap}},
            }
        )  # fmt: skip
        metrics = Metrics()
        assert (await Engine(settings, metrics).run(Stopper())).exit_code == 0
        generated = metrics.value("synthstream_records_generated_total", {"stream": "incidents"})
        messages = await consume(bootstrap, "incidents", int(generated))
    assert len(messages) == generated > 1000
    stages = ("REPORTED", "DISPATCHED", "ON_SCENE", "RESOLVED", "CANCELLED")
    partition: dict[bytes, int] = {}
    last: dict[bytes, int] = {}
    for message in messages:
        event = orjson.loads(message.value)
        assert message.key == event["incident_number"].encode()
        assert partition.setdefault(message.key, message.partition) == message.partition
        stage = stages.index(event["event_type"])
        assert stage >= last.get(message.key, -1), "an incident's events in lifecycle order"
        last[message.key] = stage


def test_with_the_broker_gone_a_stop_ends_in_time_and_quietly() -> None:
    """The broker goes away for good; SIGTERM: the run ends within the shutdown deadline,
    the grace for sends under way and the bounded close, in a few lines, not thousands."""
    port = free_port()
    env = resilient_env(port, "bme280-gone", interval_s="0.1")
    env["SYNTHSTREAM_DELIVERY__SHUTDOWN_TIMEOUT_S"] = "3"
    with kafka_broker(port):
        producer = subprocess.Popen(
            [sys.executable, "-m", "producer", "run", "--sinks", "kafka", "--metrics-port", "0"],
            stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
        )  # fmt: skip
        assert producer.stderr is not None
        metrics_port = next_event(producer.stderr, "synthstream_started")["metrics_port"]
        scrape_until(metrics_port, delivered_series("kafka"), 200)  # records flow
    try:
        next_event(producer.stderr, "send_retry")  # it noticed; it goes on retrying
        signalled = time.monotonic()
        producer.send_signal(signal.SIGTERM)
        _, err = producer.communicate(timeout=60)
        took = time.monotonic() - signalled
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.communicate()
    # deadline 3 s + 2 s for sends under way + 3 s for queued acknowledgements + 5 s close
    assert took < 3 + 2 + 3 + 5, f"took {took:.1f} s"
    assert producer.returncode == 1, "records were left undelivered"
    lines = err.splitlines()
    assert len(lines) < 40, f"{len(lines)} lines: repeats are counted, not printed"
    summary = log_events(err)["synthstream_finished"]["streams"]["bme280"]
    sink = summary["sinks"]["kafka"]
    assert summary["generated"] == sink["delivered"] + sink["failed"] + sink["in_flight"]
