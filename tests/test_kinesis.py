"""The kinesis sink against LocalStack, started natively on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import orjson
import pytest

from producer.app import Engine
from producer.clock import Stopper
from producer.config import load_settings
from producer.domains.air_quality.model import AirQualityMeasurement
from producer.metrics import Metrics
from producer.records import Kinds
from sinks.kinesis import KinesisSinkSettings
from tests.services import localstack

pytestmark = pytest.mark.services  # a real server (scripts/ start it)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with localstack() as url:
        yield url


def settings(url: str, stream: str, per_call: int = 500, **faults: Any) -> Any:
    return load_settings(
        {
            "streams": "air_quality",
            "metrics": {"enabled": False},
            "backfill": {"enabled": True, "start": "2024-05-01T00:00:00",
                         "end": "2024-05-01T00:33:20", "progress": "off"},
            "air_quality": {"sinks": "kinesis",
                            "rate": {"total_per_s": 1.0}, "cities": 20,
                            "faults": {"drop_rate": 0.01, "duplicate_rate": 0.02, **faults}},
            "sinks": {"kinesis": {"endpoint_url": url, "shards": 3, "max_records": per_call,
                                  "streams": {"air_quality": stream},
                                  "access_key_id": "test", "secret_access_key": "test"}},
            "delivery": {"backoff_base_s": 0.02, "backoff_max_s": 0.3, "max_attempts": 100},
        }
    )  # fmt: skip


def read_all(url: str, stream: str) -> dict[str, list[dict[str, Any]]]:
    """Every record of every shard, by shard id."""
    client = boto3.client("kinesis", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")  # fmt: skip
    shards = client.list_shards(StreamName=stream)["Shards"]
    out: dict[str, list[dict[str, Any]]] = {}
    for shard in shards:
        iterator = client.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records: list[dict[str, Any]] = []
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=10_000)
            records += page["Records"]
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
        out[shard["ShardId"]] = records
    return out


async def run(url: str, stream: str, per_call: int = 500) -> Metrics:
    metrics = Metrics()
    outcome = await Engine(settings(url, stream, per_call), metrics).run(Stopper())
    assert outcome.exit_code == 0
    return metrics


async def test_air_quality_lands_in_kinesis_keyed_by_city(endpoint: str) -> None:
    metrics = await run(endpoint, "aq-clean")
    labels = {"stream": "air_quality"}
    generated = metrics.value("synthstream_records_generated_total", labels)
    dropped = metrics.value("synthstream_records_dropped_by_fault_total", labels)
    duplicated = metrics.value("synthstream_records_duplicated_by_fault_total", labels)
    shards = read_all(endpoint, "aq-clean")
    records = [r for rs in shards.values() for r in rs]
    assert len(records) == generated - dropped
    assert dropped > 0
    assert duplicated > 0
    shard_of: dict[str, set[str]] = {}
    rows = []
    for shard, rs in shards.items():
        for r in rs:
            row = orjson.loads(r["Data"])
            rows.append(row)
            assert r["PartitionKey"] == row["city_id"]
            shard_of.setdefault(row["city_id"], set()).add(shard)
            AirQualityMeasurement.model_validate(row)
    assert all(len(s) == 1 for s in shard_of.values()), "one shard per key"
    assert sum(1 for rs in shards.values() if rs) > 1, "keys spread over the shards"
    copies = [r for r in rows if r["is_duplicate"]]
    assert len(copies) == duplicated
    ids = {r["message_id"] for r in rows if not r["is_duplicate"]}
    assert {r["message_id"] for r in copies} <= ids, "a duplicate has its original's id"


async def test_nothing_is_lost_when_kinesis_throttles() -> None:
    with localstack(KINESIS_ERROR_PROBABILITY="0.3") as url:
        # ~40 calls of 50 records: with 30 % of calls throttled, some surely are.
        metrics = await run(url, "aq-throttled", per_call=50)
        shards = read_all(url, "aq-throttled")
    labels = {"stream": "air_quality"}
    generated = metrics.value("synthstream_records_generated_total", labels)
    dropped = metrics.value("synthstream_records_dropped_by_fault_total", labels)
    records = [r for rs in shards.values() for r in rs]
    assert len(records) == generated - dropped
    ids = [orjson.loads(r["Data"])["message_id"] for r in records]
    assert len(ids) == len(records)
    retries = sum(
        s.value
        for family in metrics.registry.collect()
        if family.name == "synthstream_send_retries"
        for s in family.samples
        if s.name.endswith("_total")
    )
    assert retries > 0, "throttled calls went through the retry path"


class _Huge:
    """A domain whose every third record is over Kinesis' 1 MiB limit (a test double of a
    record shape, not of the sink)."""

    stream = "air_quality"
    partition_key = "k"
    time_field = "t"
    optional_fields: tuple[str, ...] = ()
    kinds: Kinds | None = None

    def __init__(self) -> None:
        self.measures: dict[str, tuple[float, float, float]] = {}

    def rows(self, batch: Any) -> list[dict[str, Any]]:
        return [{"k": f"key{i}", "t": "x", "pad": "x" * (1_100_000 if i % 3 == 0 else 10)}
                for i in range(len(batch))]  # fmt: skip

    def table(self, batch: Any) -> Any:
        raise NotImplementedError


async def test_records_over_1_mib_fail_for_good_and_the_rest_arrive(endpoint: str) -> None:
    import numpy as np

    from producer.records import RecordBatch
    from producer.sink import PartialFailure
    from sinks.kinesis import KinesisSink

    s = settings(endpoint, "aq-huge")
    kinesis = s.sink("kinesis")
    assert isinstance(kinesis, KinesisSinkSettings)
    sink = KinesisSink(kinesis, {"air_quality": "aq-huge"})
    await sink.open()
    n = 9
    batch = RecordBatch("air_quality", np.arange(n), np.arange(n), np.arange(n, dtype=np.uint64),
                        {})  # fmt: skip
    with pytest.raises(PartialFailure) as caught:
        await sink.send(sink.encode(batch, _Huge()))
    await sink.aclose()
    assert caught.value.failed.size == 0
    assert caught.value.rejected["record_too_large"].tolist() == [0, 3, 6]
    records = [r for rs in read_all(endpoint, "aq-huge").values() for r in rs]
    assert sorted(r["PartitionKey"] for r in records) == [f"key{i}" for i in (1, 2, 4, 5, 7, 8)]


def test_check_reports_kinesis(endpoint: str) -> None:
    from tests.conftest import cli

    env = {"SYNTHSTREAM_SINKS__KINESIS__ENDPOINT_URL": endpoint,
           "SYNTHSTREAM_SINKS__KINESIS__ACCESS_KEY_ID": "test",
           "SYNTHSTREAM_SINKS__KINESIS__SECRET_ACCESS_KEY": "test"}  # fmt: skip
    ok = cli("check", "--streams", "air_quality", "--sinks", "kinesis", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "kinesis: reachable" in ok.stdout
    # check only looks: a stream it does not find is still missing when it looks again
    env["SYNTHSTREAM_SINKS__KINESIS__STREAMS"] = '{"air_quality": "aq-only-looked-at"}'
    for _ in range(2):
        looked = cli("check", "--streams", "air_quality", "--sinks", "kinesis", env=env)
        assert looked.returncode == 0, looked.stdout + looked.stderr
        assert "(aq-only-looked-at: a run creates it)" in looked.stdout
    env["SYNTHSTREAM_SINKS__KINESIS__CREATE_STREAMS"] = "false"
    refused = cli("check", "--streams", "air_quality", "--sinks", "kinesis", env=env)
    assert refused.returncode == 1
    assert (
        "no stream aq-only-looked-at); create it, or let a run: SYNTHSTREAM_SINKS__KINESIS__"
        "CREATE_STREAMS=true" in refused.stdout
    )
