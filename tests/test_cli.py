"""The command as a new user meets it: help with defaults and examples, one-line errors,
a closed pipe, the start line, the progress count, the reference endpoint's manners."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import cli
from tests.services import ingest

COMMANDS = ("run", "check", "stats", "catalog", "incidents", "config")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_defaults_examples_and_only_the_flags_that_apply(command: str) -> None:
    result = cli(command, "--help")
    assert result.returncode == 0
    text = result.stdout
    assert "examples:" in text
    assert text.count("(default:") >= 3, text
    if command in ("stats", "catalog"):
        assert "--sinks" not in text, "a flag that does nothing here"
    if command == "catalog":
        assert "--streams" not in text
        assert "--shard" not in text
    if command == "incidents":
        assert "incidents in the window (default: 10000)" in text
        assert "file format (default: csv)" in text


def test_a_closed_pipe_ends_the_run_quietly_with_status_0() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")}
    env["SYNTHSTREAM_LOG__FORMAT"] = "json"
    producer = subprocess.Popen(
        [sys.executable, "-m", "producer", "run", "--backfill", "--start", "2024-01-01",
         "--end", "2024-03-01", "--sinks", "stdout", "--metrics-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert producer.stdout is not None
    first = [producer.stdout.readline() for _ in range(2)]  # `| head -2`
    producer.stdout.close()
    _, err = producer.communicate(timeout=60)
    assert all(line.startswith(b"{") for line in first)
    assert producer.returncode == 0, err
    lines = err.decode().splitlines()
    assert not [line for line in lines if "records_failed" in line], "no flood of errors"
    assert not [line for line in lines if "Traceback" in line or "BrokenPipe" in line]
    finished = json.loads(lines[-1])
    assert finished["event"] == "synthstream_finished"
    assert finished["reason"] == "output_closed", "generation stopped"
    # Two months of readings were not all made: the run stopped with the reader.
    assert finished["streams"]["bme280"]["generated"] < 59 * 8_640


def test_output_folders_that_cannot_be_made_are_one_line_and_status_2(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    for args, flag in ((("incidents", "--output-dir"), "--output-dir"),
                       (("catalog", "--out"), "--out")):  # fmt: skip
        result = cli(*args, str(blocker / "x"))
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [result.stderr.strip()]
        assert flag in result.stderr
        assert "Not a directory" in result.stderr


def test_catalog_needs_no_streams_flag(tmp_path: Path) -> None:
    result = cli("catalog", "--out", str(tmp_path), env={"SYNTHSTREAM_ECOMMERCE__USERS": "50"})
    assert result.returncode == 0, result.stderr
    assert len((tmp_path / "users.jsonl").read_bytes().splitlines()) == 50


def test_the_start_line_holds_what_a_person_needs(tmp_path: Path) -> None:
    result = cli("run", "--backfill", "--start", "2024-01-01T00:00:00", "--end",
                 "2024-01-01T00:01:00", "--streams", "bme280,air_quality,ecommerce,incidents",
                 "--sinks", "null", "--metrics-port", "0", "--seed", "9")  # fmt: skip
    assert result.returncode == 0, result.stderr
    start = json.loads(result.stderr.splitlines()[0])
    assert start["event"] == "synthstream_started"
    assert len(result.stderr.splitlines()[0]) <= 1_500
    assert start["mode"] == "backfill"
    assert start["seed"] == 9
    assert start["shard"] == "0/1"
    assert set(start["streams"]) == {"bme280", "air_quality", "ecommerce", "incidents"}
    assert start["streams"]["bme280"] == {"entities": 10, "sinks": ["null"]}
    assert start["target_per_s"]["transactions"] > 0
    assert "settings" not in start, "the full settings: synthstream config, or debug level"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_progress_bar_counts_what_the_summary_counts_and_the_bytes_on_disk(
    tmp_path: Path, workers: str
) -> None:
    result = cli("run", "--backfill", "--start", "2024-12-31T12:00:00", "--end", "2025-01-01T12:00",
                 "--sinks", "file", "--out", str(tmp_path), "--progress", "on", "--metrics-port",
                 "0", "--workers", workers)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stderr.replace("\r", "\n").splitlines()
    summary = json.loads([line for line in lines if '"synthstream_finished"' in line][-1])
    generated = summary["streams"]["bme280"]["generated"]
    assert generated > 86_400, "the duplicates that faults add are in it"
    last_bar = [line for line in lines if line.startswith("backfill 100%")][-1]
    assert f"{generated:,} records" in last_bar
    on_disk = sum(p.stat().st_size for p in tmp_path.rglob("*.jsonl"))
    assert f"{on_disk / 2**20:,.1f} MB" in last_bar, (on_disk, last_bar)


def test_auto_shard_outside_a_container_is_refused() -> None:
    result = cli("run", "--max-records", "1", "--metrics-port", "0",
                 env={"SYNTHSTREAM_SHARD": "auto/3"})  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "SYNTHSTREAM_SHARD" in result.stderr
    assert "not a docker compose replica" in result.stderr


def test_the_reference_endpoint_on_a_busy_port_is_one_line_and_status_2() -> None:
    with ingest() as (port, _server):
        busy = subprocess.run([sys.executable, "-m", "ingest", "--port", str(port)],
                              capture_output=True, text=True, timeout=30)  # fmt: skip
    assert busy.returncode == 2
    assert busy.stderr.strip().splitlines() == [busy.stderr.strip()]
    assert f"cannot listen on 127.0.0.1:{port}" in busy.stderr


def test_ground_truth_gets_its_folder_whatever_the_sink(tmp_path: Path) -> None:
    env = {"SYNTHSTREAM_BME280__FAULTS__GROUND_TRUTH": "true",
           "SYNTHSTREAM_BME280__FAULTS__DUPLICATE_RATE": "0.5"}  # fmt: skip
    args = ("run", "--sinks", "stdout", "--backfill", "--start", "2024-01-01T00:00:00",
            "--end", "2024-01-01T00:01:00", "--metrics-port", "0")  # fmt: skip
    result = cli(*args, env={**env, "SYNTHSTREAM_OUT": str(tmp_path / "a" / "b")})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a" / "b" / "bme280.ground-truth.jsonl").read_bytes().count(b"\n") > 10
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    refused = cli(*args, env={**env, "SYNTHSTREAM_OUT": str(blocker / "x")})
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"synthstream: error: bme280: faults.ground_truth: cannot create {blocker / 'x'} "
        "(Not a directory); accepted: a writable --out / SYNTHSTREAM_OUT"
    )


# A stop while the process starts, sent at a fixed point: when numpy is first imported (the
# slow part of starting), by the process itself.
EARLY_STOP = """\
import os, signal, sys
class Stop:
    def find_spec(self, name, path=None, target=None):
        if name == "numpy":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.{sig})
sys.meta_path.insert(0, Stop())
sys.argv = ["synthstream", *sys.argv[1:]]
from producer.entry import main
raise SystemExit(main())
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_stop_while_starting_ends_the_run_with_its_summary(sig: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")}
    result = subprocess.run(
        [sys.executable, "-c", EARLY_STOP.format(sig=sig), "run", "--sinks", "null",
         "--metrics-port", "0", "--log-format", "json"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    finished = json.loads(result.stderr.splitlines()[-1])
    assert finished["event"] == "synthstream_finished"
    assert finished["reason"] == f"signal {sig}"
    assert "Traceback" not in result.stderr


def test_a_stop_while_another_command_starts_does_what_the_signal_does(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", EARLY_STOP.format(sig="SIGTERM"), "config"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == -15, result.stderr
    assert result.stdout == ""


def test_max_records_counts_what_the_streams_made_and_the_time_reached_is_the_last(
    tmp_path: Path,
) -> None:
    """--max-records N: N records made, before faults (duplicates on top, drops counted);
    the summary reaches the event time of the last record, not the end of its chunk."""
    result = cli("run", "--backfill", "--start", "2024-12-31T23:30:00", "--max-records", "1000",
                 "--seed", "7", "--sinks", "file", "--out", str(tmp_path), "--metrics-port", "0",
                 "--log-format", "json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    finished = json.loads(result.stderr.splitlines()[-1])
    counts = finished["streams"]["bme280"]
    assert counts["generated"] - counts["duplicated_by_fault"] == 1000
    assert counts["duplicated_by_fault"] > 0, "the seed injects duplicates"
    rows = [json.loads(line) for p in sorted((tmp_path / "bme280").glob("*.jsonl"))
            for line in p.read_text().splitlines()]  # fmt: skip
    assert len(rows) == counts["sinks"]["file"]["delivered"]
    last = max(row["timestamp"] for row in rows)
    assert finished["event_time_reached"][:19] == last[:19], (finished, last)


@pytest.mark.parametrize("kind", ["kinesis", "s3"])
def test_an_aws_sink_without_credentials_names_the_settings_that_give_them(kind: str) -> None:
    """Waiting cannot help: the run ends at once, even with --wait-for-sinks, and says where
    credentials go (not "start it")."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNTHSTREAM_", "AWS_"))}
    env.update({"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/none",
                "AWS_EC2_METADATA_DISABLED": "true"})  # fmt: skip
    prefix = f"SYNTHSTREAM_SINKS__{kind.upper()}__"
    check = subprocess.run([sys.executable, "-m", "producer", "check", "--sinks", kind],
                           capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert check.returncode == 1
    assert f"{kind}: NOT reachable (" in check.stdout
    assert f"give credentials: {prefix}ACCESS_KEY_ID and {prefix}SECRET_ACCESS_KEY" in check.stdout
    run = subprocess.run(
        [sys.executable, "-m", "producer", "run", "--sinks", kind, "--metrics-port", "0",
         "--wait-for-sinks", "600"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1, run.stderr
    assert f"{kind} sink not reachable (" in run.stderr
    assert "give credentials" in run.stderr
    assert "--wait-for-sinks" not in run.stderr
