"""The calendar, swept: every built-in stream's backfill and the incident tables over windows
whose ends are drawn across years (New Year, 29 February, the daylight-saving changes of
northern and southern zones, month ends, anything in between), short and long.

Nothing here reads today's date: every window end is passed explicitly. The examples named
with ``@example`` are the edges users hit first; hypothesis draws more around them and
anywhere in 2019-2031 on each run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from producer.config import load_settings
from producer.domains.incidents import model as inc
from producer.domains.incidents.tables import Builder, Plan
from producer.encoding import encode_jsonl
from producer.records import RecordBatch
from producer.streams import build_stream

EDGES = [
    datetime(2024, 1, 1, tzinfo=UTC),  # New Year
    datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2024, 2, 29, 12, tzinfo=UTC),  # leap day
    datetime(2024, 3, 1, tzinfo=UTC),
    datetime(2028, 2, 29, 23, tzinfo=UTC),
    datetime(2024, 3, 10, 10, tzinfo=UTC),  # United States: clocks forward
    datetime(2024, 11, 3, 9, tzinfo=UTC),  # United States: clocks back
    datetime(2024, 3, 31, 1, tzinfo=UTC),  # Europe: forward
    datetime(2024, 10, 27, 1, tzinfo=UTC),  # Europe: back
    datetime(2024, 4, 6, 14, tzinfo=UTC),  # New Zealand: back (southern autumn)
    datetime(2024, 9, 28, 14, tzinfo=UTC),  # New Zealand: forward (southern spring)
    datetime(2024, 10, 5, 16, tzinfo=UTC),  # Sydney: forward
    datetime(2024, 4, 30, 23, 30, tzinfo=UTC),  # month ends
    datetime(2025, 1, 31, 23, 59, tzinfo=UTC),
]
window_ends = st.one_of(
    st.builds(
        lambda edge, shift: edge + timedelta(seconds=shift),
        st.sampled_from(EDGES),
        st.integers(-2 * 86_400, 2 * 86_400),
    ),
    st.datetimes(
        min_value=datetime(2019, 1, 1), max_value=datetime(2031, 1, 1), timezones=st.just(UTC)
    ),
)
SWEEP = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Each stream at a modest rate (the calendar, not the volume, is under test).
STREAMS: dict[str, dict[str, Any]] = {
    "bme280": {"bme280": {"devices": 5, "rate": {"interval_s": 60}}},
    "air_quality": {"air_quality": {"rate": {"total_per_s": 0.2}}},
    "ecommerce": {
        "ecommerce": {
            "users": 400,
            "products": 200,
            "transactions_per_hour": 120,
            "user_events_per_hour": 1_200,
            "scenario": "fraud_testing",
        }
    },
    "incidents": {"incidents": {"incidents_per_hour": 30}},
}


def ms(dt: datetime) -> int:
    return round(dt.timestamp() * 1000)


def backfill(name: str, start: int, end: int, chunk: int) -> dict[str, RecordBatch]:
    tree = {
        "streams": name,
        "seed": 11,
        "backfill": {
            "enabled": True,
            "start": datetime.fromtimestamp(start / 1000, UTC).isoformat(),
            "end": datetime.fromtimestamp(end / 1000, UTC).isoformat(),
        },
        **STREAMS[name],
    }
    stream = build_stream(name, load_settings(tree, environ={}))
    out: dict[str, list[RecordBatch]] = {}
    t = start
    while t < end:
        t1 = min(t + chunk, end)
        for channel, batch in stream.source.advance(t, t1, None).items():
            out.setdefault(channel, []).append(batch)
        t = t1
    return {ch: RecordBatch.concat(parts) for ch, parts in out.items()}


@SWEEP
@given(
    name=st.sampled_from(sorted(STREAMS)),
    end=window_ends,
    hours=st.sampled_from([0.02, 1, 5, 26, 75]),
    chunk_min=st.sampled_from([7, 60, 1_440]),
)
@example(name="ecommerce", end=EDGES[0], hours=26, chunk_min=60)
@example(name="air_quality", end=EDGES[9], hours=26, chunk_min=7)
@example(name="incidents", end=EDGES[0], hours=75, chunk_min=1_440)
@example(name="bme280", end=EDGES[2], hours=26, chunk_min=60)
def test_every_stream_backfills_any_window(
    name: str, end: datetime, hours: float, chunk_min: int
) -> None:
    """Every record lies in the window and encodes; a backfill ticked in other chunks gives
    the same records (what a live run, which ticks at its own pace, relies on)."""
    t1 = ms(end)
    t0 = t1 - round(hours * 3_600_000)
    whole = backfill(name, t0, t1, chunk_min * 60_000)
    for channel, batch in whole.items():
        if not len(batch):
            continue
        assert (batch.time_ms >= t0).all(), channel
        assert (batch.time_ms < t1).all(), channel
        schema = build_stream(
            name, load_settings({"streams": name, **STREAMS[name]}, environ={})
        ).source.channels[channel]
        lines = encode_jsonl(schema, batch).splitlines()
        assert len(lines) == len(batch)
        stamps = [orjson.loads(line)[schema.time_field] for line in lines[:50]]
        assert stamps == batch.iso_times()[:50]
    other = backfill(name, t0, t1, 17 * 60_000 + 1)
    assert sorted(whole) == sorted(other)
    for channel in whole:
        a, b = whole[channel], other[channel]
        assert sorted(a.message_ids().tolist()) == sorted(b.message_ids().tolist()), channel


@SWEEP
@given(
    end=window_ends,
    days=st.sampled_from([0.01, 1, 7, 90, 200, 400]),
    count=st.sampled_from([1, 37, 500, 3_000]),
)
@example(end=datetime(2024, 1, 1, tzinfo=UTC), days=1, count=100)
@example(end=datetime(2024, 1, 15, tzinfo=UTC), days=90, count=3_000)
@example(end=datetime(2025, 2, 1, tzinfo=UTC), days=90, count=3_000)
@example(end=datetime(2024, 6, 30, tzinfo=UTC), days=200, count=3_000)
@example(end=datetime(2026, 12, 1, 20, 20, tzinfo=UTC), days=90, count=3_000)
def test_incident_tables_on_any_window(end: datetime, days: float, count: int) -> None:
    """Exactly the count, reported within the window (or, to reach the count, just before
    it), every rule of the seed checked; units dispatched after the report and before the
    incident is over, cleared after their dispatch."""
    end_ms = ms(end)
    plan = Plan(
        count=count,
        start_ms=end_ms - round(days * 86_400_000),
        end_ms=end_ms,
        seed=3,
        city="San Diego",
        stations=25,
        options=inc.Options(),
        folder=Path("unused"),
    )
    builder = Builder(plan)
    chosen = builder.selection()
    assert sum(seq.size for _, seq in chosen) == count
    for year, seq in chosen:
        core = builder.model.incidents(year, seq)
        assert (core["reported"] < end_ms).all()
        assert (core["reported"] >= plan.start_ms - (end_ms - plan.start_ms)).all()
        status = inc.status_as_of(core, end_ms)
        table = builder.incidents(core, status)
        numbers = table["incident_number"].to_numpy(zero_copy_only=False)
        tables = {
            "incidents": table,
            "incident_units": builder.units(core, status, numbers),
            "incident_assets": builder.assets(core, status, numbers),
            "incident_notes": builder.notes(core, status, numbers),
        }
        builder.validate(tables, core)
        units = tables["incident_units"].join(
            table.select(["incident_number", "dispatch_at", "resolved_at"]), "incident_number"
        )
        col = {
            c: units[c].cast(pa.int64()).to_numpy(zero_copy_only=False).astype(float)
            for c in ("dispatched_at", "cleared_at", "dispatch_at", "resolved_at")
        }
        assert (col["dispatched_at"] >= col["dispatch_at"]).all()
        over = ~np.isnan(col["resolved_at"])
        assert (col["dispatched_at"][over] < col["resolved_at"][over]).all()
        cleared = ~np.isnan(col["cleared_at"])
        assert (col["cleared_at"][cleared] > col["dispatched_at"][cleared]).all()
