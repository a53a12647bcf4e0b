"""The postgres sink against a real PostgreSQL (scripts/postgres): every built-in stream's
channels land as typed tables whose rows are exactly what was delivered; a server that is
down at start is waited for, and what it then holds is what was delivered."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import next_event, running
from tests.services import free_port, postgres, stop_group, wait_for_line
from tests.test_end_to_end import log_events

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    with postgres() as (_psql, port):
        yield port


def dsn(port: int) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def run(env: dict[str, str], *args: str, timeout: float = 180) -> dict[str, Any]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")}
    full.update({"SYNTHSTREAM_LOG__FORMAT": "json", "SYNTHSTREAM_DELIVERY__BACKOFF_BASE_S": "0.05",
                 "SYNTHSTREAM_DELIVERY__BACKOFF_MAX_S": "0.5", **env})  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "producer", "run", "--sinks", "postgres", "--metrics-port", "0",
         "--progress", "off", *args],
        capture_output=True, text=True, env=full, timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return log_events(result.stderr)


def query(port: int, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn(port)) as connection:
        return connection.execute(sql).fetchall()


@pytest.mark.services
def test_every_built_in_channel_lands_as_a_typed_table_with_exactly_what_was_delivered(
    server: int,
) -> None:
    env = {"SYNTHSTREAM_SINKS__POSTGRES__DSN": dsn(server),
           "SYNTHSTREAM_SINKS__POSTGRES__TABLE_PREFIX": "every_",
           "SYNTHSTREAM_STREAMS": "bme280,air_quality,ecommerce,incidents",
           "SYNTHSTREAM_ECOMMERCE__USERS": "200", "SYNTHSTREAM_ECOMMERCE__PRODUCTS": "100",
           "SYNTHSTREAM_BME280__FAULTS__DUPLICATE_RATE": "0.05"}  # fmt: skip
    events = run(env, "--backfill", "--start", "2024-02-29T23:30:00", "--end",
                 "2024-03-01T00:30:00")  # fmt: skip
    finished = events["synthstream_finished"]
    tables = dict(query(server, "SELECT table_name, 1 FROM information_schema.tables "
                                "WHERE table_name LIKE 'every_%'"))  # fmt: skip
    assert len(finished["streams"]) >= 8, "every channel of the four streams"
    for name, counts in finished["streams"].items():  # a table per channel
        delivered = counts["sinks"]["postgres"]["delivered"]
        assert counts["sinks"]["postgres"]["failed"] == 0, name
        assert f"every_{name}" in tables, (name, sorted(tables))
        assert query(server, f'SELECT count(*) FROM "every_{name}"')[0][0] == delivered, name
    types = dict(query(server, "SELECT column_name, data_type FROM information_schema.columns "
                               "WHERE table_name = 'every_bme280'"))  # fmt: skip
    assert types["timestamp"] == "timestamp with time zone"
    assert types["temperature_c"] == "double precision"
    assert types["is_duplicate"] == "boolean"
    assert types["device_id"] == "text"
    assert types["metadata_version"] == "text", "a struct's fields are columns of their own"
    duplicates = query(server, "SELECT count(*) - count(DISTINCT message_id) FROM every_bme280")
    assert duplicates[0][0] > 0, "injected duplicates arrive as rows of their own"
    leap = query(server, "SELECT min(timestamp), max(timestamp) FROM every_bme280")[0]
    assert leap[0].isoformat().startswith("2024-02-29T23:30")
    assert leap[1].isoformat().startswith("2024-03-01T00:29")


@contextmanager
def producing(port: int, *args: str, **env: str) -> Iterator[subprocess.Popen[str]]:
    """``synthstream run --sinks postgres`` against ``port`` in the background, JSON logs on
    its stderr pipe; killed (if still running) and closed at the end."""
    full = {"SYNTHSTREAM_SINKS__POSTGRES__DSN": dsn(port),
            "SYNTHSTREAM_SINKS__POSTGRES__CONNECT_TIMEOUT_S": "1",
            "SYNTHSTREAM_DELIVERY__BACKOFF_MAX_S": "0.5"}  # fmt: skip
    full.update({f"SYNTHSTREAM_{k.upper()}": v for k, v in env.items()})
    with running("run", "--sinks", "postgres", "--metrics-port", "0", *args, env=full) as proc:
        yield proc


@pytest.mark.services
def test_a_server_down_at_start_is_waited_for_and_then_holds_what_was_delivered() -> None:
    port = free_port()
    window = ("--backfill", "--start", "2024-05-01T00:00:00", "--end", "2024-05-01T00:05:00")
    with producing(port, *window, "--wait-for-sinks", "60") as producer:
        assert producer.stderr is not None
        next_event(producer.stderr, "sink_unreachable")  # it waits, and says so
        with postgres(port):
            rest = producer.stderr.read()
            assert producer.wait(timeout=120) == 0, rest[-2000:]
            finished = log_events(rest)["synthstream_finished"]["streams"]["bme280"]
            delivered = finished["sinks"]["postgres"]["delivered"]
            assert delivered == finished["generated"] - finished["dropped_by_fault"] > 0
            assert query(port, "SELECT count(*) FROM bme280")[0][0] == delivered


def test_a_table_name_postgresql_would_cut_is_refused_at_start() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "producer", "run", "--sinks", "postgres", "--max-records", "1"],
        capture_output=True, text=True, timeout=60,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")},
             "SYNTHSTREAM_SINKS__POSTGRES__TABLE_PREFIX": "p" * 60},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "synthstream: error: SYNTHSTREAM_SINKS__POSTGRES__TABLE_PREFIX: the table "
        f"'{'p' * 60}bme280' is longer than PostgreSQL's 63 bytes; accepted: a shorter prefix"
    )


@pytest.mark.services
def test_a_missing_database_is_created(server: int) -> None:
    url = f"postgresql://postgres@127.0.0.1:{server}/fresh_synthstream"
    events = run({"SYNTHSTREAM_SINKS__POSTGRES__DSN": url}, "--backfill", "--start",
                 "2024-05-01T00:00:00", "--end", "2024-05-01T00:10:00")  # fmt: skip
    delivered = events["synthstream_finished"]["streams"]["bme280"]["sinks"]["postgres"]
    assert events["postgres_database_created"]["database"] == "fresh_synthstream"
    with psycopg.connect(url) as connection:
        held = connection.execute("SELECT count(*) FROM bme280").fetchone()
    assert held is not None
    assert held[0] == delivered["delivered"] > 0


def start_server(command: str, folder: str, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "postgres"), command, folder, str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    wait_for_line(proc, "ready to accept connections", f"PostgreSQL ({command})")
    return proc


@pytest.mark.services
def test_a_server_crash_mid_run_loses_nothing_that_was_delivered() -> None:
    """The server (synchronous_commit off, as many test servers are) crashes mid-run and comes
    back after recovery: every record counted as delivered is in the table."""
    port = free_port()
    folder = tempfile.mkdtemp(prefix="synthstream-pg-crash-")
    server = start_server("start", folder, port)
    args = ("--duration", "12")
    settings = {"bme280__devices": "200", "bme280__rate__interval_s": "1",
                "delivery__max_attempts": "100"}  # fmt: skip
    try:
        with producing(port, *args, **settings) as producer:
            assert producer.stderr is not None
            next_event(producer.stderr, "synthstream_started")
            with psycopg.connect(dsn(port)) as connection:  # wait until rows arrive, then crash
                deadline = time.monotonic() + 30
                while True:
                    found = connection.execute("SELECT to_regclass('bme280')").fetchone()
                    rows = None
                    if found and found[0]:
                        rows = connection.execute("SELECT count(*) FROM bme280").fetchone()
                    if rows is not None and rows[0] > 200:
                        break
                    assert time.monotonic() < deadline, "no rows arrived"
                    connection.rollback()
                    time.sleep(0.1)
            pid = int((Path(folder) / "data" / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGQUIT)  # an immediate shutdown: no checkpoint, recovery later
            server.wait(timeout=30)
            if server.stdout is not None:
                server.stdout.close()
            server = start_server("resume", folder, port)
            rest = producer.stderr.read()
            assert producer.wait(timeout=60) == 0, rest[-2000:]
            events = log_events(rest)
            counts = events["synthstream_finished"]["streams"]["bme280"]
            assert "send_retry" in events, "the crash was felt"
            assert counts["sinks"]["postgres"]["failed"] == 0
            held = query(port, "SELECT count(*) FROM bme280")[0][0]
            assert held == counts["sinks"]["postgres"]["delivered"] > 0
    finally:
        stop_group(server, 30)
        if server.stdout is not None:
            server.stdout.close()
        shutil.rmtree(folder, ignore_errors=True)
