"""The CLI as a user runs it: files, /metrics, determinism, sharding, backfill equals live."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from tests.conftest import cli, next_event, running

QUIET = {
    "SYNTHSTREAM_BME280__FAULTS__DROP_RATE": "0.01",
    "SYNTHSTREAM_BME280__FAULTS__DUPLICATE_RATE": "0.02",
}


def log_events(stderr: str) -> dict[str, dict[str, Any]]:
    events = {}
    for line in stderr.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            events[event["event"]] = event
    return events


def records(folder: Path, stream: str = "bme280") -> list[bytes]:
    lines: list[bytes] = []
    for path in sorted((folder / stream).glob("*.jsonl")):
        lines += path.read_bytes().splitlines()
    return lines


def scrape(port: int) -> dict[str, float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def scrape_until(port: int, series: str, at_least: float, within_s: float = 60) -> dict[str, float]:
    """Scrape a running producer's /metrics until ``series`` reaches ``at_least``; fail after
    ``within_s`` (no sleeps: each scrape is a round trip)."""
    deadline = time.monotonic() + within_s
    while True:
        samples = scrape(port)
        if samples.get(series, 0.0) >= at_least:
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"{series} stayed at {samples.get(series, 0.0)} < {at_least}")


def delivered_series(sink: str, stream: str = "bme280") -> str:
    return f'synthstream_records_delivered_total{{sink="{sink}",stream="{stream}"}}'


def backfill(out: Path, *extra: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = cli(
        "run", "--backfill", "--start", "2024-03-01T00:00:00", "--end", "2024-03-01T06:00:00",
        "--sinks", "file", "--out", str(out), "--metrics-port", "0", *extra,
        env={**QUIET, "SYNTHSTREAM_BME280__DEVICES": "50", **(env or {})},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return log_events(result.stderr)


def test_live_run_streams_to_files_and_metrics_hold_the_identity(tmp_path: Path) -> None:
    env = {
        **os.environ, **QUIET, "SYNTHSTREAM_LOG__FORMAT": "json",
        # Late records wait in the fault layer: the identity counts them as in flight.
        "SYNTHSTREAM_BME280__FAULTS__LATE_RATE": "0.05",
        "SYNTHSTREAM_BME280__FAULTS__LATE_MEAN_S": "2",
        "SYNTHSTREAM_BME280__DEVICES": "300", "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "1",
    }  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer", "run", "--sinks", "file", "--out", str(tmp_path),
         "--metrics-port", "0"],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        start = json.loads(proc.stderr.readline())
        assert start["event"] == "synthstream_started"
        assert start["streams"]["bme280"] == {"entities": 300, "sinks": ["file"]}
        assert len(json.dumps(start)) < 1_500, "the start line holds what a person needs"
        port = start["metrics_port"]
        health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert health.status == 200
        generated = 0.0
        scrapes = 0
        while generated < 1500 and time.monotonic() - started < 60:
            m = scrape(port)
            scrapes += 1
            generated = m.get('synthstream_records_generated_total{stream="bme280"}', 0)
            sink = '{sink="file",stream="bme280"}'
            identity = (
                m.get(f"synthstream_records_delivered_total{sink}", 0)
                + m.get('synthstream_records_dropped_by_fault_total{stream="bme280"}', 0)
                + sum(v for k, v in m.items() if k.startswith("synthstream_records_failed_total"))
                + m.get(f"synthstream_records_in_flight{sink}", 0)
            )
            assert identity == generated, "the accounting identity holds at every scrape"
        assert generated >= 1500
        assert m['synthstream_entities{stream="bme280"}'] == 300
        assert m['synthstream_target_rate_records_per_second{stream="bme280"}'] == 300
        assert m['synthstream_scheduler_lag_seconds_count{stream="bme280"}'] > 0
        # Emission latency: one observation per record handed to the sinks, in buckets.
        emitted = m['synthstream_emission_latency_seconds_count{stream="bme280"}']
        assert 0 < emitted <= generated
        assert m['synthstream_emission_latency_seconds_bucket{le="+Inf",stream="bme280"}'] == (
            emitted
        )
        assert m['synthstream_emission_latency_seconds_bucket{le="10",stream="bme280"}'] <= (
            emitted
        )
        assert "synthstream_build_info{python" in "".join(m)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    summary = log_events(err)["synthstream_finished"]
    assert summary["reason"] == "signal SIGTERM"
    counts = summary["streams"]["bme280"]
    lines = records(tmp_path)
    assert len(lines) == counts["sinks"]["file"]["delivered"]
    assert counts["generated"] == len(lines) + counts["dropped_by_fault"]
    rows = [orjson.loads(line) for line in lines]
    assert sum(r["is_duplicate"] for r in rows) == counts["duplicated_by_fault"]
    assert counts["dropped_by_fault"] > 0
    assert counts["duplicated_by_fault"] > 0


def test_backfill_is_byte_identical_for_the_same_seed(tmp_path: Path) -> None:
    backfill(tmp_path / "a", "--seed", "7")
    backfill(tmp_path / "b", "--seed", "7")
    backfill(tmp_path / "c", "--seed", "8")
    a, b, c = (records(tmp_path / x) for x in "abc")
    assert len(a) > 50 * 6 * 360 * 0.98
    assert a == b
    assert a != c
    names = sorted(p.name for p in (tmp_path / "a" / "bme280").iterdir())
    assert names[0] == "bme280-20240301T000000Z-00001.jsonl"
    assert len(names) == 6, "hourly files"


def test_two_shards_give_exactly_the_unsharded_records(tmp_path: Path) -> None:
    backfill(tmp_path / "all")
    backfill(tmp_path / "s0", "--shard", "0/2")
    backfill(tmp_path / "s1", "--shard", "1/2")
    whole = records(tmp_path / "all")
    s0, s1 = records(tmp_path / "s0"), records(tmp_path / "s1")
    assert s0
    assert s1
    assert sorted(s0 + s1) == sorted(whole)
    assert not {orjson.loads(x)["device_id"] for x in s0} & {
        orjson.loads(x)["device_id"] for x in s1
    }


def test_backfill_of_a_window_equals_what_live_produced(tmp_path: Path) -> None:
    live = cli(
        "run", "--duration", "3", "--sinks", "file", "--out", str(tmp_path / "live"),
        "--metrics-port", "0",
        env={**QUIET, "SYNTHSTREAM_BME280__DEVICES": "100",
             "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "0.5"},
    )  # fmt: skip
    assert live.returncode == 0, live.stderr
    events = log_events(live.stderr)
    origin = events["synthstream_started"]["origin"]
    reached = events["synthstream_finished"]["event_time_reached"]
    live_records = records(tmp_path / "live")
    assert len(live_records) > 400
    again = cli(
        "run", "--backfill", "--start", origin, "--end", reached, "--sinks", "file",
        "--out", str(tmp_path / "backfill"), "--metrics-port", "0",
        env={**QUIET, "SYNTHSTREAM_BME280__DEVICES": "100",
             "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "0.5"},
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert records(tmp_path / "backfill") == live_records


def test_max_records_is_exact_and_stdout_is_json_lines(tmp_path: Path) -> None:
    result = cli(
        "run", "--max-records", "250", "--sinks", "stdout", "--metrics-port", "0",
        env={"SYNTHSTREAM_BME280__FAULTS__DROP_RATE": "0",
             "SYNTHSTREAM_BME280__FAULTS__DUPLICATE_RATE": "0",
             "SYNTHSTREAM_BME280__DEVICES": "500", "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 250
    assert all(orjson.loads(line)["device_id"].startswith("bme280_") for line in lines)
    assert log_events(result.stderr)["synthstream_finished"]["reason"] == "max_records"


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_backfill_to_parquet_and_csv(tmp_path: Path, fmt: str) -> None:
    env = {
        "SYNTHSTREAM_SINKS__FILE__FORMAT": fmt,
        "SYNTHSTREAM_SINKS__FILE__ROW_GROUP_ROWS": "20000",
    }
    events = backfill(tmp_path, env=env)
    delivered = events["synthstream_finished"]["streams"]["bme280"]["sinks"]["file"]["delivered"]
    files = sorted((tmp_path / "bme280").glob(f"*.{fmt}"))
    assert len(files) == 6
    assert not list((tmp_path / "bme280").glob("*.partial"))
    if fmt == "parquet":
        tables = [pq.read_table(f) for f in files]
        assert sum(t.num_rows for t in tables) == delivered
        assert tables[0].column_names == [
            "device_id", "temperature_c", "humidity", "pressure_hpa", "timestamp", "metadata",
            "message_id", "is_duplicate",
        ]  # fmt: skip
        assert str(tables[0].schema.field("timestamp").type) == "timestamp[ms, tz=UTC]"
        assert pq.ParquetFile(files[0]).metadata.row_group(0).column(1).compression == "SNAPPY"
    else:
        texts = [f.read_text().splitlines() for f in files]
        assert sum(len(t) - 1 for t in texts) == delivered
        assert texts[0][0].startswith('"device_id","temperature_c","humidity","pressure_hpa"')
        assert '"metadata.weather_event_type"' in texts[0][0]


def test_ground_truth_lists_every_injected_fault(tmp_path: Path) -> None:
    events = backfill(
        tmp_path, "--metrics-port", "0",
        env={"SYNTHSTREAM_BME280__FAULTS__GROUND_TRUTH": "true",
             "SYNTHSTREAM_BME280__FAULTS__LATE_RATE": "0.02",
             "SYNTHSTREAM_BME280__FAULTS__CLOCK_SKEW_RATE": "0.1",
             "SYNTHSTREAM_BME280__FAULTS__OUTAGE_RATE": "0.05",
             "SYNTHSTREAM_BME280__FAULTS__ANOMALY_RATE": "0.2"},
    )  # fmt: skip
    counts = events["synthstream_finished"]["streams"]["bme280"]
    truth_file = tmp_path / "bme280.ground-truth.jsonl"
    truth = [orjson.loads(x) for x in truth_file.read_bytes().splitlines()]
    kinds = {t["kind"] for t in truth}
    assert {"drop", "duplicate", "late", "clock_skew", "outage_replayed"} <= kinds
    drops = {t["message_id"] for t in truth if t["kind"] == "drop"}
    dups = [t["message_id"] for t in truth if t["kind"] == "duplicate"]
    assert len(drops) == counts["dropped_by_fault"]
    assert len(dups) == counts["duplicated_by_fault"]
    rows = [orjson.loads(x) for x in records(tmp_path)]
    delivered_ids = {r["message_id"] for r in rows}
    assert not drops & delivered_ids
    assert sorted(dups) == sorted(r["message_id"] for r in rows if r["is_duplicate"])
    by_id = {r["message_id"]: r for r in rows}
    for t in truth:
        if t["kind"] == "dropout":
            assert by_id[t["message_id"]][t["column"]] is None
        if t["kind"] == "clock_skew":
            assert by_id[t["message_id"]]["timestamp"] == t["timestamp"]


def test_then_live_continues_the_backfill_without_gap_or_overlap(tmp_path: Path) -> None:
    start = time.time() - 20
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start))
    result = cli(
        "run", "--backfill", "--start", iso, "--then-live", "--duration", "2",
        "--sinks", "file", "--out", str(tmp_path), "--metrics-port", "0",
        env={"SYNTHSTREAM_BME280__DEVICES": "20", "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "0.5",
             "SYNTHSTREAM_BME280__FAULTS__DROP_RATE": "0",
             "SYNTHSTREAM_BME280__FAULTS__DUPLICATE_RATE": "0"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    events = log_events(result.stderr)
    assert "backfill_caught_up" in events
    rows = [orjson.loads(x) for x in records(tmp_path)]
    per_device: dict[str, list[str]] = {}
    for row in rows:
        per_device.setdefault(row["device_id"], []).append(row["timestamp"])
    assert len(per_device) == 20
    for stamps in per_device.values():
        times = [datetime.fromisoformat(s).timestamp() for s in stamps]
        gaps = {round(b - a, 3) for a, b in itertools.pairwise(times)}
        assert gaps == {0.5}, "one reading every 0.5 s across the handover"
        assert times[0] - start < 0.5
        assert times[-1] > start + 20, "went on live past the moment it started"


def test_files_roll_by_size(tmp_path: Path) -> None:
    backfill(tmp_path, env={"SYNTHSTREAM_SINKS__FILE__ROLL_BYTES": "200000",
                            "SYNTHSTREAM_SINKS__FILE__MAX_RECORDS": "1000"})  # fmt: skip
    files = sorted((tmp_path / "bme280").glob("*.jsonl"))
    sizes = [f.stat().st_size for f in files]
    assert len(files) > 20
    assert max(sizes) < 200_000 + 1000 * 400, "rolled once past the limit, one write over at most"
    whole = tmp_path / "whole"
    backfill(whole)
    assert records(tmp_path) == records(whole), "rolling splits files, it does not change them"


def test_the_scoring_example_joins_output_and_ground_truth(tmp_path: Path) -> None:
    backfill(tmp_path, env={"SYNTHSTREAM_BME280__FAULTS__GROUND_TRUTH": "true",
                            "SYNTHSTREAM_BME280__FAULTS__DUPLICATE_RATE": "0.05"})  # fmt: skip
    script = Path(__file__).resolve().parents[1] / "examples" / "score_detector.py"
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, check=True
    )
    duplicate = next(line for line in result.stdout.splitlines() if "duplicate" in line).split()
    assert duplicate[-2:] == ["1.000", "1.000"], result.stdout


def test_multi_source_and_quality_issues_through_the_cli(tmp_path: Path) -> None:
    env = {
        "SYNTHSTREAM_BME280__FAULTS__SOURCES": "3",
        "SYNTHSTREAM_BME280__FAULTS__QUALITY_ISSUE_RATE": "0.05",
        "SYNTHSTREAM_BME280__FAULTS__GROUND_TRUTH": "true",
    }
    counts = backfill(tmp_path, env=env)["synthstream_finished"]["streams"]["bme280"]
    lines = records(tmp_path)
    assert counts["generated"] == len(lines) + counts["dropped_by_fault"]
    assert len(lines) > 50 * 6 * 360 * 1.2, "shared records come twice, from two sources"
    rows = [orjson.loads(x) for x in lines]
    assert {r["source"] for r in rows} == {"A", "B", "C"}
    truth = (tmp_path / "bme280.ground-truth.jsonl").read_bytes().splitlines()
    # One line per delivered source copy (a fault's duplicate is not a source's copy).
    copies = sum(b'"source_copy"' in t for t in truth)
    assert copies == len(lines) - counts["duplicated_by_fault"]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_full_disk_leaves_whole_records_and_exact_counts(tmp_path: Path, fmt: str) -> None:
    """A 2 MB filesystem fills during a backfill: the files hold only whole records, the
    full disk is retried with backoff (room may come back), and what is on disk is exactly
    what the summary calls delivered."""
    from tests.services import small_filesystem

    with small_filesystem(tmp_path / "small") as disk:
        result = cli(
            "run", "--backfill", "--start", "2024-01-01", "--end", "2024-01-02", "--sinks",
            "file", "--out", str(disk), "--metrics-port", "0",
            env={"SYNTHSTREAM_SINKS__FILE__FORMAT": fmt,
                 "SYNTHSTREAM_SINKS__FILE__MAX_RECORDS": "1000",
                 "SYNTHSTREAM_DELIVERY__MAX_ATTEMPTS": "3",
                 "SYNTHSTREAM_DELIVERY__BACKOFF_BASE_S": "0.01",
                 "SYNTHSTREAM_BME280__FAULTS__DROP_RATE": "0",
                 "SYNTHSTREAM_BME280__FAULTS__DUPLICATE_RATE": "0"},
        )  # fmt: skip
        files = sorted((disk / "bme280").glob(f"*.{fmt}"))
        content = [f.read_bytes() for f in files]
    assert result.returncode == 1, result.stderr
    events = log_events(result.stderr)
    assert events["send_retry"]["reason"] == "disk_full"
    sink = events["synthstream_finished"]["streams"]["bme280"]["sinks"]["file"]
    assert sink["failed"] > 0
    assert sink["delivered"] + sink["failed"] == 86_400
    lines = [line for data in content for line in data.splitlines()]
    assert all(data.endswith(b"\n") for data in content if data), "no half record at the end"
    if fmt == "jsonl":
        ids = {orjson.loads(line)["message_id"] for line in lines}  # each line whole JSON
        assert len(ids) == len(lines) == sink["delivered"]
    else:
        headers = [data.splitlines()[0] for data in content if data]
        rows = len(lines) - len(headers)
        assert rows == sink["delivered"]
        assert all(len(line.split(b",")) == len(headers[0].split(b",")) for line in lines)
    noisy = [line for line in result.stderr.splitlines() if '"send_retry"' in line]
    assert len(noisy) <= 3, "repeats are counted, not printed"


def test_a_disk_that_fills_under_a_live_run_loses_nothing_uncounted(tmp_path: Path) -> None:
    """Live ticks are written at once on the loop while nothing is queued: a 512 KB disk
    fills during a live run, the part of a write that fits lands whole, the rest is retried
    by the route (from its failed attempt) and fails; the disk holds exactly the records
    called delivered, and generated = delivered + failed."""
    from tests.services import small_filesystem

    with small_filesystem(tmp_path / "small", "512k") as disk:
        result = cli(
            "run", "--duration", "6", "--sinks", "file", "--out", str(disk),
            "--metrics-port", "0",
            env={"SYNTHSTREAM_BME280__DEVICES": "400",
                 "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "1",
                 "SYNTHSTREAM_DELIVERY__MAX_ATTEMPTS": "3",
                 "SYNTHSTREAM_DELIVERY__BACKOFF_BASE_S": "0.01",
                 "SYNTHSTREAM_BME280__FAULTS__DROP_RATE": "0",
                 "SYNTHSTREAM_BME280__FAULTS__DUPLICATE_RATE": "0"},
        )  # fmt: skip
        content = [f.read_bytes() for f in sorted((disk / "bme280").glob("*.jsonl"))]
    assert result.returncode == 1, result.stderr
    events = log_events(result.stderr)
    assert events["send_retry"]["reason"] == "disk_full"
    stream = events["synthstream_finished"]["streams"]["bme280"]
    sink = stream["sinks"]["file"]
    assert sink["failed"] > 0
    assert sink["delivered"] > 0
    assert sink["delivered"] + sink["failed"] == stream["generated"]
    assert all(data.endswith(b"\n") for data in content if data), "no half record at the end"
    lines = [line for data in content for line in data.splitlines()]
    ids = {orjson.loads(line)["message_id"] for line in lines}
    assert len(ids) == len(lines) == sink["delivered"]


def test_a_live_run_asked_for_more_than_it_can_make_stays_responsive(tmp_path: Path) -> None:
    """A million BME280 readings a second, more than one process makes: the run falls
    behind and catches up in bounded ticks, so /metrics answers at once throughout and a
    stop leaves at most a burst unqueued (counted: generated = delivered + failed + dropped)."""
    from producer.ticks import CATCH_UP_RECORDS
    from tests.services import free_port

    port = free_port()
    fleet = {"SYNTHSTREAM_BME280__DEVICES": "1000000", "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "1"}
    with running("run", "--sinks", "file", "--out", str(tmp_path), "--metrics-port", str(port),
                 env={**QUIET, **fleet}) as proc:  # fmt: skip
        assert proc.stderr is not None
        started = next_event(proc.stderr, "synthstream_started")
        assert started["target_per_s"]["bme280"] == 1_000_000
        scrape_until(port, delivered_series("file"), 200_000)
        slowest = 0.0
        for _ in range(10):  # a scrape is a round trip: no sleep between them is needed
            began = time.monotonic()
            scrape(port)
            slowest = max(slowest, time.monotonic() - began)
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        proc.wait(timeout=60)
    events = log_events(rest)
    summary = events["synthstream_finished"]
    stream = summary["streams"]["bme280"]
    sink = stream["sinks"]["file"]
    assert stream["generated"] < 0.8 * 1_000_000 * summary["elapsed_s"], "it was behind"
    assert slowest < 2.0, f"a scrape took {slowest:.1f} s"
    assert sink["failed"] <= 2 * CATCH_UP_RECORDS
    assert sink["in_flight"] == 0
    assert stream["generated"] == sink["delivered"] + sink["failed"] + stream["dropped_by_fault"]
    assert len(records(tmp_path)) == sink["delivered"]


def test_a_live_run_to_parquet_writes_full_row_groups(tmp_path: Path) -> None:
    """Live Parquet: a row group holds what came in ``PARQUET_LINGER_S`` (nobody can read the
    file before it rolls), not one linger's worth: 4 s of 100 readings a second is one row
    group, written at the end, with exactly the records called delivered."""
    fleet = {"SYNTHSTREAM_BME280__DEVICES": "100", "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "1"}
    result = cli(
        "run", "--duration", "4", "--sinks", "file", "--out", str(tmp_path), "--metrics-port",
        "0", env={**QUIET, **fleet, "SYNTHSTREAM_SINKS__FILE__FORMAT": "parquet"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    sink = log_events(result.stderr)["synthstream_finished"]["streams"]["bme280"]["sinks"]["file"]
    files = [pq.ParquetFile(f) for f in sorted((tmp_path / "bme280").glob("*.parquet"))]
    assert sum(f.metadata.num_rows for f in files) == sink["delivered"] > 300
    assert sum(f.metadata.num_row_groups for f in files) <= 2 * len(files)
