"""The incidents table as change data capture (``SYNTHSTREAM_INCIDENTS__CDC=true``): each
incident is created when reported and updated as it moves (dispatched with its units, on
scene, resolved with its outcome, or cancelled); applied to a real PostgreSQL, the table is
the state the changes replay to."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg

from producer.config import load_settings
from producer.encoding import encode_jsonl
from producer.records import RecordBatch
from producer.streams import build_stream
from tests.services import postgres
from tests.test_end_to_end import log_events

T0 = round(datetime(2024, 2, 28, tzinfo=UTC).timestamp() * 1000)  # over a leap day
DAY = 86_400_000
KEY = "incident_number"
NEXT = {None: {"REPORTED"}, "REPORTED": {"DISPATCHED"}, "DISPATCHED": {"ON_SCENE", "CANCELLED"},
        "ON_SCENE": {"RESOLVED"}}  # fmt: skip


def changes(end: int, step: int) -> list[dict[str, Any]]:
    overrides = {"streams": ["incidents"], "seed": 9, "incidents": {"cdc": True}}
    stream = build_stream("incidents", load_settings(overrides, environ={}))
    made, t = [], T0
    while t < end:
        made += list(stream.source.advance(t, min(t + step, end), None).values())
        t = min(t + step, end)
    schema = stream.source.channels["incidents"]
    return [orjson.loads(line)
            for line in encode_jsonl(schema, RecordBatch.concat(made)).splitlines()]  # fmt: skip


def test_each_incident_is_created_then_moves_through_its_lifecycle() -> None:
    history = changes(T0 + 3 * DAY, DAY)
    assert len({c["after"][KEY] for c in history}) > 100
    last: dict[str, Any] = {}
    for change in history:
        row = change["after"]
        assert row is not None, "an incident is never deleted"
        key = row[KEY]
        before = last.get(key)
        assert change["before"] == before
        assert change["op"] == ("c" if before is None else "u")
        assert row["status_code"] in NEXT[before and before["status_code"]]
        assert (row["units"] is not None) == (row["status_code"] != "REPORTED")
        if before is not None and before["units"] is not None:
            assert row["units"] == before["units"], "the units stay with the incident"
        assert (row["casualty_count"] is not None) == (row["status_code"] == "RESOLVED")
        last[key] = row
    assert changes(T0 + 3 * DAY, 3_600_000 * 5) == history


def test_a_backfill_applied_to_postgres_is_the_incidents_state(tmp_path: Path) -> None:
    with postgres() as (_psql, port):
        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")}
        env.update({"SYNTHSTREAM_LOG__FORMAT": "json", "SYNTHSTREAM_INCIDENTS__CDC": "true",
                    "SYNTHSTREAM_SINKS__POSTGRES__DSN": dsn,
                    "SYNTHSTREAM_SINKS__FILE__DIR": str(tmp_path / "out")})  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-m", "producer", "run", "--streams", "incidents", "--sinks",
             "postgres,file", "--metrics-port", "0", "--progress", "off", "--backfill",
             "--start", "2024-02-28", "--end", "2024-03-02"],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        counts = log_events(result.stderr)["synthstream_finished"]["streams"]["incidents"]
        records = [orjson.loads(line) for f in sorted((tmp_path / "out").rglob("*.jsonl"))
                   for line in f.read_bytes().splitlines()]  # fmt: skip
        assert len(records) == counts["sinks"]["postgres"]["delivered"] > 0
        with psycopg.connect(dsn) as connection:
            rows = connection.execute(
                "SELECT incident_number, status_code, units FROM incidents"
            ).fetchall()
    state = {r["after"][KEY]: r["after"] for r in records}
    assert {n: (s, u) for n, s, u in rows} == {
        k: (v["status_code"], v["units"]) for k, v in state.items()
    }
