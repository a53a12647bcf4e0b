"""Faults of change data capture (``producer/faults/cdc.py``) on a table of accounts, through a
real run to files, each checked against its ground truth: connector restarts send a range of
changes again, reordered updates and late deletes make a key's ``seq`` go back, and nothing
else does."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pyarrow.parquet as pq
import pytest

from tests.services import postgres
from tests.test_end_to_end import log_events

KEY = "account_id"
# Accounts whose rows change every hour or so, and are closed (deleted) and reopened often.
SPEC = """\
streams:
  accounts:
    entities: {count: 200, id: "acct-{index:04d}", id_field: account_id}
    rate: {interval_s: 600, jitter_s: 200}
    table: {key: [account_id], delete: "state == 'closed'"}
    fields:
      state:
        machine:
          start: open
          states:
            open:   {next: {frozen: 80, closed: 20}, dwell_s: {exponential: 7200}}
            frozen: {next: {open: 90, closed: 10}, dwell_s: {exponential: 3600}}
            closed: {next: {open: 1}, dwell_s: {exponential: 7200}}
"""

FAULTS = ("{ground_truth: true, drop_rate: 0, duplicate_rate: 0, cdc_replay_rate: 0.1, "
          "cdc_replay_s: 900, cdc_reorder_rate: 0.3, cdc_reorder_max_s: 3600, "
          "cdc_late_delete_rate: 0.5, cdc_late_delete_max_s: 7200}")  # fmt: skip


def run(tmp_path: Path, faults: str, sinks: str = "file",
        **settings: str) -> tuple[dict[str, Any], list[dict[str, Any]], list[Any]]:  # fmt: skip
    tmp_path.mkdir(parents=True, exist_ok=True)
    spec = tmp_path / "accounts.yaml"
    spec.write_text(SPEC + f"    faults: {faults}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")}
    env.update({"SYNTHSTREAM_LOG__FORMAT": "json",
                "SYNTHSTREAM_OUT": str(tmp_path / "out"), **settings})  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "producer", "run", "--metrics-port", "0", "--progress", "off",
         "--spec", str(spec), "--sinks", sinks, "--backfill", "--start", "2024-02-28",
         "--end", "2024-03-02"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    counts = log_events(result.stderr)["synthstream_finished"]["streams"]["accounts"]
    out = tmp_path / "out"
    files = sorted(f for f in out.rglob("accounts*.jsonl") if "ground-truth" not in f.name)
    changes = [orjson.loads(line) for f in files for line in f.read_bytes().splitlines()]
    truth_file = out / "accounts.ground-truth.jsonl"
    truth = [orjson.loads(x) for x in truth_file.read_bytes().splitlines()] if (
        truth_file.exists()) else []  # fmt: skip
    return counts, changes, truth


def regressions(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Changes (not copies) whose seq is below one of their key's already seen."""
    top: dict[str, int] = {}
    back = []
    for change in changes:
        key = (change["after"] or change["before"])[KEY]
        seq = change["source"]["seq"]
        if not change["is_duplicate"] and seq < top.get(key, 0):
            back.append(change)
        top[key] = max(top.get(key, 0), seq)
    return back


def test_cdc_faults_do_what_their_ground_truth_says_and_nothing_else(tmp_path: Path) -> None:
    counts, changes, truth = run(tmp_path, FAULTS)
    kinds = Counter(t["kind"] for t in truth)
    assert {"cdc_replay", "cdc_reorder", "cdc_late_delete"} <= set(kinds), kinds
    assert counts["duplicated_by_fault"] == kinds["cdc_replay"]
    assert counts["generated"] == counts["sinks"]["file"]["delivered"] == len(changes)
    # A replay: copies of changes already sent, after their originals.
    seen: set[str] = set()
    replayed = {t["message_id"] for t in truth if t["kind"] == "cdc_replay"}
    for change in changes:
        if change["is_duplicate"]:
            assert change["message_id"] in replayed
            assert change["message_id"] in seen, "a replay repeats what went before"
        seen.add(change["message_id"])
    assert sum(c["is_duplicate"] for c in changes) == kinds["cdc_replay"] > 0
    # A key's seq goes back only for a held update or delete; many of those are overtaken.
    held = {t["message_id"]: t for t in truth if t["kind"] in ("cdc_reorder", "cdc_late_delete")}
    back = regressions(changes)
    assert {c["message_id"] for c in back} <= set(held)
    for kind, op in (("cdc_reorder", "u"), ("cdc_late_delete", "d")):
        mine = [c for c in back if held[c["message_id"]]["kind"] == kind]
        assert all(c["op"] == op for c in mine)
        assert mine, f"some {kind} is overtaken by a later change of its key"
    bound = {"cdc_reorder": 3_600_000, "cdc_late_delete": 7_200_000}
    assert all(0 < t["delay_ms"] <= bound[t["kind"]] for t in held.values())


def test_without_cdc_faults_no_seq_goes_back(tmp_path: Path) -> None:
    _, changes, truth = run(tmp_path, "{ground_truth: true, late_rate: 0.05}")
    assert not {t["kind"] for t in truth} & {"cdc_replay", "cdc_reorder", "cdc_late_delete"}
    late = {t["message_id"] for t in truth if t["kind"] == "late"}
    assert late
    assert {c["message_id"] for c in regressions(changes)} <= late


@pytest.mark.services
def test_a_schema_change_adds_a_column_to_rows_files_and_the_postgres_table(
    tmp_path: Path,
) -> None:
    at = "2024-03-01T22:00:00"
    at_ms = 1_709_330_400_000
    faults = f"{{ground_truth: true, drop_rate: 0, cdc_schema_change_at: '{at}'}}"
    with postgres() as (_psql, port):
        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        counts, changes, truth = run(tmp_path / "a", faults, "file,postgres",
                                     SYNTHSTREAM_SINKS__POSTGRES__DSN=dsn)  # fmt: skip
        with psycopg.connect(dsn) as connection:
            cursor = connection.execute("SELECT * FROM accounts")
            names = [d.name for d in cursor.description or []]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    (change,) = [t for t in truth if t["kind"] == "cdc_schema_change"]
    assert change["column"] == "loyalty_points"
    assert change["event_time_ms"] >= at_ms
    last: dict[str, Any] = {}
    state: dict[str, Any] = {}
    for c in changes:
        key = (c["after"] or c["before"])[KEY]
        if not c["is_duplicate"]:
            assert c["before"] == last.get(key), "before is the row as it was sent"
        if c["after"] is not None:
            assert ("loyalty_points" in c["after"]) == (c["ts_ms"] >= at_ms)
        last[key] = c["after"]
        if c["op"] == "d":
            state.pop(key, None)
        else:
            state[key] = c["after"]
    assert any(c["ts_ms"] < at_ms for c in changes)
    assert "loyalty_points" in names, "the table has the column (ALTER TABLE ... ADD COLUMN)"
    held = {r[KEY]: r.get("loyalty_points") for r in rows}
    assert held == {k: v.get("loyalty_points") for k, v in state.items()}
    assert None in held.values()
    assert any(v is not None for v in held.values())
    # Parquet: a new file from the change on, with the column.
    counts, _, _ = run(tmp_path / "b", faults, SYNTHSTREAM_SINKS__FILE__FORMAT="parquet")
    tables = [pq.read_table(f) for f in sorted((tmp_path / "b" / "out").rglob("*.parquet"))]
    assert sum(t.num_rows for t in tables) == counts["sinks"]["file"]["delivered"]
    widened = ["loyalty_points" in t.schema.field("after").type.names for t in tables]
    assert widened[0] is False
    assert widened[-1] is True


@pytest.mark.services
def test_a_consumer_that_goes_by_seq_rebuilds_the_table_despite_the_faults(
    tmp_path: Path,
) -> None:
    """Replays, reorders and late deletes into Kafka: the example consumer with ``--by-seq``
    builds, for each key, its newest row (the change with the highest seq); in the order
    read, without it, the faults leave some rows wrong."""
    from tests.services import kafka_broker

    root = Path(__file__).resolve().parent.parent
    with kafka_broker() as bootstrap:
        _, changes, _ = run(tmp_path, FAULTS, "file,kafka",
                            SYNTHSTREAM_SINKS__KAFKA__BOOTSTRAP_SERVERS=bootstrap)  # fmt: skip
        tables = {}
        for flag in ([], ["--by-seq"]):
            done = subprocess.run(
                [sys.executable, str(root / "examples" / "cdc_replay.py"), "--bootstrap",
                 bootstrap, "--topic", "accounts", *flag],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            tables[bool(flag)] = {r[KEY]: r for r in map(orjson.loads, done.stdout.splitlines())}
    newest: dict[str, dict[str, Any]] = {}
    for c in changes:
        key = (c["after"] or c["before"])[KEY]
        if c["source"]["seq"] > newest.get(key, {"source": {"seq": 0}})["source"]["seq"]:
            newest[key] = c
    truth = {k: c["after"] for k, c in newest.items() if c["op"] != "d"}
    assert tables[True] == truth
    assert tables[False] != truth, "in the order read, the faults show"
