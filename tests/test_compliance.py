"""One compliance suite for every sink, each against its real destination: stdout (a pipe),
file (a folder, and a filesystem that fills), http (the reference endpoint), kafka (a Tansu
broker), kinesis and s3 (LocalStack), postgres (PostgreSQL from scripts/postgres).

Every case runs ``synthstream run`` as a user does and then reads what the destination holds.
Each asserts the accounting identity of the summary, and that the unique ``message_id``s the
destination holds are exactly ``delivered`` (less the copies fault injection made on
purpose): nothing lost, nothing counted that did not arrive, duplicates only where injected
or counted as ``redelivered``. The cases:

- happy path, with drops and duplicates injected;
- a stop signal under backpressure (a small queue), mid-send: the run ends within the
  deadline and what the destination acknowledged is what it holds;
- partial failure (what the real destination can be made to do): 30 % of HTTP requests
  answered 503; a file system that fills;
- permanent failure: a wrong HTTP token (the others' destinations here cannot refuse a
  record for good).

(Outages, a destination down at start and then up, are in each sink's own tests:
``test_http``, ``test_kafka``, ``test_kinesis``.)
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import next_event
from tests.services import ingest, kafka_broker, localstack, postgres, small_filesystem
from tests.test_cdc import read_topic
from tests.test_end_to_end import delivered_series, log_events, scrape_until
from tests.test_kafka import consume
from tests.test_kinesis import read_all

pytestmark = pytest.mark.services  # a real server (scripts/ start it)

SINKS = ("stdout", "file", "http", "kafka", "kinesis", "postgres", "s3")


@dataclass
class Destination:
    """Where a sink's records land, and how to read back every message_id it holds."""

    sink: str
    env: dict[str, str]
    read: Any = None  # (run stdout) -> list of message ids, duplicates included
    extra: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    with kafka_broker() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with postgres() as (_psql, port):
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"


def rows_of(url: str, table: str, column: str = "message_id") -> list[str]:
    import psycopg

    with psycopg.connect(url) as connection:
        found = connection.execute("SELECT to_regclass(%s)", (f'"{table}"',)).fetchone()
        if found is None or found[0] is None:
            return []
        return [row[0] for row in connection.execute(f'SELECT "{column}" FROM "{table}"')]


def objects_of(url: str, prefix: str) -> list[bytes]:
    """Every line of every object under ``prefix`` of the synthstream bucket."""
    import boto3

    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")  # fmt: skip
    lines: list[bytes] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket="synthstream",
                                                                 Prefix=prefix):  # fmt: skip
        for item in page.get("Contents", []):
            body = client.get_object(Bucket="synthstream", Key=item["Key"])["Body"].read()
            lines += body.splitlines()
    return lines


@pytest.fixture(scope="module")
def kinesis_url() -> Iterator[str]:
    with localstack() as url:
        yield url


def _ids(lines: list[bytes]) -> list[str]:
    return [orjson.loads(line)["message_id"] for line in lines if line.strip()]


@contextmanager
def destination(sink: str, tmp_path: Path, request: pytest.FixtureRequest,
                *ingest_args: str) -> Iterator[Destination]:  # fmt: skip
    name = f"compliance-{request.node.name.replace('[', '-').rstrip(']')}"[:60]
    if sink == "stdout":
        yield Destination(sink, {}, lambda out: _ids(out.splitlines()))
    elif sink == "file":
        folder = tmp_path / "out"
        yield Destination(sink, {"SYNTHSTREAM_SINKS__FILE__DIR": str(folder)},
                          lambda _out: _ids([line for f in sorted(folder.rglob("*.jsonl"))
                                             for line in f.read_bytes().splitlines()]))  # fmt: skip
    elif sink == "http":
        accepted = tmp_path / "accepted.jsonl"
        with ingest("--out", str(accepted), *ingest_args) as (port, _server):
            dest = Destination(sink, {"SYNTHSTREAM_SINKS__HTTP__BASE_URL":
                                      f"http://127.0.0.1:{port}"})  # fmt: skip
            yield dest
        dest.extra["accepted"] = _ids(accepted.read_bytes().splitlines())
        dest.read = lambda _out: dest.extra["accepted"]
    elif sink == "kafka":
        bootstrap = request.getfixturevalue("broker")
        dest = Destination(sink, {"SYNTHSTREAM_SINKS__KAFKA__BOOTSTRAP_SERVERS": bootstrap,
                                  "SYNTHSTREAM_SINKS__KAFKA__TOPICS":
                                      orjson.dumps({"bme280": name}).decode()})  # fmt: skip

        def read_kafka(_out: str) -> list[str]:
            expected = dest.extra.get("expected", 0)
            messages = asyncio.run(consume(bootstrap, name, expected))
            return [orjson.loads(m.value)["message_id"] for m in messages]

        dest.read = read_kafka
        yield dest
    elif sink == "s3":
        url = request.getfixturevalue("kinesis_url")  # (the same LocalStack serves S3)
        prefix = name
        dest = Destination(sink, {"SYNTHSTREAM_SINKS__S3__ENDPOINT_URL": url,
                                  "SYNTHSTREAM_SINKS__S3__ACCESS_KEY_ID": "test",
                                  "SYNTHSTREAM_SINKS__S3__SECRET_ACCESS_KEY": "test",
                                  "SYNTHSTREAM_SINKS__S3__CREATE_BUCKET": "true",
                                  "SYNTHSTREAM_SINKS__S3__PREFIX": prefix},
                           lambda _out: _ids(objects_of(url, f"{prefix}/bme280/")))  # fmt: skip
        dest.extra["prefix"] = prefix
        yield dest
    elif sink == "postgres":
        url = request.getfixturevalue("database")
        prefix = f"t{abs(hash(name)) % 10**8}_"  # (a table name has at most 63 bytes)
        dest = Destination(sink, {"SYNTHSTREAM_SINKS__POSTGRES__DSN": url,
                                  "SYNTHSTREAM_SINKS__POSTGRES__TABLE_PREFIX": prefix},
                           lambda _out: rows_of(url, prefix + "bme280"))  # fmt: skip
        dest.extra["prefix"] = prefix
        yield dest
    else:
        url = request.getfixturevalue("kinesis_url")
        yield Destination(sink, {"SYNTHSTREAM_SINKS__KINESIS__ENDPOINT_URL": url,
                                 "SYNTHSTREAM_SINKS__KINESIS__ACCESS_KEY_ID": "test",
                                 "SYNTHSTREAM_SINKS__KINESIS__SECRET_ACCESS_KEY": "test",
                                 "SYNTHSTREAM_SINKS__KINESIS__STREAMS":
                                     orjson.dumps({"bme280": name}).decode()},
                          lambda _out: [orjson.loads(r["Data"])["message_id"]
                                        for rs in read_all(url, name).values()
                                        for r in rs])  # fmt: skip


def environment(dest: Destination, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")}
    env.update({"SYNTHSTREAM_LOG__FORMAT": "json", "SYNTHSTREAM_BME280__SINKS": dest.sink,
                "SYNTHSTREAM_DELIVERY__BACKOFF_BASE_S": "0.02",
                "SYNTHSTREAM_DELIVERY__BACKOFF_MAX_S": "0.2", **dest.env})  # fmt: skip
    env.update({f"SYNTHSTREAM_{k.upper()}": v for k, v in settings.items()})
    return env


def backfill(env: dict[str, str], end: str = "2024-05-01T00:10:00") -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "producer", "run", "--backfill", "--start",
         "2024-05-01T00:00:00", "--end", end, "--metrics-port", "0", "--progress", "off"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip


def finish(proc: subprocess.Popen[bytes], timeout: float = 120) -> tuple[str, dict[str, Any]]:
    """The run's stdout and log events; a run past ``timeout`` is killed (its pipes closed,
    so no later test inherits a running producer) and fails with the end of its log."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"no end within {timeout} s: {err.decode()[-1500:]}") from None
    return out.decode(), log_events(err.decode())


def check_ledger(events: dict[str, Any], held: list[str], sink: str) -> dict[str, Any]:
    """The identity, and the destination holds exactly what was called delivered."""
    stream = events["synthstream_finished"]["streams"]["bme280"]
    counts = stream["sinks"][sink]
    assert stream["generated"] == (counts["delivered"] + stream["dropped_by_fault"]
                                   + counts["failed"] + counts["in_flight"])  # fmt: skip
    assert counts["in_flight"] == 0
    assert len(held) == counts["delivered"], "the destination holds exactly what was delivered"
    duplicates = len(held) - len(set(held))
    assert duplicates <= stream["duplicated_by_fault"] + counts.get("redelivered", 0)
    return dict(counts, generated=stream["generated"], dropped=stream["dropped_by_fault"],
                duplicated=stream["duplicated_by_fault"], unique=len(set(held)))  # fmt: skip


# ---------------------------------------------------------------------------- the cases
@pytest.mark.parametrize("sink", SINKS)
def test_happy_path_with_injected_drops_and_duplicates(
    sink: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with destination(sink, tmp_path, request) as dest:
        env = environment(dest, bme280__faults__drop_rate="0.01",
                          bme280__faults__duplicate_rate="0.02")  # fmt: skip
        out, events = finish(backfill(env))
        dest.extra["expected"] = events["synthstream_finished"]["streams"]["bme280"]["sinks"][
            sink]["delivered"]  # fmt: skip
    counts = check_ledger(events, dest.read(out), sink)
    assert counts["failed"] == 0
    assert counts["dropped"] > 0
    assert counts["duplicated"] > 0
    assert counts["unique"] == counts["generated"] - counts["dropped"] - counts["duplicated"]
    assert events["synthstream_finished"]["exit_code"] == 0


@pytest.mark.parametrize("sink", SINKS)
def test_a_stop_under_backpressure_ends_in_time_and_counts_exactly(
    sink: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ingest_args = ("--latency-ms", "50") if sink == "http" else ()
    with destination(sink, tmp_path, request, *ingest_args) as dest:
        small = {f"sinks__{name}__max_records": "100"
                 for name in ("file", "stdout", "kafka", "kinesis", "postgres", "s3")}  # fmt: skip
        env = environment(dest, delivery__queue_records="500", delivery__shutdown_timeout_s="1",
                          bme280__devices="50", bme280__rate__interval_s="1",
                          bme280__faults__drop_rate="0", bme280__faults__duplicate_rate="0",
                          **small)  # fmt: skip
        proc = backfill(env, end="2024-05-08T00:00:00")  # 30 M records: far more than it sends
        chunks: list[bytes] = []
        stdout = proc.stdout
        assert stdout is not None
        reader = threading.Thread(target=lambda: chunks.append(stdout.read()))
        reader.start()  # (a pipe must be read, as a consumer of stdout would)
        try:
            assert proc.stderr is not None
            log = io.TextIOWrapper(proc.stderr)
            port = next_event(log, "synthstream_started")["metrics_port"]
            labels = f'{{sink="{sink}",stream="bme280"}}'
            m = scrape_until(port, delivered_series(sink), 200)
            assert m[f"synthstream_queue_depth_records{labels}"] <= 500
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            rest = log.read()
            proc.wait(timeout=30)
            took = time.monotonic() - signalled
            reader.join(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            reader.join(timeout=30)
            stdout.close()
            log.close()
        events = log_events(rest)
        dest.extra["expected"] = events["synthstream_finished"]["streams"]["bme280"]["sinks"][
            sink]["delivered"]  # fmt: skip
    assert took < 1 + 2 + 5, f"deadline 1 s + 2 s for sends under way: took {took:.1f} s"
    counts = check_ledger(events, dest.read(b"".join(chunks).decode()), sink)
    assert counts["generated"] < 2_000_000, "generation stopped at the signal"
    assert counts["unique"] == counts["delivered"]


@pytest.mark.parametrize("sink", ["http", "file"])
def test_a_partial_failure_resends_only_what_failed(
    sink: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ingest_args = ("--fail-rate", "0.3", "--seed", "3") if sink == "http" else ()
    with destination(sink, tmp_path, request, *ingest_args) as dest:
        env = environment(dest, bme280__faults__drop_rate="0", delivery__max_attempts="100",
                          bme280__faults__duplicate_rate="0")  # fmt: skip
        if sink == "http":
            out, events = finish(backfill(env))
        else:  # a disk that fills: the part that fits lands, whole, the rest fails
            with small_filesystem(Path(env["SYNTHSTREAM_SINKS__FILE__DIR"]), "1m"):
                env["SYNTHSTREAM_DELIVERY__MAX_ATTEMPTS"] = "3"
                env["SYNTHSTREAM_SINKS__FILE__MAX_RECORDS"] = "500"
                out, events = finish(backfill(env, end="2024-05-02T00:00:00"))
                held = dest.read(out)
            dest.read = lambda _out: held
    counts = check_ledger(events, dest.read(out), sink)
    if sink == "http":
        assert counts["failed"] == 0, "every 503 was retried, by itself"
        assert counts["unique"] == counts["generated"]
        assert events["send_retry"]["reason"] == "http_503"
    else:
        assert counts["failed"] > 0
        assert counts["delivered"] > 0
        assert events["send_retry"]["reason"] == "disk_full"


@pytest.mark.parametrize("sink", ["http"])
def test_a_permanent_failure_fails_once_without_retrying(
    sink: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ingest_args = ("--token", "right") if sink == "http" else ()
    with destination(sink, tmp_path, request, *ingest_args) as dest:
        settings = {
            "bme280__faults__drop_rate": "0",
            "bme280__faults__duplicate_rate": "0",
            "sinks__http__bearer_token": "wrong",
        }
        out, events = finish(backfill(environment(dest, **settings)))
        dest.extra["expected"] = 0
    counts = check_ledger(events, dest.read(out), sink)
    assert counts["delivered"] == 0
    assert counts["failed"] == counts["generated"]
    assert "send_retry" not in events
    assert events["synthstream_finished"]["exit_code"] == 1


# ------------------------------------------------------------------ spec streams, every sink
EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples" / "specs").glob("*.yaml"))


@pytest.mark.parametrize("sink", SINKS)
def test_every_example_spec_runs_through_the_sink_exactly(
    sink: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The streams of every file in examples/specs/ at once, two minutes of event time (half
    a minute to Kinesis), to the real destination: for each stream it holds exactly the
    records called delivered."""
    from producer.specs.loading import load_spec

    streams = {name: spec for path in EXAMPLES for name, spec in load_spec(path).streams.items()}
    with destination(sink, tmp_path, request) as dest:
        env = environment(dest)
        if sink == "http":  # any stream's records: /api/v1/streams/<stream>
            env["SYNTHSTREAM_SINKS__HTTP__BASE_URL"] += "/api/v1/streams"
        env["SYNTHSTREAM_SPECS"] = ",".join(str(p) for p in EXAMPLES)
        env["SYNTHSTREAM_SPECS_SINKS"] = sink
        # LocalStack's Kinesis takes longer for each record the longer its stream is (a
        # put to a stream of 5,000 records takes about 4 ms a record): half a minute there.
        end = "2024-05-01T00:00:30" if sink == "kinesis" else "2024-05-01T00:02:00"
        proc = subprocess.Popen(
            [sys.executable, "-m", "producer", "run", "--backfill", "--start",
             "2024-05-01T00:00:00", "--end", end, "--metrics-port", "0", "--progress", "off"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        out, events = finish(proc, timeout=300)
    finished = events["synthstream_finished"]
    assert finished["exit_code"] == 0, {
        k: v for k, v in events.items() if k != "synthstream_started"
    }
    assert set(finished["streams"]) == set(streams)
    held: dict[str, list[str]] = {}
    if sink in ("stdout", "file", "http"):
        if sink == "stdout":
            lines = out.encode().splitlines()
        elif sink == "file":
            lines = [line for f in sorted((tmp_path / "out").rglob("*.jsonl"))
                     if not f.name.endswith(".ground-truth.jsonl")  # (payments' episodes)
                     for line in f.read_bytes().splitlines()]  # fmt: skip
        else:
            lines = (tmp_path / "accepted.jsonl").read_bytes().splitlines()
        # Each stream's records have their own set of fields.
        shapes = {name: frozenset({spec.entities.id_field, spec.time_field, "message_id",
                                   "is_duplicate", *spec.entities.attributes, *spec.fields}
                                  - {n for n in [*spec.entities.attributes, *spec.fields]
                                     if n.startswith("_")})
                  for name, spec in streams.items()}  # fmt: skip
        for line in lines:
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise AssertionError(line[:400]) from None
            if "op" in record and "source" in record:  # a table's change (CDC)
                name = record["source"]["stream"]
            else:
                name = next(n for n, shape in shapes.items() if shape == set(record))
            held.setdefault(name, []).append(record["message_id"])
    for name, spec in streams.items():
        counts = finished["streams"][name]
        delivered = counts["sinks"][sink]["delivered"]
        assert delivered > 0, name
        assert counts["generated"] == delivered + counts["dropped_by_fault"], name
        if sink == "kafka":
            topic = spec.destinations.get("kafka", name)
            bootstrap = dest.env["SYNTHSTREAM_SINKS__KAFKA__BOOTSTRAP_SERVERS"]
            got = asyncio.run(read_topic(bootstrap, topic, delivered))
            got = [m for m in got if m.value is not None]  # (a table's tombstones)
            held[name] = [orjson.loads(m.value)["message_id"] for m in got]
            key = spec.key or spec.entities.id_field  # payments: keyed by account
            values = [orjson.loads(m.value) for m in got]
            if spec.table is not None:  # a change: keyed by its row's primary key
                values = [v["after"] or v["before"] for v in values]
                key = (spec.table.key or [spec.entities.id_field])[0]
            assert all(m.key.decode() == v[key] for m, v in zip(got, values, strict=True)), name
        elif sink == "postgres":
            url = dest.env["SYNTHSTREAM_SINKS__POSTGRES__DSN"]
            if spec.table is not None:  # a table holds rows, not changes: the snapshot's
                rows = rows_of(url, dest.extra["prefix"] + name, "customer_id")
                assert len(rows) == len(set(rows)) > 0, name  # (two minutes: few changes)
                continue
            held[name] = rows_of(url, dest.extra["prefix"] + name)
        elif sink == "s3":
            url = dest.env["SYNTHSTREAM_SINKS__S3__ENDPOINT_URL"]
            held[name] = _ids(objects_of(url, f"{dest.extra['prefix']}/{name}/"))
        elif sink == "kinesis":
            url = dest.env["SYNTHSTREAM_SINKS__KINESIS__ENDPOINT_URL"]
            held[name] = [orjson.loads(r["Data"])["message_id"]
                          for rs in read_all(url, spec.destinations.get("kinesis", name)).values()
                          for r in rs]  # fmt: skip
        assert len(held.get(name, [])) == delivered, name
