"""The s3 sink against LocalStack's S3: objects by stream, day and hour of event time in
each format, read back equal to the records; a backfill run again puts the same objects in
place (no second copy); an object above the multipart size goes up in parts."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import orjson
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tests.services import localstack
from tests.test_end_to_end import log_events

pytestmark = pytest.mark.services  # a real server (scripts/ start it)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with localstack() as endpoint:
        yield endpoint


def client(url: str) -> Any:
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")  # fmt: skip


def run(url: str, prefix: str, *args: str, **settings: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")}
    env.update({"SYNTHSTREAM_LOG__FORMAT": "json", "SYNTHSTREAM_SINKS__S3__ENDPOINT_URL": url,
                "SYNTHSTREAM_SINKS__S3__ACCESS_KEY_ID": "test",
                "SYNTHSTREAM_SINKS__S3__SECRET_ACCESS_KEY": "test",
                "SYNTHSTREAM_SINKS__S3__CREATE_BUCKET": "true",
                "SYNTHSTREAM_SINKS__S3__PREFIX": prefix})  # fmt: skip
    env.update({f"SYNTHSTREAM_{k.upper()}": v for k, v in settings.items()})
    result = subprocess.run(
        [sys.executable, "-m", "producer", "run", "--sinks", "s3", "--metrics-port", "0",
         "--progress", "off", *args], capture_output=True, text=True, env=env, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return log_events(result.stderr)


def objects(url: str, prefix: str) -> dict[str, bytes]:
    s3 = client(url)
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="synthstream",
                                                             Prefix=prefix):  # fmt: skip
        for item in page.get("Contents", []):
            found[item["Key"]] = s3.get_object(Bucket="synthstream", Key=item["Key"])["Body"].read()
    return found


def records(key: str, body: bytes) -> list[dict[str, Any]]:
    if key.endswith(".jsonl"):
        return [orjson.loads(line) for line in body.splitlines()]
    table = (pq.read_table(io.BytesIO(body)) if key.endswith(".parquet")
             else pacsv.read_csv(io.BytesIO(body)))  # fmt: skip
    return table.to_pylist()


WINDOW = ("--backfill", "--start", "2024-12-31T22:50:00", "--end", "2025-01-01T01:10:00")
PART = re.compile(r"^(?P<p>[^/]+)/bme280/dt=(?P<day>\d{4}-\d\d-\d\d)/hour=(?P<hour>\d\d)/"
                  r"part-\d+-[0-9a-f]{16}\.(?P<ext>jsonl|csv|parquet)$")  # fmt: skip


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_objects_are_partitioned_by_event_hour_and_hold_exactly_what_was_delivered(
    url: str, fmt: str
) -> None:
    prefix = f"formats-{fmt}"
    events = run(url, prefix, *WINDOW, sinks__s3__format=fmt)
    delivered = events["synthstream_finished"]["streams"]["bme280"]["sinks"]["s3"]["delivered"]
    found = objects(url, prefix + "/")
    hours = set()
    ids = []
    for key, body in found.items():
        match = PART.match(key)
        assert match, key
        assert match["ext"] == fmt
        rows = records(key, body)
        for row in rows:  # each record lies in its object's day and hour (UTC event time)
            stamp = str(row["timestamp"])
            hour = (f"{match['day']}T{match['hour']}", f"{match['day']} {match['hour']}")
            assert stamp.startswith(hour), (key, stamp)
            ids.append(row["message_id"])
        hours.add((match["day"], match["hour"]))
    assert hours == {("2024-12-31", "22"), ("2024-12-31", "23"), ("2025-01-01", "00"),
                     ("2025-01-01", "01")}, "over New Year"  # fmt: skip
    assert len(ids) == delivered > 0


def test_a_backfill_run_again_puts_the_same_objects_in_place(url: str) -> None:
    first = run(url, "again", *WINDOW)
    keys = set(objects(url, "again/"))
    second = run(url, "again", *WINDOW)
    assert set(objects(url, "again/")) == keys, "the same keys: overwritten, not doubled"
    done = [e["synthstream_finished"]["streams"]["bme280"]["sinks"]["s3"]["delivered"]
            for e in (first, second)]  # fmt: skip
    assert done[0] == done[1] == sum(len(b.splitlines()) for b in objects(url, "again/").values())


def test_an_object_above_the_multipart_size_goes_up_in_parts(url: str) -> None:
    events = run(url, "multipart", "--backfill", "--start", "2024-05-01T00:00:00", "--end",
                 "2024-05-01T00:02:00", bme280__devices="1000", bme280__rate__interval_s="1",
                 sinks__s3__multipart_bytes=str(5 * 2**20))  # fmt: skip
    delivered = events["synthstream_finished"]["streams"]["bme280"]["sinks"]["s3"]["delivered"]
    s3 = client(url)
    listed = s3.list_objects_v2(Bucket="synthstream", Prefix="multipart/")["Contents"]
    big = [item for item in listed if item["Size"] > 5 * 2**20]
    assert big, [item["Size"] for item in listed]
    head = s3.head_object(Bucket="synthstream", Key=big[0]["Key"])
    assert "-" in head["ETag"], "a multipart object's ETag counts its parts"
    assert sum(len(b.splitlines()) for b in objects(url, "multipart/").values()) == delivered
