"""The BME280 generator: the seed's bounds, continuity, patterns, events and JSON shape."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import orjson
import pytest

from ingest.app import BME280Reading  # the seed's schema, as the ingest endpoint enforces it
from producer.domains.bme280.kind import Bme280Settings
from producer.domains.bme280.model import Bme280Generator, daily_cycle
from producer.encoding import encode_jsonl
from producer.generators import entity_keys
from producer.rates import Due, FixedInterval
from producer.timeline import HOUR_MS

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def make(n: int = 20, seed: int = 1, **kw: Any) -> tuple[Bme280Generator, FixedInterval]:
    settings = Bme280Settings(devices=n, **kw)
    ids = np.arange(n, dtype=np.int64)
    keys = entity_keys(seed, "bme280", ids)
    return Bme280Generator(settings, ids, keys), FixedInterval(ids, keys, 10_000)


def run(gen: Bme280Generator, rate: FixedInterval, hours: float, chunk_ms: int = HOUR_MS) -> Any:
    batches = []
    end = T0 + int(hours * HOUR_MS)
    for t in range(T0, end, chunk_ms):
        batches.append(gen.generate(rate.due(t, min(t + chunk_ms, end))))
    from producer.records import RecordBatch

    return RecordBatch.concat(batches)


def test_without_noise_or_patterns_values_stay_inside_the_configured_ranges() -> None:
    gen, rate = make(
        temp_min=15, temp_max=30, humidity_min=20, humidity_max=80, pressure_min=995,
        pressure_max=1030, add_noise=False, enable_daily_pattern=False,
        enable_weather_events=False,
    )  # fmt: skip
    b = run(gen, rate, 6)
    assert b.columns["temperature_c"].min() >= 15
    assert b.columns["temperature_c"].max() <= 30
    assert b.columns["humidity"].min() >= 20
    assert b.columns["humidity"].max() <= 80
    assert b.columns["pressure_hpa"].min() >= 995
    assert b.columns["pressure_hpa"].max() <= 1030


def test_with_everything_on_values_stay_inside_range_plus_noise() -> None:
    gen, rate = make()
    b = run(gen, rate, 48)
    noise = 5 * 0.1  # five standard deviations of the largest noise (humidity: 0.1 x 1.0)
    assert b.columns["temperature_c"].min() >= 18 - noise
    assert b.columns["temperature_c"].max() <= 28 + noise
    assert b.columns["humidity"].min() >= 30 - noise
    assert b.columns["humidity"].max() <= 70 + noise
    assert b.columns["pressure_hpa"].min() >= 1000 - noise
    assert b.columns["pressure_hpa"].max() <= 1025 + noise


def test_consecutive_readings_of_a_device_change_gradually() -> None:
    gen, rate = make()
    b = run(gen, rate, 24)
    for device in range(20):
        mine = b.entity == device
        assert np.all(np.diff(b.time_ms[mine]) > 0)
        for column, limit in (("temperature_c", 5.0), ("humidity", 10.0), ("pressure_hpa", 5.0)):
            jumps = np.abs(np.diff(b.columns[column][mine]))
            assert jumps.max() < limit, (column, jumps.max())
        # ... and they do move: a random walk, not a constant.
        assert np.std(b.columns["temperature_c"][mine]) > 0.2


def test_values_are_rounded_to_two_decimals() -> None:
    gen, rate = make()
    b = run(gen, rate, 1)
    for column in ("temperature_c", "humidity", "pressure_hpa"):
        assert np.allclose(np.round(b.columns[column], 2), b.columns[column])


def test_daily_pattern_warm_afternoons_and_humid_dawns_from_event_time() -> None:
    assert daily_cycle(np.array([6.0]))[0] == pytest.approx(-1)
    assert daily_cycle(np.array([14.0]))[0] == pytest.approx(1)
    gen, rate = make(n=100, enable_weather_events=False)
    b = run(gen, rate, 24 * 4)
    hour = (b.time_ms % (24 * HOUR_MS)) // HOUR_MS
    temp_14 = b.columns["temperature_c"][hour == 14].mean()
    temp_6 = b.columns["temperature_c"][hour == 6].mean()
    hum_14 = b.columns["humidity"][hour == 14].mean()
    hum_6 = b.columns["humidity"][hour == 6].mean()
    assert temp_14 - temp_6 == pytest.approx(6.0, abs=1.0)  # the seed's +/-3 C swing
    assert hum_6 - hum_14 == pytest.approx(20.0, abs=3.0)  # and +/-10 % for humidity


def test_weather_events_start_about_once_per_hundred_readings_and_last_10_to_50() -> None:
    gen, rate = make(n=100)
    b = run(gen, rate, 24)
    starts = 0
    lengths: list[int] = []
    for device in range(100):
        active = b.columns["in_weather_event"][b.entity == device].astype(np.int8)
        edges = np.diff(np.concatenate([[0], active, [0]]))
        begin, end = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        starts += begin.size
        lengths += (end - begin)[end < active.size].tolist()  # finished events only
    readings = len(b)
    # Starts happen only outside events: somewhat under 1% of all readings.
    assert 0.005 * readings < starts < 0.011 * readings
    # The seed counts the starting reading, so an event shows for 9..49 readings.
    assert min(lengths) >= 9
    assert max(lengths) <= 49
    kinds = b.columns["weather_event"][b.columns["in_weather_event"]]
    assert set(np.unique(kinds).tolist()) == {0, 1, 2}


def test_storms_lower_pressure() -> None:
    gen, rate = make(n=300, add_noise=False, enable_daily_pattern=False)
    b = run(gen, rate, 24)
    change = np.zeros(len(b))
    for device in range(300):
        mine = np.flatnonzero(b.entity == device)
        change[mine[1:]] = np.diff(b.columns["pressure_hpa"][mine])
    storm = b.columns["weather_event"] == 0
    clear = b.columns["weather_event"] == 2
    assert change[storm].mean() < -0.1
    assert change[clear].mean() > 0.05


def test_json_rows_have_the_seed_shape_and_validate() -> None:
    gen, rate = make()
    b = run(gen, rate, 2)
    lines = encode_jsonl(gen.schema, b).splitlines()
    assert len(lines) == len(b)
    rows = [orjson.loads(line) for line in lines]
    assert set(rows[0]) == {
        "device_id", "temperature_c", "humidity", "pressure_hpa", "timestamp", "metadata",
        "message_id", "is_duplicate",
    }  # fmt: skip
    assert set(rows[0]["metadata"]) == {
        "generator", "version", "in_weather_event", "weather_event_type",
    }  # fmt: skip
    for row in rows[:: max(1, len(rows) // 500)]:
        reading = BME280Reading.model_validate(row)
        assert reading.timestamp is not None
        assert reading.timestamp.tzinfo is not None
        assert row["device_id"].startswith("bme280_00")
    assert len({row["message_id"] for row in rows}) == len(rows)


def test_arrow_table_matches_json_rows() -> None:
    gen, rate = make()
    b = run(gen, rate, 1)
    table = gen.schema.table(b).to_pylist()
    rows = gen.schema.rows(b)
    for row, arrow in zip(rows[:50], table[:50], strict=True):
        assert arrow["device_id"] == row["device_id"]
        assert arrow["temperature_c"] == row["temperature_c"]
        assert arrow["message_id"] == row["message_id"]
        assert arrow["metadata"]["weather_event_type"] == row["metadata"]["weather_event_type"]
        assert arrow["timestamp"] == datetime.fromisoformat(row["timestamp"])


def test_same_seed_same_readings_whatever_the_batching() -> None:
    a = run(*make(seed=5), 3, chunk_ms=HOUR_MS)
    b = run(*make(seed=5), 3, chunk_ms=7_777)
    c = run(*make(seed=6), 3)
    assert np.array_equal(a.columns["temperature_c"], b.columns["temperature_c"])
    assert np.array_equal(a.key, b.key)
    assert not np.array_equal(a.columns["temperature_c"], c.columns["temperature_c"])


def test_a_device_does_not_depend_on_the_other_devices() -> None:
    settings = Bme280Settings(devices=10)
    all_ids = np.arange(10, dtype=np.int64)
    some_ids = np.array([3, 7], dtype=np.int64)
    outputs = []
    for ids in (all_ids, some_ids):
        keys = entity_keys(1, "bme280", ids)
        gen = Bme280Generator(settings, ids, keys)
        rate = FixedInterval(ids, keys, 10_000)
        b = gen.generate(rate.due(T0, T0 + HOUR_MS))
        outputs.append(b.columns["humidity"][b.entity == 7])
    assert np.array_equal(outputs[0], outputs[1])


def test_many_readings_of_one_device_in_one_batch_follow_each_other() -> None:
    settings = Bme280Settings(devices=1, add_noise=False, enable_weather_events=False,
                              enable_daily_pattern=False)  # fmt: skip
    ids = np.zeros(1, dtype=np.int64)
    gen = Bme280Generator(settings, ids, entity_keys(1, "bme280", ids))
    due = Due(np.zeros(500, dtype=np.int64), T0 + np.arange(500, dtype=np.int64) * 1000)
    values = gen.generate(due).columns["temperature_c"]
    assert np.abs(np.diff(values)).max() <= 0.5 + 0.01  # one drift step at a time
