"""Rows per second into PostgreSQL through the postgres sink, next to a bare COPY loop, in
one run against one server (scripts/postgres, on loopback).

The sink: ``synthstream run --sinks postgres`` backfilling 1,000 BME280 devices at 1 s for
an hour of event time (3.6 M rows; the engine's own elapsed time, start-up left out). The
bare loop: the same stream's Arrow tables, made beforehand, each written as CSV by pyarrow
into ``COPY ... FROM STDIN`` with psycopg and committed, 10,000 rows a transaction: what a
minimal client of the same library does, with no engine, faults, metrics or accounting.
Each into a fresh table; the better of two runs each, taken in turn. Target (#19): the sink
at 0.8x the bare loop or better, and at least 100,000 rows/s.

    python -m bench.postgres
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
from producer.records import RecordBatch
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
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
