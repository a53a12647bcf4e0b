"""The example plugin through synthstream's own CLI: listed, configured, run end to end."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any


def synthstream(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "producer", *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, "SYNTHSTREAM_LOG__FORMAT": "json", **(env or {})},
    )  # fmt: skip


def finished(stderr: str) -> dict[str, Any]:
    for line in stderr.splitlines():
        if line.startswith("{") and json.loads(line)["event"] == "synthstream_finished":
            return dict(json.loads(line))
    raise AssertionError(stderr)


def test_the_plugin_kinds_are_listed_with_the_built_in_ones() -> None:
    run = synthstream("list", "--format", "json")
    assert run.returncode == 0, run.stderr
    kinds = json.loads(run.stdout)
    streams = {k["name"]: k for k in kinds["streams"]}
    sinks = {k["name"]: k for k in kinds["sinks"]}
    assert {"bme280", "ticks"} <= set(streams)
    assert {"file", "sqlite"} <= set(sinks)
    assert streams["ticks"]["settings"] == "SYNTHSTREAM_TICKS__"
    names = synthstream("config", "--env-names").stdout.split()
    assert {"SYNTHSTREAM_TICKS__SYMBOLS", "SYNTHSTREAM_SINKS__SQLITE__PATH"} <= set(names)


def ticks_to_sqlite(
    db: Path, *extra: str, table: str | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    env = {"SYNTHSTREAM_SINKS__SQLITE__PATH": str(db), "SYNTHSTREAM_TICKS__SYMBOLS": "20"}
    if table is not None:  # the sink's per-channel address
        env["SYNTHSTREAM_SINKS__SQLITE__TABLES"] = json.dumps({"ticks": table})
    run = synthstream(
        "run", "--streams", "ticks", "--sinks", "sqlite", "--backfill",
        "--start", "2024-12-31T23:30:00", "--end", "2025-01-01T00:30:00", "--metrics-port", "0",
        *extra, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    with sqlite3.connect(db) as conn:
        query = f"SELECT doc FROM {table or 'ticks'} ORDER BY rowid"
        rows = [json.loads(doc) for (doc,) in conn.execute(query)]
    return finished(run.stderr), rows


def test_ticks_go_to_sqlite_counted_exactly_and_the_same_for_a_seed(tmp_path: Path) -> None:
    summary, rows = ticks_to_sqlite(tmp_path / "a.db", "--seed", "3")
    counts = summary["streams"]["ticks"]
    assert (
        counts["sinks"]["sqlite"]["delivered"]
        == len(rows)
        == counts["generated"] - counts["dropped_by_fault"]
    )
    assert len({r["symbol"] for r in rows}) == 20
    assert all(r["price"] > 0 for r in rows)
    _, again = ticks_to_sqlite(tmp_path / "b.db", "--seed", "3")
    assert again == rows
    _, other = ticks_to_sqlite(tmp_path / "c.db", "--seed", "4")
    assert other != rows


def test_the_sink_sends_each_channel_to_the_table_its_settings_name(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    summary, _ = ticks_to_sqlite(db, "--seed", "3", table="quotes")
    delivered = summary["streams"]["ticks"]["sinks"]["sqlite"]["delivered"]
    with sqlite3.connect(db) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        count = conn.execute("SELECT count(*) FROM quotes").fetchone()[0]
    assert tables == {"quotes"}
    assert count == delivered > 0


def test_a_bad_plugin_setting_is_one_line_naming_it(tmp_path: Path) -> None:
    run = synthstream("check", "--streams", "ticks", env={"SYNTHSTREAM_TICKS__SYMBOLS": "0"})
    assert run.returncode == 2
    assert "SYNTHSTREAM_TICKS__SYMBOLS" in run.stderr
    assert "Traceback" not in run.stderr
