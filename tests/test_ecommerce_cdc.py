"""E-commerce's products table as change data capture (``SYNTHSTREAM_ECOMMERCE__CDC=true``,
``producer/domains/ecommerce/catalog.py``): a snapshot, an update at each product update, a
delete when a product is discontinued and a create when it is listed again; no session views
or buys a product that is not in the table at that moment. Applied to a real PostgreSQL, the
table equals the state the change records replay to."""

from __future__ import annotations

import os
import subprocess
import sys
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
from tests.services import postgres
from tests.test_end_to_end import log_events

T0 = round(datetime(2024, 2, 20, tzinfo=UTC).timestamp() * 1000)  # over a leap day, and
DAY = 86_400_000  # the 90-day slots' boundary of 2024-03-29
KEY = "product_id"
SMALL = {"products": 200, "transactions_per_hour": 15, "user_events_per_hour": 200,
         "product_updates_per_hour": 30, "users": 500}  # fmt: skip
Record = dict[str, Any]


def records(end: int, step: int, cdc: bool = True, shard: str = "0/1",
            channels: tuple[str, ...] = ("products",)) -> dict[str, list[Record]]:  # fmt: skip
    """The JSON records of ``channels`` over [T0, end), advanced ``step`` at a time (and
    which channels there were: their names, with no records)."""
    overrides: dict[str, object] = {"streams": ["ecommerce"], "seed": 5, "shard": shard,
                                    "ecommerce": {**SMALL, "cdc": cdc}}  # fmt: skip
    stream = build_stream("ecommerce", load_settings(overrides, environ={}))
    made: dict[str, list[RecordBatch]] = {}
    t = T0
    while t < end:
        for channel, batch in stream.source.advance(t, min(t + step, end), None).items():
            made.setdefault(channel, []).append(batch)
        t = min(t + step, end)
    return {
        channel: [orjson.loads(line) for line in encode_jsonl(
            stream.source.channels[channel], RecordBatch.concat(batches)).splitlines()]
        if channel in channels else []
        for channel, batches in made.items()
    }  # fmt: skip


def ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso).timestamp() * 1000)


def test_the_products_table_has_valid_histories_and_sessions_only_sell_listed_products() -> None:
    made = records(T0 + 50 * DAY, 10 * DAY, channels=("products", "transactions", "user-events"))
    changes = made["products"]
    ops = Counter(c["op"] for c in changes)
    assert all(ops[op] > 0 for op in "rcud"), ops
    assert ops["r"] < SMALL["products"], "a product off the catalog at the start has no row"
    last: dict[str, Record | None] = {}
    for change in changes:
        row = change["after"] or change["before"]
        key = row[KEY]
        assert change["before"] == last.get(key), "before is the row as it was"
        assert change["source"]["table"] == "products"
        assert (change["op"] == "r") == (change["ts_ms"] == T0) == change["source"]["snapshot"]
        if change["op"] in "rc":
            assert last.get(key) is None
        if change["op"] == "u":
            assert change["before"] is not None
        if change["op"] != "d":
            assert ms(change["after"]["timestamp"]) == change["ts_ms"]
        last[key] = change["after"]
    # Replayed in time order with the sales: every product viewed or bought is a row.
    listed: set[str] = set()
    timeline = [(c["ts_ms"], 0, c) for c in changes]
    timeline += [(ms(t["timestamp"]), 1, t) for t in made["transactions"]]
    timeline += [(ms(e["timestamp"]), 1, e) for e in made["user-events"] if e.get("product_id")]
    bought = 0
    for _t, kind, record in sorted(timeline, key=lambda x: (x[0], x[1])):
        if kind == 0:
            row = record["after"] or record["before"]
            (listed.discard if record["op"] == "d" else listed.add)(row[KEY])
            continue
        ids = [p["product_id"] for p in record.get("products", [])] or [record["product_id"]]
        assert set(ids) <= listed, (record, sorted(set(ids) - listed))
        bought += len(ids)
    assert bought > 500


def test_the_table_is_the_same_in_any_chunking_and_cdc_off_has_no_table() -> None:
    end = T0 + 40 * DAY
    whole = records(end, 40 * DAY)["products"]
    assert records(end, 3_600_000 * 29)["products"] == whole
    shards = [records(end, 40 * DAY, shard=f"{i}/2")["products"] for i in range(2)]
    assert sorted(c["message_id"] for s in shards for c in s) == sorted(
        c["message_id"] for c in whole
    )
    plain = records(T0 + DAY, DAY, cdc=False, channels=())
    assert "transactions" in plain
    assert "products" not in plain


@pytest.mark.services
def test_a_backfill_applied_to_postgres_gives_the_tables_the_changes_say(tmp_path: Path) -> None:
    with postgres() as (_psql, port):
        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")}
        env.update({"SYNTHSTREAM_LOG__FORMAT": "json", "SYNTHSTREAM_STREAMS": "ecommerce",
                    "SYNTHSTREAM_ECOMMERCE__SINKS": "postgres,file",
                    "SYNTHSTREAM_ECOMMERCE__CDC": "true",
                    "SYNTHSTREAM_SINKS__POSTGRES__DSN": dsn,
                    "SYNTHSTREAM_OUT": str(tmp_path / "out"),
                    **{f"SYNTHSTREAM_ECOMMERCE__{k.upper()}": str(v)
                       for k, v in SMALL.items()}})  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-m", "producer", "run", "--metrics-port", "0", "--progress",
             "off", "--backfill", "--start", "2024-03-01", "--end", "2024-04-20"],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        counts = log_events(result.stderr)["synthstream_finished"]["streams"]
        states = {table: replayed(tmp_path / "out", table, key, counts)
                  for table, key in (("products", KEY), ("users", "user_id"))}  # fmt: skip
        with psycopg.connect(dsn) as connection:
            tables: dict[str, list[Record]] = {}
            for table in states:
                cursor = connection.execute(f"SELECT * FROM {table}")
                names = [d.name for d in cursor.description or []]
                tables[table] = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            sold = connection.execute("SELECT count(*) FROM transactions").fetchone()
    for (table, state), key in zip(states.items(), (KEY, "user_id"), strict=True):
        rows = tables[table]
        for row in rows:
            for column in ("timestamp", "signed_up_at"):
                if column in row:
                    stamp = row[column].astimezone(UTC).isoformat(timespec="milliseconds")
                    row[column] = stamp.replace("+00:00", "Z")
        assert {row[key]: row for row in rows} == state, f"{table} is what the changes say"
    # A table's changes are not dropped by the default profile's drops: each seat has a row.
    assert counts["users"]["dropped_by_fault"] == 0 < counts["transactions"]["dropped_by_fault"]
    assert len(tables["users"]) == SMALL["users"]
    assert sold is not None
    assert sold[0] == counts["transactions"]["sinks"]["postgres"]["delivered"] > 0


def replayed(out: Path, table: str, key: str, counts: dict[str, Any]) -> dict[str, Record]:
    """A table's rows as its change records in ``out`` say, checking they are all there."""
    files = sorted(out.rglob(f"{table}*.jsonl"))
    changes = [orjson.loads(line) for f in files for line in f.read_bytes().splitlines()]
    assert len(changes) == counts[table]["sinks"]["file"]["delivered"] > 0
    assert {"r", "u", "d", "c"} <= {c["op"] for c in changes}, table
    state: dict[str, Record] = {}
    for change in changes:
        row = change["after"] or change["before"]
        if change["op"] == "d":
            state.pop(row[key], None)
        else:
            state[row[key]] = change["after"]
    return state


def test_products_are_off_the_catalog_as_often_at_a_slot_boundary_as_inside_a_slot() -> None:
    import numpy as np

    from producer.domains.ecommerce.catalog import SLOT_MS, Discontinued
    from producer.domains.ecommerce.shop import Products

    ids = np.arange(5_000)
    off = Discontinued(Products(5, ids.size)).off
    slot = T0 // SLOT_MS
    edges = [off(ids, np.full(ids.size, (slot + k) * SLOT_MS - 1)).mean() for k in range(1, 5)]
    middles = [off(ids, np.full(ids.size, (slot + k) * SLOT_MS + SLOT_MS // 2)).mean()
               for k in range(4)]  # fmt: skip
    # 5 % a slot, 37 days on average: about 2 % of the catalog is off at any moment.
    assert all(0.01 < share < 0.035 for share in edges + middles), (edges, middles)
