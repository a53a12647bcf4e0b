"""Rows per second into PostgreSQL through the postgres sink, next to a bare COPY loop, in
one run against one server (scripts/postgres, on loopback).

The sink: ``synthstream run --sinks postgres`` backfilling 1,000 BME280 devices at 1 s for
an hour of event time (3.6 M rows; the engine's own elapsed time, start-up left out). The
bare loop: the same stream's Arrow tables, made beforehand, each written as CSV by pyarrow
into ``COPY ... FROM STDIN`` with psycopg and committed, 10,000 rows a transaction: what a
minimal client of the same library does, with no engine, faults, metrics or accounting.
Each into a fresh table; the better of two runs each, taken in turn. Target (#19): the sink
at 0.8x the bare loop or better, and at least 100,000 rows/s.

Changes (CDC): the customers example (``examples/specs/customers.yaml``) with 20,000
customers over two weeks: its snapshot, then creates, updates and deletes, applied to a table
with a primary key, both from the same change batches made beforehand. The sink's own send
path in this process, 10,000 changes a send (each send upserts every key's last row through COPY
into a temporary table and ``INSERT ... ON CONFLICT``, and deletes the keys whose last change
is a delete); the bare loop, what a minimal consumer does: each change in order as an
``INSERT ... ON CONFLICT (key) DO UPDATE`` or a ``DELETE`` (psycopg's ``executemany``, in
pipeline mode), 10,000 changes a transaction. Both tables are compared at the end.

    python -m bench.postgres        # both
    python -m bench.postgres cdc    # changes only
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psycopg
import pyarrow as pa

from producer.config import load_settings
from producer.records import RecordBatch, Schema
from producer.streams import build_stream
from sinks.postgres import csv_bytes, flat, quoted, sql_type

ROOT = Path(__file__).resolve().parent.parent
START, HOURS = "2024-05-01T00:00:00", 1
ENV = {"SYNTHSTREAM_BME280__DEVICES": "1000", "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "1"}
CHUNK = 10_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def through_the_sink(url: str, prefix: str) -> tuple[int, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")}
    env.update({**ENV, "SYNTHSTREAM_LOG__FORMAT": "json", "SYNTHSTREAM_SINKS__POSTGRES__DSN": url,
                "SYNTHSTREAM_SINKS__POSTGRES__TABLE_PREFIX": prefix})  # fmt: skip
    end = f"2024-05-01T{HOURS:02d}:00:00"
    out = subprocess.run(
        [sys.executable, "-m", "producer", "run", "--sinks", "postgres", "--backfill",
         "--start", START, "--end", end, "--metrics-port", "0", "--progress", "off"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    finished = orjson.loads(out.stderr.strip().splitlines()[-1])
    rows = finished["streams"]["bme280"]["sinks"]["postgres"]["delivered"]
    return rows, float(finished["elapsed_s"])


def tables() -> list[pa.Table]:
    tree = {"streams": ["bme280"], "bme280": {"devices": 1000, "rate": {"interval_s": 1}}}
    stream = build_stream("bme280", load_settings(tree, environ={}))
    schema = stream.source.channels["bme280"]
    start = round(datetime.fromisoformat(START).replace(tzinfo=UTC).timestamp() * 1000)
    batches = [b for t in range(start, start + HOURS * 3_600_000, 60_000)
               for b in stream.source.advance(t, t + 60_000, None).values()]  # fmt: skip
    whole = RecordBatch.concat(batches)
    return [schema.table(whole.take(slice(i, i + CHUNK))) for i in range(0, len(whole), CHUNK)]


def bare(url: str, table: str, chunks: list[pa.Table]) -> tuple[int, float]:
    with psycopg.connect(url) as connection:
        first = flat(chunks[0])
        columns = ", ".join(f"{quoted(f.name)} {sql_type(f.type)}" for f in first.schema)
        connection.execute(f"CREATE TABLE {quoted(table)} ({columns})")
        connection.commit()
        names = ", ".join(quoted(c) for c in first.column_names)
        began = time.perf_counter()
        rows = 0
        for chunk in chunks:
            data = flat(chunk)
            sql = f"COPY {quoted(table)} ({names}) FROM STDIN (FORMAT csv, HEADER true)"
            with connection.cursor() as cursor, cursor.copy(sql) as copy:
                copy.write(csv_bytes(data))
            connection.commit()
            rows += data.num_rows
        return rows, time.perf_counter() - began


CUSTOMERS = ROOT / "examples" / "specs" / "customers.yaml"
CDC_START, CDC_END = "2024-02-01", "2024-02-15"
CDC_COUNT = 20_000


def customers_spec() -> Path:
    path = Path(tempfile.mkdtemp(prefix="synthstream-bench-")) / "customers.yaml"
    path.write_text(CUSTOMERS.read_text().replace("count: 1000", f"count: {CDC_COUNT}"))
    return path


def change_batches(spec: Path) -> tuple[list[RecordBatch], Schema]:
    """The run's changes, as the engine hands them to sinks (faults on, as in a run), in
    sends of ``CHUNK``."""
    stream = build_stream("customers", load_settings({"specs": [str(spec)]}, environ={}))
    t0 = round(datetime.fromisoformat(CDC_START).replace(tzinfo=UTC).timestamp() * 1000)
    t1 = round(datetime.fromisoformat(CDC_END).replace(tzinfo=UTC).timestamp() * 1000)
    channel = stream.channels[0]
    made = []
    for t in range(t0, t1, 86_400_000):
        batch = stream.source.advance(t, t + 86_400_000, None).get("customers")
        if batch is not None and len(batch):
            made.append(channel.faults.apply(batch, t + 86_400_000).batch)
    flushed = channel.faults.apply(None, 2**62).batch
    if len(flushed):
        made.append(flushed)
    whole = RecordBatch.concat(made)
    sends = [whole.take(slice(i, i + CHUNK)) for i in range(0, len(whole), CHUNK)]
    return sends, stream.source.channels["customers"]


def changes_through_the_sink(url: str, prefix: str, sends: list[RecordBatch],
                             schema: Schema) -> tuple[int, float]:  # fmt: skip
    """The postgres sink's own path (each send one transaction: the keys' last rows upserted
    through COPY into a temporary table, the deleted keys deleted), in this process."""
    import asyncio

    from sinks.postgres import PostgresSink, PostgresSinkSettings

    async def go() -> float:
        sink = PostgresSink(PostgresSinkSettings(dsn=url, table_prefix=prefix),
                            {"customers": "customers"})  # fmt: skip
        began = time.perf_counter()
        for batch in sends:
            await sink.send(sink.encode(batch, schema))
        elapsed = time.perf_counter() - began
        await sink.aclose()
        return elapsed

    return sum(len(b) for b in sends), asyncio.run(go())


def change_rows(sends: list[RecordBatch], schema: Schema) -> list[dict[str, object]]:
    from producer.encoding import encode_jsonl

    return [orjson.loads(line) for b in sends for line in encode_jsonl(schema, b).splitlines()]


def bare_changes(url: str, table: str, changes: list[dict[str, object]],
                 arrow: pa.Schema) -> tuple[int, float]:  # fmt: skip
    key = "customer_id"
    columns = [f.name for f in arrow]
    with psycopg.connect(url) as connection:
        defs = ", ".join(f"{quoted(f.name)} {sql_type(f.type)}" for f in arrow)
        connection.execute(f"CREATE TABLE {quoted(table)} ({defs}, PRIMARY KEY ({key}))")
        connection.commit()
        names = ", ".join(quoted(c) for c in columns)
        marks = ", ".join(["%s"] * len(columns))
        update = ", ".join(f"{quoted(c)} = EXCLUDED.{quoted(c)}" for c in columns if c != key)
        upsert = (f"INSERT INTO {quoted(table)} ({names}) VALUES ({marks}) "
                  f"ON CONFLICT ({key}) DO UPDATE SET {update}")  # fmt: skip
        delete = f"DELETE FROM {quoted(table)} WHERE {key} = %s"
        began = time.perf_counter()
        for i in range(0, len(changes), CHUNK):
            with connection.cursor() as cursor, connection.pipeline():
                for change in changes[i : i + CHUNK]:
                    if change["op"] == "d":
                        cursor.execute(delete, (change["before"][key],))  # type: ignore[index]
                    else:
                        row = change["after"]
                        cursor.execute(upsert, [row[c] for c in columns])  # type: ignore[index]
            connection.commit()
        return len(changes), time.perf_counter() - began


def same_table(url: str, a: str, b: str) -> bool:
    with psycopg.connect(url) as connection:
        diff = connection.execute(f"SELECT count(*) FROM ((TABLE {quoted(a)} EXCEPT TABLE "
                                  f"{quoted(b)}) UNION ALL (TABLE {quoted(b)} EXCEPT TABLE "
                                  f"{quoted(a)})) d").fetchone()  # fmt: skip
        size = connection.execute(f"SELECT count(*) FROM {quoted(a)}").fetchone()
    return diff is not None and diff[0] == 0 and size is not None and size[0] > 0


def cdc(url: str) -> None:
    spec = customers_spec()
    generating = time.perf_counter()
    sends, schema = change_batches(spec)
    generating = time.perf_counter() - generating
    changes = change_rows(sends, schema)
    arrow = schema.row_arrow  # type: ignore[attr-defined]
    sink_runs, bare_runs = [], []
    for i in range(2):
        sink_runs.append(changes_through_the_sink(url, f"cdc{i}_", sends, schema))
        bare_runs.append(bare_changes(url, f"bare_cdc{i}", changes, arrow))
    sink_rows, sink_s = min(sink_runs, key=lambda r: r[1])
    bare_rows, bare_s = min(bare_runs, key=lambda r: r[1])
    print(
        f"\nChanges: customers example, {CDC_COUNT:,} rows, {CDC_START} .. {CDC_END}, best "
        f"of 2 each (made beforehand in {generating:.1f} s: each customer is looked at hourly "
        "and most looks change nothing)"
    )
    print(f"{'path':<34} {'changes':>10} {'seconds':>8} {'changes/s':>10}")
    print(f"{'postgres sink (its send path)':<34} {sink_rows:>10,} {sink_s:>8.2f} "
          f"{sink_rows / sink_s:>10,.0f}")  # fmt: skip
    print(f"{'bare upsert/delete per change':<34} {bare_rows:>10,} {bare_s:>8.2f} "
          f"{bare_rows / bare_s:>10,.0f}")  # fmt: skip
    ratio = (sink_rows / sink_s) / (bare_rows / bare_s)
    print(
        f"sink / bare: {ratio:.2f}x; the same changes: {sink_rows == bare_rows}; "
        f"the same table: {same_table(url, 'cdc0_customers', 'bare_cdc0')}"
    )


def main() -> None:
    port = free_port()
    folder = tempfile.mkdtemp(prefix="synthstream-bench-pg-")
    server = subprocess.Popen([str(ROOT / "scripts" / "postgres"), "start", folder, str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)  # fmt: skip
    try:
        assert server.stdout is not None
        for line in server.stdout:
            if "ready to accept connections" in line:
                break
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        if sys.argv[1:] == ["cdc"]:
            cdc(url)
            return
        chunks = tables()
        sink_runs, bare_runs = [], []
        for i in range(2):
            sink_runs.append(through_the_sink(url, f"sink{i}_"))
            bare_runs.append(bare(url, f"bare{i}", chunks))
        sink_rows, sink_s = min(sink_runs, key=lambda r: r[1])
        bare_rows, bare_s = min(bare_runs, key=lambda r: r[1])
        with psycopg.connect(url) as connection:
            held = connection.execute("SELECT count(*) FROM sink0_bme280").fetchone()
        print(f"PostgreSQL on loopback, BME280 1,000 devices x {HOURS} h, best of 2 each")
        print(f"{'path':<34} {'rows':>10} {'seconds':>8} {'rows/s':>10}")
        print(f"{'postgres sink (synthstream run)':<34} {sink_rows:>10,} {sink_s:>8.2f} "
              f"{sink_rows / sink_s:>10,.0f}")  # fmt: skip
        print(f"{'bare COPY loop (pyarrow + psycopg)':<34} {bare_rows:>10,} {bare_s:>8.2f} "
              f"{bare_rows / bare_s:>10,.0f}")  # fmt: skip
        ratio = (sink_rows / sink_s) / (bare_rows / bare_s)
        print(
            f"sink / bare: {ratio:.2f}x (target >= 0.8x, and >= 100,000 rows/s); "
            f"rows in the table = delivered: {held is not None and held[0] == sink_runs[0][0]}"
        )
        cdc(url)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
