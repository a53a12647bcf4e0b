"""Change data capture (``producer.cdc``): a spec's entities read as a table become changes in
the Debezium envelope. Each key's history is a valid one (a snapshot or a create first, a
delete only of a row that exists, ``before`` always the row as it was), the same in any
chunking and in shards; applied to a real PostgreSQL, each table equals the state replayed
from the change records, and the same records read back from Kafka (keyed by the primary
key, a tombstone after each delete) replay to the same state."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from producer.config import load_settings
from producer.encoding import encode_jsonl
from producer.records import RecordBatch
from producer.streams import build_stream
from tests.services import kafka_broker, postgres
from tests.test_end_to_end import log_events
from tests.test_kafka import consume

ROOT = Path(__file__).resolve().parent.parent
CUSTOMERS = ROOT / "examples" / "specs" / "customers.yaml"
T0 = round(datetime(2024, 2, 20, tzinfo=UTC).timestamp() * 1000)  # over a leap day
HOUR, DAY = 3_600_000, 86_400_000
Change = dict[str, Any]
KEY = "customer_id"


def changes(end: int, steps: list[int], shard: str = "0/1", spec: Path = CUSTOMERS,
            entities: int = 400) -> list[Change]:  # fmt: skip
    """The customers' changes over [T0, end), advanced in ``steps`` (repeating the last)."""
    path = Path(tempfile.mkdtemp()) / spec.name
    path.write_text(spec.read_text().replace("count: 1000", f"count: {entities}"))
    overrides: dict[str, object] = {"specs": [str(path)], "seed": 3, "shard": shard}
    stream = build_stream("customers", load_settings(overrides, environ={}))
    made, t, i = [], T0, 0
    while t < end:
        step = steps[min(i, len(steps) - 1)]
        made += list(stream.source.advance(t, min(t + step, end), None).values())
        t, i = min(t + step, end), i + 1
    batch = RecordBatch.concat(made)
    schema = stream.source.channels["customers"]
    return [orjson.loads(line) for line in encode_jsonl(schema, batch).splitlines()]


def replay(records: list[Change | None], keys: list[str] | None = None) -> dict[str, Change]:
    """The table a consumer builds from change records (None: a tombstone)."""
    state: dict[str, Change] = {}
    for record in records:
        if record is None:
            continue
        row = record["after"] or record["before"]
        if record["op"] == "d":
            state.pop(row[KEY], None)
        else:
            state[row[KEY]] = record["after"]
    return state


def test_every_key_has_a_valid_history_whose_befores_are_its_rows() -> None:
    history = changes(T0 + 60 * DAY, [7 * DAY])
    ops = Counter(c["op"] for c in history)
    assert all(ops[op] > 0 for op in "rcud"), ops
    last: dict[str, Change | None] = {}
    seq: dict[str, int] = {}
    snapshot_over = False
    for change in history:
        row = change["after"] or change["before"]
        key = row[KEY]
        assert change["source"] == {
            "connector": "synthstream",
            "stream": "customers",
            "table": "customers",
            "seq": seq.get(key, 0) + 1,
            "ts_ms": change["ts_ms"],
            "snapshot": change["op"] == "r",
        }
        seq[key] = change["source"]["seq"]
        if change["op"] == "r":
            assert not snapshot_over, "the snapshot opens the run"
            assert change["ts_ms"] == T0
            assert change["before"] is None
            assert key not in last
        else:
            snapshot_over = True
            assert change["before"] == last.get(key), "before is the row as it was"
        if change["op"] == "c":
            assert last.get(key) is None
        if change["op"] == "u":
            assert change["before"] is not None
            before = {k: v for k, v in change["before"].items() if k != "timestamp"}
            after = {k: v for k, v in change["after"].items() if k != "timestamp"}
            assert before != after, "an update changes the row"
        if change["op"] == "d":
            assert change["after"] is None
            assert change["before"]["status"] in ("active", "dormant")
        else:
            assert change["after"]["status"] != "closed", "a closed customer has no row"
            assert change["after"]["timestamp"] == datetime.fromtimestamp(
                change["ts_ms"] / 1000, UTC
            ).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        last[key] = change["after"]


def test_changes_are_the_same_in_any_chunking_and_shards_partition_them() -> None:
    end = T0 + 20 * DAY
    whole = changes(end, [20 * DAY])
    assert changes(end, [HOUR]) == whole
    assert changes(end, [1000, 60_000, DAY]) == whole
    shards = [changes(end, [3 * DAY], shard=f"{i}/3") for i in range(3)]
    assert sorted(c["message_id"] for s in shards for c in s) == sorted(
        c["message_id"] for c in whole
    )
    by_id = {c["message_id"]: c for c in whole}
    assert all(by_id[c["message_id"]] == c for s in shards for c in s)


# ------------------------------------------------------------------ real PostgreSQL and Kafka
def run(env: dict[str, str], *args: str, spec: Path = CUSTOMERS) -> dict[str, Any]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")}
    full.update({"SYNTHSTREAM_LOG__FORMAT": "json", **env})
    result = subprocess.run(
        [sys.executable, "-m", "producer", "run", "--metrics-port", "0", "--progress", "off",
         "--spec", str(spec), *args],
        capture_output=True, text=True, env=full, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return log_events(result.stderr)


def table(dsn: str, name: str) -> dict[str, Change]:
    with psycopg.connect(dsn) as connection:
        cursor = connection.execute(f'SELECT * FROM "{name}"')
        names = [d.name for d in cursor.description or []]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        stamp = row["timestamp"].astimezone(UTC).isoformat(timespec="milliseconds")
        row["timestamp"] = stamp.replace("+00:00", "Z")
    return {row[KEY]: row for row in rows}


async def read_topic(bootstrap: str, topic: str, delivered: int) -> list[Any]:
    """Every message of the topic: the changes and their tombstones (one after each delete,
    in its partition, so reading stops once both are in)."""
    messages = await consume(bootstrap, topic, delivered)
    for _ in range(5):
        tombstones = sum(m.value is None for m in messages)
        if len(messages) == delivered + tombstones:
            break
        messages = await consume(bootstrap, topic, delivered + tombstones)
    return messages


@pytest.mark.services
def test_a_backfill_applied_to_postgres_equals_the_replayed_changes_and_kafka_replays_it(
    tmp_path: Path,
) -> None:
    with postgres() as (_psql, port), kafka_broker() as bootstrap:
        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        env = {"SYNTHSTREAM_SINKS__POSTGRES__DSN": dsn,
               "SYNTHSTREAM_SINKS__POSTGRES__MAX_RECORDS": "700",  # several sends a key
               "SYNTHSTREAM_SINKS__KAFKA__BOOTSTRAP_SERVERS": bootstrap,
               "SYNTHSTREAM_OUT": str(tmp_path / "out")}  # fmt: skip
        # Tables lose no change unless asked: with some lost, the table is what was delivered.
        spec = tmp_path / "customers.yaml"
        spec.write_text(CUSTOMERS.read_text() + "    faults: {cdc_drop_rate: 0.002}\n")
        events = run(env, "--sinks", "postgres,kafka,file", "--backfill", "--start",
                     "2024-02-01", "--end", "2024-03-15", spec=spec)  # fmt: skip
        counts = events["synthstream_finished"]["streams"]["customers"]
        delivered = {sink: c["delivered"] for sink, c in counts["sinks"].items()}
        assert counts["dropped_by_fault"] > 0
        assert counts["duplicated_by_fault"] > 0
        assert len(set(delivered.values())) == 1, delivered
        records = [orjson.loads(line) for f in sorted((tmp_path / "out").rglob("*.jsonl"))
                   for line in f.read_bytes().splitlines()]  # fmt: skip
        assert len(records) == delivered["file"]
        expected = replay(records)
        held = table(dsn, "customers")
        assert held == expected, "the table is the state the changes say"
        assert {"r", "c", "u", "d"} <= {r["op"] for r in records}
        messages = asyncio.run(read_topic(bootstrap, "customers", delivered["kafka"]))
        consumer = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "cdc_replay.py"), "--bootstrap", bootstrap,
             "--topic", "customers"], capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert consumer.returncode == 0, consumer.stderr
    rows = [orjson.loads(line) for line in consumer.stdout.splitlines()]
    assert {row[KEY]: row for row in rows} == expected, "the example consumer builds the table"
    assert f"{delivered['kafka']:,} changes" in consumer.stderr
    values = [None if m.value is None else orjson.loads(m.value) for m in messages]
    assert sum(v is not None for v in values) == delivered["kafka"]
    for m, value in zip(messages, values, strict=True):
        row = None if value is None else value["after"] or value["before"]
        assert row is None or m.key.decode() == row[KEY], "keyed by the primary key"
    by_partition: dict[int, list[Any]] = {}
    for m, value in zip(messages, values, strict=True):
        by_partition.setdefault(m.partition, []).append((m.key, value))
    for part in by_partition.values():
        for i, (key, value) in enumerate(part):
            if value is not None and value["op"] == "d":
                assert part[i + 1] == (key, None), "a tombstone follows each delete"
    assert replay(values) == expected, "the topic replays to the same table"
