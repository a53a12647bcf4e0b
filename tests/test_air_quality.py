"""The air-quality generator: the seed's multipliers, visible in the data, and its schema."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from producer.domains.air_quality.kind import AirQualitySettings
from producer.domains.air_quality.model import (
    AirQualityGenerator,
    AirQualityMeasurement,
    invalid_rows,
)
from producer.encoding import encode_jsonl
from producer.generators import entity_keys
from producer.geography import load_cities
from producer.rates import FixedInterval
from producer.records import RecordBatch
from producer.timeline import HOUR_MS
from tests.conftest import cli

T2024 = 1_704_067_200_000


def year_of_data(city_ids: list[int]) -> tuple[RecordBatch, AirQualityGenerator]:
    """2024, hourly on the hour, for the given cities (global ids)."""
    ids = np.asarray(city_ids, dtype=np.int64)
    keys = entity_keys(5, "air_quality", ids)
    gen = AirQualityGenerator(AirQualitySettings(), ids, keys)
    rate = FixedInterval(ids, keys, HOUR_MS, aligned=True)
    batches = [gen.generate(rate.due(t, t + 31 * 24 * HOUR_MS))
               for t in range(T2024, T2024 + 366 * 24 * HOUR_MS, 31 * 24 * HOUR_MS)]  # fmt: skip
    return RecordBatch.concat(batches), gen


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    cities = load_cities()
    north = [i for i in range(300) if cities.latitude[i] > 25][:20]
    south = [i for i in range(300) if cities.latitude[i] < -15][:12]
    batch, _ = year_of_data(north + south)
    c = batch.entity
    local = np.empty(len(batch), dtype=np.int64)
    for city in np.unique(c).tolist():  # local time, computed independently of the generator
        zone = ZoneInfo(cities.timezone[city])
        mine = np.flatnonzero(c == city)
        for i in mine.tolist():
            moment = datetime.fromtimestamp(int(batch.time_ms[i]) / 1000, UTC).astimezone(zone)
            local[i] = moment.hour + 100 * moment.weekday() + 10_000 * moment.month
    return {
        "batch": batch, "cities": cities, "c": c,
        "hour": local % 100, "weekday": (local // 100) % 100, "month": local // 10_000,
        "normal": batch.columns["pm25"] / cities.base[c],
        "dry": ~batch.columns["raining"],
    }  # fmt: skip


def ratio(values: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float(values[a].mean() / values[b].mean())


def test_rush_hours_and_nights_in_local_time(data: dict[str, Any]) -> None:
    hour, normal, dry = data["hour"], data["normal"], data["dry"]
    midday = np.isin(hour, [11, 12, 13, 14]) & dry
    assert ratio(normal, np.isin(hour, [7, 8, 9, 17, 18, 19]) & dry, midday) == pytest.approx(
        1.4, rel=0.03
    )
    assert ratio(normal, np.isin(hour, [23, 0, 1, 2, 3]) & dry, midday) == pytest.approx(
        0.6, rel=0.03
    )


def test_weekends_are_cleaner(data: dict[str, Any]) -> None:
    weekday, normal, dry = data["weekday"], data["normal"], data["dry"]
    assert ratio(normal, (weekday >= 5) & dry, (weekday < 5) & dry) == pytest.approx(0.8, rel=0.03)


def test_winter_is_dirtier_in_each_hemisphere(data: dict[str, Any]) -> None:
    month, normal, dry = data["month"], data["normal"], data["dry"]
    north = data["cities"].latitude[data["c"]] > 0
    dec_feb, jun_aug = np.isin(month, [12, 1, 2]), np.isin(month, [6, 7, 8])
    assert ratio(normal, north & dec_feb & dry, north & jun_aug & dry) == pytest.approx(
        1.25, rel=0.04
    )
    assert ratio(normal, ~north & jun_aug & dry, ~north & dec_feb & dry) == pytest.approx(
        1.25, rel=0.04
    )


def test_coastal_and_industrial_effects(data: dict[str, Any]) -> None:
    cities, c, normal, dry = data["cities"], data["c"], data["normal"], data["dry"]
    coastal, industrial = cities.coastal[c], cities.industrial[c]
    plain = ~coastal & ~industrial & dry
    assert coastal.any()
    assert industrial.any()
    assert ratio(normal, coastal & ~industrial & dry, plain) == pytest.approx(0.75, rel=0.05)
    assert ratio(normal, industrial & ~coastal & dry, plain) == pytest.approx(1.35, rel=0.05)


def test_wind_and_rain_reduce_pollution(data: dict[str, Any]) -> None:
    b, normal, dry = data["batch"], data["normal"], data["dry"]
    wind = b.columns["wind_speed_kmh"]
    assert ratio(normal, (wind >= 20) & dry, (wind < 1) & dry) == pytest.approx(0.7, rel=0.05)
    assert ratio(normal, ~dry & (wind < 5), dry & (wind < 5)) == pytest.approx(0.6, rel=0.05)
    assert wind.mean() == pytest.approx(6.0, rel=0.05), "gamma(3, 2)"


def test_weather_follows_latitude_season_and_humidity_falls_with_heat(data: dict[str, Any]) -> None:
    b, cities, c, month = data["batch"], data["cities"], data["c"], data["month"]
    temp, hum = b.columns["temperature_c"], b.columns["humidity_pct"]
    north = cities.latitude[c] > 0
    assert temp[north & (month == 7)].mean() > temp[north & (month == 1)].mean() + 5
    assert temp[~north & (month == 1)].mean() > temp[~north & (month == 7)].mean() + 3
    assert np.corrcoef(temp, hum)[0, 1] < -0.5


def test_pollutant_ratios_are_the_seeds() -> None:
    batch, _ = year_of_data([0, 3])
    cols = batch.columns
    for name, factor in (("pm10", 1.5), ("no2", 0.4), ("so2", 0.3), ("co", 0.08), ("o3", 0.5)):
        assert np.allclose(cols[name], cols["pm25"] * factor, atol=0.01)
    delhi = cols["pm25"][batch.entity == 3].mean()
    new_york = cols["pm25"][batch.entity == 0].mean()
    assert delhi > 5 * new_york


def test_every_record_satisfies_the_pydantic_model_and_bulk_checks_agree() -> None:
    batch, gen = year_of_data([0, 1, 2, 7])
    for line in encode_jsonl(gen.schema, batch.take(slice(0, None, 97))).splitlines():
        AirQualityMeasurement.model_validate(orjson.loads(line))
    rng = np.random.default_rng(1)
    columns = {name: rng.uniform(-100, 1600, 400) for name in
               ("pm25", "pm10", "no2", "so2", "co", "o3", "temperature_c", "humidity_pct",
                "wind_speed_kmh")}  # fmt: skip
    flagged = invalid_rows(columns)
    for i in range(400):
        row = {"city_id": "C1", "city_name": "x", "country_name": "x", "country_code": "XX",
               "latitude": 0, "longitude": 0, "timestamp": "2024-01-01T00:00:00Z",
               **{k: float(v[i]) for k, v in columns.items()}}  # fmt: skip
        try:
            AirQualityMeasurement.model_validate(row)
            valid = True
        except ValidationError:
            valid = False
        assert valid == (not flagged[i])
    with pytest.raises(ValidationError):
        AirQualityMeasurement.model_validate({**row, "country_code": "usa"})


def test_city_profiles() -> None:
    cities = load_cities()
    assert len(cities) == 300
    seed_cities = ["New York City", "London", "Tokyo", "Delhi", "Shanghai", "Beijing",
                   "Mexico City", "São Paulo", "Mumbai", "Cairo"]  # fmt: skip
    assert list(cities.name[:10]) == seed_cities
    assert len(set(cities.city_id)) == 300
    assert (np.abs(cities.latitude) <= 90).all()
    assert cities.base[3] > 10 * cities.base[list(cities.name).index("Stockholm")]


def test_the_sample_data_set(tmp_path: Path) -> None:
    result = cli("run", "--dataset", "sample", "--out", str(tmp_path), "--metrics-port", "0")
    assert result.returncode == 0, result.stderr
    table = pq.read_table(tmp_path / "batch_sample.parquet")
    assert table.num_rows == 439_200
    assert len(set(table.column("city_id").to_pylist())) == 50
    stamps = table.column("timestamp")
    assert stamps[0].as_py().isoformat() == "2024-01-01T00:00:00+00:00"
    assert str(stamps[table.num_rows - 1].as_py()) == "2024-12-31 23:00:00+00:00"
    assert (
        pq.ParquetFile(tmp_path / "batch_sample.parquet")
        .metadata.row_group(0)
        .column(0)
        .compression
        == "SNAPPY"
    )
    assert '"dataset_written"' in result.stderr
    assert '"records":439200' in result.stderr


def test_pollution_episodes_multiply_a_city_for_hours_with_ramps() -> None:
    from producer.domains.air_quality.kind import AirQualitySettings
    from producer.faults import Faults

    clean, gen = year_of_data([0, 3, 11])
    kind = AirQualitySettings.model_validate(
        {"faults": {"drop_rate": 0, "duplicate_rate": 0, "pollution_episode_rate": 0.05}}
    )
    faults = Faults(kind.faults, 7, gen.schema, kind.fault_stages(7, gen.schema))
    assert faults.kinds == ("pollution_episode", "duplicate", "drop")  # the domain's stage too
    result = faults.apply(clean, clean.time_ms.max() + 1)
    out = result.batch
    episodes = [t for t in result.truth if t.kind == "pollution_episode"]
    assert episodes
    truth = episodes[0]
    factor = out.columns["pm25"] / clean.columns["pm25"]
    hit = np.isin(out.key, truth.records.key)
    assert np.allclose(factor[~hit], 1.0)
    assert factor[hit].max() >= 3
    assert factor[hit].max() <= 10.01
    core = truth.params["factor"] >= truth.params["peak_factor"] - 1e-3
    assert core.any()
    assert (~core).any(), "neighbouring hours are elevated, less than the core"
    for name, ratio in (("pm10", 1.5), ("no2", 0.4), ("o3", 0.5)):
        assert np.allclose(out.columns[name], out.columns["pm25"] * ratio, rtol=0.01, atol=0.02)
    hours = (truth.params["core_end_ms"] - truth.params["core_start_ms"]) / HOUR_MS
    assert hours.min() >= 2
    assert hours.max() <= 8
