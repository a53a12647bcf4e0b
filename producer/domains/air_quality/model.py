"""Air quality in real cities (seed 000): six pollutants and the weather, per measurement.

A measurement of city ``c`` at time ``t`` is a pure function of the city's profile, its
*local* time (its time zone drives hour and weekday) and the record's own random key:

    level = base x hour (rush 7-9 and 17-19 x1.4, night 22-5 x0.6) x weekend (x0.8)
                 x winter (x1.25: Dec-Feb north, Jun-Aug south) x coastal (x0.75)
                 x industrial (x1.35) x wind (up to -30 %) x rain (-40 %) x noise (+/-5 %)
    pm25 = level, pm10 = 1.5 level, no2 = 0.4, so2 = 0.3, co = 0.08, o3 = 0.5 x level

Temperature follows latitude plus a seasonal cosine (hemisphere-aware) and a daily cycle;
humidity falls as temperature rises; wind speed is gamma(3, 2). City profiles (300 real
cities, the seed's ten first) ship in ``producer/data/cities.csv``; ``scripts/make_cities.py``
says where they come from. ``AirQualityMeasurement`` is the schema of record; every batch is
checked against its constraints column-wise before it leaves the generator.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from pydantic import BaseModel, Field, field_validator

from producer import rng
from producer.domains.air_quality.fields import AirQualityFields
from producer.generators import rank_within_entity
from producer.geography import Cities, load_cities
from producer.rates import Due
from producer.records import Kinds, RecordBatch, Schema, timestamp_array, uuid_array
from producer.rng import I64, U64
from producer.timeline import DAY_MS, hour_of_day, weekday
from producer.zones import ZoneTable

STREAM = "air_quality"
POLLUTANT_RATIOS = {"pm25": 1.0, "pm10": 1.5, "no2": 0.4, "so2": 0.3, "co": 0.08, "o3": 0.5}
HOUR_FACTORS = np.ones(24)
HOUR_FACTORS[[7, 8, 9, 17, 18, 19]] = 1.4
HOUR_FACTORS[[22, 23, 0, 1, 2, 3, 4, 5]] = 0.6
WEEKEND_FACTOR = 0.8
WINTER_FACTOR = 1.25
COASTAL_FACTOR = 0.75
INDUSTRIAL_FACTOR = 1.35
WIND_MAX_REDUCTION = 0.30
RAIN_FACTOR = 0.60
_COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")


class AirQualityMeasurement(BaseModel):
    """The seed's measurement, with its range constraints; plus message_id and is_duplicate."""

    city_id: str
    city_name: str
    country_name: str
    country_code: str
    latitude: float = Field(..., ge=-90, le=90)
    longitude: float = Field(..., ge=-180, le=180)
    timestamp: datetime
    pm25: float = Field(..., ge=0, le=1000)
    pm10: float = Field(..., ge=0, le=1500)
    no2: float = Field(..., ge=0, le=500)
    so2: float = Field(..., ge=0, le=500)
    co: float = Field(..., ge=0, le=100)
    o3: float = Field(..., ge=0, le=600)
    temperature_c: float = Field(..., ge=-50, le=60)
    humidity_pct: float = Field(..., ge=0, le=100)
    wind_speed_kmh: float = Field(..., ge=0, le=200)
    message_id: str | None = None
    is_duplicate: bool = False

    @field_validator("country_code")
    @classmethod
    def _two_upper_letters(cls, value: str) -> str:
        if not _COUNTRY_CODE.match(value):
            raise ValueError("country_code must be 2 uppercase letters")
        return value


# The same constraints, column-wise, for whole batches (a test checks they agree).
BOUNDS: dict[str, tuple[float, float]] = {}
for _name, _field in AirQualityMeasurement.model_fields.items():
    _low = next((m.ge for m in _field.metadata if hasattr(m, "ge")), None)
    _high = next((m.le for m in _field.metadata if hasattr(m, "le")), None)
    if _low is not None and _high is not None:
        BOUNDS[_name] = (float(_low), float(_high))


# Winter months (0 January) in each hemisphere, looked up by month.
_WINTER_NORTH = np.isin(np.arange(12), [11, 0, 1])
_WINTER_SOUTH = np.isin(np.arange(12), [5, 6, 7])


def invalid_rows(columns: dict[str, npt.NDArray[Any]]) -> npt.NDArray[np.bool_]:
    """Rows that break a range constraint of ``AirQualityMeasurement`` (NaN breaks it too)."""
    names = [name for name in BOUNDS if name in columns]
    if not names:
        return np.zeros(len(next(iter(columns.values()))), dtype=np.bool_)
    values = np.stack([columns[name] for name in names], axis=1)  # (one pass: live ticks
    low = np.array([BOUNDS[name][0] for name in names])  # check a record or two)
    high = np.array([BOUNDS[name][1] for name in names])
    inside: npt.NDArray[np.bool_] = (values >= low) & (values <= high)
    return ~inside.all(axis=1)  # type: ignore[return-value]


class AirQualityGenerator:
    """Measurements of this process's cities; state is only a per-city reading counter."""

    stream = STREAM

    def __init__(self, settings: AirQualityFields, entity_ids: I64, keys: U64) -> None:
        self.settings = settings
        self.entity_ids = entity_ids
        self.keys = keys
        self.cities = load_cities()
        self.schema: Schema = AirQualitySchema(self.cities)
        self.steps = np.zeros(entity_ids.size, dtype=np.int64)
        # Offsets at each measurement's instant, for the time zones of this shard's cities.
        mine = sorted({self.cities.timezone[c] for c in entity_ids.tolist()})
        index = {zone: i for i, zone in enumerate(mine)}
        self._zones = ZoneTable(mine)
        self._zone_of = np.array([index.get(z, 0) for z in self.cities.timezone], dtype=np.int64)

    def generate(self, due: Due) -> RecordBatch:
        local, t = due.entity, due.time_ms
        c = self.entity_ids[local]
        cities = self.cities
        step = self.steps[local] + rank_within_entity(local)
        np.add.at(self.steps, local, 1)
        keys = rng.combine(rng.combine(self.keys[local], t), step)
        u = rng.uniform_block(keys, 10)

        local_ms = self._zones.local_ms(self._zone_of[c], t)
        hour, day_of_week = hour_of_day(local_ms), weekday(local_ms)
        # Month and day of year by local day, computed once per distinct day.
        local_day = local_ms // DAY_MS
        first_day = int(local_day.min())
        days = np.arange(first_day, int(local_day.max()) + 1).astype("datetime64[D]")
        months = days.astype("datetime64[M]").astype(np.int64) % 12
        starts = days.astype("datetime64[Y]").astype("datetime64[D]")
        day_index = local_day - first_day
        month = months[day_index]
        day_of_year = (days - starts).astype(np.int64)[day_index] + (local_ms % DAY_MS) / DAY_MS
        lat = cities.latitude[c]
        north = lat >= 0
        winter = np.where(north, _WINTER_NORTH[month], _WINTER_SOUTH[month])
        coastal, industrial = cities.coastal[c], cities.industrial[c]

        # Weather.
        annual_mean = 27.0 - 0.0065 * lat**2
        amplitude = 0.25 * np.abs(lat) * np.where(coastal, 0.6, 1.0)
        warmest = np.where(north, 200.0, 17.0)
        seasonal = np.cos(2 * np.pi * (day_of_year - warmest) / 365.25)
        daily = 4.0 * np.cos(2 * np.pi * (hour - 15) / 24) * np.where(coastal, 0.5, 1.0)
        noise_t, noise_h = rng.box_muller_pair(u[:, 0], u[:, 1])
        temperature = np.clip(annual_mean + amplitude * seasonal + daily + 1.5 * noise_t, -50, 60)
        humidity = 70.0 - 1.2 * (temperature - 15.0) + np.where(coastal, 10.0, 0.0)
        humidity = np.clip(humidity + 8.0 * noise_h, 5.0, 100.0)
        wind = np.minimum(-2.0 * np.log(u[:, 4] * u[:, 5] * u[:, 6]), 200.0)  # gamma(3, 2)
        rain_chance = self.settings.rain_probability * np.clip(humidity / 60.0, 0.3, 1.7)
        raining = u[:, 7] < rain_chance

        # Pollution.
        level = (
            cities.base[c]
            * HOUR_FACTORS[hour]
            * np.where(day_of_week >= 5, WEEKEND_FACTOR, 1.0)
            * np.where(winter, WINTER_FACTOR, 1.0)
            * np.where(coastal, COASTAL_FACTOR, 1.0)
            * np.where(industrial, INDUSTRIAL_FACTOR, 1.0)
            * (1.0 - WIND_MAX_REDUCTION * np.minimum(wind / 20.0, 1.0))
            * np.where(raining, RAIN_FACTOR, 1.0)
            * np.maximum(
                1.0 + self.settings.noise_pct / 100 * rng.box_muller(u[:, 8], u[:, 9]), 0.5
            )
        )
        columns: dict[str, npt.NDArray[Any]] = {
            name: np.round(level * ratio, 2) for name, ratio in POLLUTANT_RATIOS.items()
        }
        columns["temperature_c"] = np.round(temperature, 1)
        columns["humidity_pct"] = np.round(humidity, 1)
        columns["wind_speed_kmh"] = np.round(wind, 1)
        columns["raining"] = raining
        if invalid_rows(columns).any():  # a bug here, never a user's mistake
            raise AssertionError("air_quality generated a measurement outside its schema")
        return RecordBatch(STREAM, c, t, keys, columns)


class AirQualitySchema:
    """The seed's ``AirQualityMeasurement`` shape, plus ``message_id`` and ``is_duplicate``."""

    stream = STREAM
    partition_key = "city_id"
    time_field = "timestamp"
    optional_fields: tuple[str, ...] = ()
    kinds: Kinds | None = None

    def __init__(self, cities: Cities) -> None:
        self.cities = cities
        self.measures = {
            "pm25": (10.0, 0.0, 1000.0), "no2": (5.0, 0.0, 500.0), "o3": (8.0, 0.0, 600.0),
        }  # fmt: skip
        self._arrow = {
            "city_id": pa.array(cities.city_id, pa.string()),
            "city_name": pa.array(cities.name, pa.string()),
            "country_name": pa.array(cities.country, pa.string()),
            "country_code": pa.array(cities.country_code, pa.string()),
        }

    def rows(self, batch: RecordBatch) -> list[dict[str, Any]]:
        cities, c, cols = self.cities, batch.entity, batch.columns
        names = ("pm25", "pm10", "no2", "so2", "co", "o3", "temperature_c", "humidity_pct",
                 "wind_speed_kmh")  # fmt: skip
        values = [cols[n].tolist() for n in names]
        return [
            {
                "city_id": city_id, "city_name": name, "country_name": country,
                "country_code": code, "latitude": lat, "longitude": lon, "timestamp": ts,
                **dict(zip(names, measures, strict=True)),
                "message_id": mid, "is_duplicate": dup,
            }
            for city_id, name, country, code, lat, lon, ts, mid, dup, *measures in zip(
                cities.city_id[c].tolist(), cities.name[c].tolist(), cities.country[c].tolist(),
                cities.country_code[c].tolist(), cities.latitude[c].tolist(),
                cities.longitude[c].tolist(), batch.iso_times(),
                batch.message_ids().astype("U36").tolist(), batch.is_duplicate.tolist(),
                *values, strict=True,
            )
        ]  # fmt: skip

    def table(self, batch: RecordBatch) -> pa.Table:
        c, cols = batch.entity.astype(np.int32), batch.columns
        data: dict[str, Any] = {
            name: pa.DictionaryArray.from_arrays(c, dictionary)
            for name, dictionary in self._arrow.items()
        }
        data["latitude"] = pa.array(self.cities.latitude[batch.entity])
        data["longitude"] = pa.array(self.cities.longitude[batch.entity])
        data["timestamp"] = timestamp_array(batch.reported_ms)
        for name in ("pm25", "pm10", "no2", "so2", "co", "o3", "temperature_c", "humidity_pct",
                     "wind_speed_kmh"):  # fmt: skip
            data[name] = pa.array(cols[name], from_pandas=True)
        data["message_id"] = uuid_array(batch.key)
        data["is_duplicate"] = pa.array(batch.is_duplicate)
        return pa.table(data)
