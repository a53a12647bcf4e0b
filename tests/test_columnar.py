"""Columnar sinks get columns: the Arrow table of every channel is built from the batch's
columns, and holds what the JSON rows say, value for value, with faults that change
values, keys and timestamps on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.config import load_settings
from producer.faults import Faults
from producer.records import RecordBatch, Schema
from producer.settings import FaultSettings
from producer.streams import build_stream
from tests.test_calendar import STREAMS

# Faults that move values (anomalies, outliers, conflicts), keys (second sources), reported
# times (skew, date conflicts) and add copies; malformations exist in JSON only.
FAULTS = FaultSettings(
    duplicate_rate=0.05, clock_skew_rate=0.3, quality_issue_rate=0.2, sources=3,
    anomaly_rate=0.3,
)  # fmt: skip
# Black Friday 2024, New Year 2025, a DST change in Europe.
WINDOWS = [datetime(2024, 11, 29, 5), datetime(2024, 12, 31, 23), datetime(2024, 3, 31, 0)]


def oracle(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """What a JSON consumer reads (NaN is null there) as a table of ``schema``; timestamps
    come as ISO 8601 text."""
    as_text = pa.schema(
        [f.with_type(pa.string()) if pa.types.is_timestamp(f.type) else f for f in schema]
    )
    read = [orjson.loads(orjson.dumps(row)) for row in rows]
    return pa.Table.from_pylist(read, schema=as_text).cast(schema)


def channels(name: str, start: datetime, hours: int) -> dict[str, tuple[Schema, RecordBatch]]:
    tree = {"streams": name, "seed": 3, **STREAMS[name]}
    source = build_stream(name, load_settings(tree, environ={})).source
    t0 = round(start.replace(tzinfo=UTC).timestamp() * 1000)
    out = {}
    for channel, batch in source.advance(t0, t0 + hours * 3_600_000, None).items():
        schema = source.channels[channel]
        faulty = Faults(FAULTS, 17, schema).apply(batch, t0 + hours * 3_600_000).batch
        out[channel] = (schema, faulty)
    return out


@pytest.mark.parametrize("name", ["ecommerce", "incidents"])
@settings(max_examples=6, deadline=None)
@given(start=st.sampled_from(WINDOWS), hours=st.integers(1, 6))
def test_the_arrow_table_is_the_json_rows_built_from_columns(
    name: str, start: datetime, hours: int
) -> None:
    found = channels(name, start, hours)
    assert found, "the window has records"
    for channel, (schema, batch) in found.items():
        table = schema.table(batch)
        assert table.num_rows == len(batch)
        want = oracle(schema.rows(batch), table.schema)
        differ = [f.name for f in table.schema if not table[f.name].equals(want[f.name])]
        assert not differ, f"{channel}: columns unlike the rows: {differ}"
        assert table.equals(want)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_table_file_appears_whole_or_not_at_all(tmp_path: Path, fmt: str) -> None:
    from sinks.file import TableFile

    table = pa.table({"n": pa.array(range(10), pa.int64())})
    done = TableFile(tmp_path / f"done.{fmt}", table.schema, fmt)
    done.write(table)
    done.write(table)
    assert not (tmp_path / f"done.{fmt}").exists(), "no half file under its name"
    done.close()
    back = pq.read_table(done.path) if fmt == "parquet" else pacsv.read_csv(done.path)
    assert back["n"].to_pylist() == list(range(10)) * 2
    failed = TableFile(tmp_path / f"failed.{fmt}", table.schema, fmt)
    failed.write(table)
    failed.discard()  # a run that failed leaves nothing behind
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"done.{fmt}"]
