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
import pyarrow.csv as pacsv
import pytest

from producer.config import load_settings
from producer.encoding import encode_jsonl
from producer.records import RecordBatch
from producer.streams import build_stream
from tests.conftest import cli
from tests.services import postgres
from tests.test_end_to_end import log_events
from tests.test_incidents import END, generate

T0 = round(datetime(2024, 2, 28, tzinfo=UTC).timestamp() * 1000)  # over a leap day
DAY = 86_400_000
KEY = "incident_number"
NEXT = {None: {"REPORTED"}, "REPORTED": {"DISPATCHED"}, "DISPATCHED": {"ON_SCENE", "CANCELLED"},
        "ON_SCENE": {"RESOLVED"}}  # fmt: skip


def changes(end: int, step: int, channel: str = "incidents") -> list[dict[str, Any]]:
    overrides = {"streams": ["incidents"], "seed": 9, "incidents": {"cdc": True}}
    stream = build_stream("incidents", load_settings(overrides, environ={}))
    made, t = [], T0
    while t < end:
        batch = stream.source.advance(t, min(t + step, end), None).get(channel)
        made += [batch] if batch is not None else []
        t = min(t + step, end)
    schema = stream.source.channels[channel]
    return [orjson.loads(line)
            for line in encode_jsonl(schema, RecordBatch.concat(made)).splitlines()]  # fmt: skip


def replay(changes: list[dict[str, Any]], *key: str) -> dict[tuple[Any, ...], Any]:
    """A table's rows as its changes say (none of these tables deletes)."""
    return {tuple(c["after"][k] for k in key): c["after"] for c in changes}


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


def test_each_unit_is_created_when_sent_and_updated_when_cleared() -> None:
    incidents = changes(T0 + 3 * DAY, DAY)
    units = changes(T0 + 3 * DAY, DAY, "incident_units")
    last: dict[tuple[str, str], Any] = {}
    for change in units:
        row = change["after"]
        key = (row[KEY], row["station_code"])
        assert change["before"] == last.get(key)
        assert change["op"] == ("c" if key not in last else "u")
        assert (row["cleared_at"] is None) == (change["op"] == "c")
        assert row["timestamp"] == (row["cleared_at"] or row["dispatched_at"])
        assert row["cleared_at"] is None or row["cleared_at"] > row["dispatched_at"]
        last[key] = row
    assert len(last) > 300
    # The units of each incident are those its row names, sent and cleared inside its life.
    events: dict[str, dict[str, str]] = {}
    for change in incidents:
        events.setdefault(change["after"][KEY], {})[change["after"]["status_code"]] = change[
            "after"]["timestamp"]  # fmt: skip
    rows = replay(incidents, KEY)
    sent: dict[str, list[str]] = {}
    for (number, station), unit in last.items():
        sent.setdefault(number, []).append(station)
        times = events[number]
        assert unit["dispatched_at"] >= times["DISPATCHED"]
        end = times.get("RESOLVED") or times.get("CANCELLED")
        assert unit["cleared_at"] is None or end is None or unit["cleared_at"] <= end
    for number, stations in sent.items():
        assert sorted(stations) == sorted(rows[(number,)]["units"]), "the units its row names"
    assert changes(T0 + 3 * DAY, 3_600_000 * 7, "incident_units") == units


@pytest.mark.services
def test_a_backfill_applied_to_postgres_is_the_incidents_state(tmp_path: Path) -> None:
    with postgres() as (_psql, port):
        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")}
        env.update({"SYNTHSTREAM_LOG__FORMAT": "json", "SYNTHSTREAM_INCIDENTS__CDC": "true",
                    "SYNTHSTREAM_SINKS__POSTGRES__DSN": dsn,
                    "SYNTHSTREAM_OUT": str(tmp_path / "out")})  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-m", "producer", "run", "--streams", "incidents", "--sinks",
             "postgres,file", "--metrics-port", "0", "--progress", "off", "--backfill",
             "--start", "2024-02-28", "--end", "2024-03-02"],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        counts = log_events(result.stderr)["synthstream_finished"]["streams"]["incidents"]
        out = tmp_path / "out"
        records = [orjson.loads(line) for f in sorted(out.rglob("incidents*.jsonl"))
                   for line in f.read_bytes().splitlines()]  # fmt: skip
        assert len(records) == counts["sinks"]["postgres"]["delivered"] > 0
        units = [orjson.loads(line) for f in sorted(out.rglob("incident_units*.jsonl"))
                 for line in f.read_bytes().splitlines()]  # fmt: skip
        with psycopg.connect(dsn) as connection:
            rows = connection.execute(
                "SELECT incident_number, status_code, units FROM incidents"
            ).fetchall()
            sent = connection.execute(
                "SELECT incident_number, station_code, assignment_role, dispatched_at, cleared_at"
                " FROM incident_units").fetchall()  # fmt: skip
    state = {r["after"][KEY]: r["after"] for r in records}
    assert {n: (s, u) for n, s, u in rows} == {
        k: (v["status_code"], v["units"]) for k, v in state.items()
    }
    assert {(n, s): (r, iso(d), iso(c)) for n, s, r, d, c in sent} == {
        k: (v["assignment_role"], v["dispatched_at"], v["cleared_at"])
        for k, v in replay(units, KEY, "station_code").items()
    }


def iso(stamp: datetime | None) -> str | None:
    if stamp is None:
        return None
    return stamp.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_the_units_table_is_the_incident_units_the_tables_write(tmp_path: Path) -> None:
    """A backfill of the window ``synthstream incidents`` writes (the same seed and count)
    ends with the units table the tables have: the same units, sent and cleared at the same
    moments (a unit cleared after the window's end has no ``cleared_at`` in either)."""
    summary = generate(tmp_path / "tables", "--incident-count", "400", "--window-days", "3")
    assert summary["rows"]["incidents"] == 400
    env = {"SYNTHSTREAM_INCIDENTS__COUNT": "400", "SYNTHSTREAM_SEED": "7",
           "SYNTHSTREAM_INCIDENTS__CDC": "true"}  # fmt: skip
    run = cli("run", "--streams", "incidents", "--backfill", "--start", "2024-05-29T00:00:00",
              "--end", END, "--sinks", "file", "--out", str(tmp_path / "stream"),
              "--progress", "off", "--metrics-port", "0", env=env)  # fmt: skip
    assert run.returncode == 0, run.stderr
    files = sorted((tmp_path / "stream").rglob("incident_units-*.jsonl"))
    units = [orjson.loads(line) for f in files for line in f.read_bytes().splitlines()]
    streamed = {k: (v["assignment_role"], v["dispatched_at"], v["cleared_at"])
                for k, v in replay(units, KEY, "station_code").items()}  # fmt: skip
    table = pacsv.read_csv(tmp_path / "tables" / "incident_units.csv").to_pylist()
    written = {(r[KEY], r["station_code"]): (r["assignment_role"], iso(r["dispatched_at"]),
                                             iso(r["cleared_at"])) for r in table}  # fmt: skip
    common = {n for n, _ in streamed} & {n for n, _ in written}
    assert len(common) > 380, "the same incidents (to one at each edge of the window)"
    assert {k: v for k, v in streamed.items() if k[0] in common} == {
        k: v for k, v in written.items() if k[0] in common
    }
