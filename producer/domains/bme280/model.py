"""BME280 devices: temperature, humidity and pressure as bounded random walks.

The model is the BME280 seed's, vectorised over devices: each reading drifts each value by a
uniform step (``temp_drift`` etc.) plus pattern offsets, bounces softly off the range bounds
(overshoot halved, then clipped), and is reported with Gaussian noise, rounded to 0.01.

The daily pattern is the seed's documented one: a +/-3 C temperature swing peaking at 14:00
and a +/-10 % humidity swing peaking at dawn (06:00), from each reading's *event* time (so a
backfill shows it too). It is added as a level on top of the walk, which moves inside the
range narrowed by the swing, so the sum stays in range. (The seed's code instead pushes the
walk by 10 % of the swing at *every* reading, which at a 10 s interval pins the temperature
to its bounds within minutes: a square wave, not a day. Its own README promises the swing.)

Weather events start with probability 1% per reading, last 10-50 readings and push the
values: storm (pressure down, humidity up, colder), front (pressure up, drier, warmer), clear
(pressure up, much drier, a little warmer).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from producer import rng
from producer.domains.bme280.fields import Bme280Fields
from producer.generators import levels, rank_within_entity
from producer.rates import Due
from producer.records import Kinds, RecordBatch, Schema, timestamp_array, uuid_array
from producer.rng import F64, I64, U64
from producer.timeline import HOUR_MS

STREAM = "bme280"
MODEL_VERSION = "1.0.0"
WEATHER_TYPES = ("storm", "front", "clear")
# Offsets per reading while an event lasts: (temperature, humidity, pressure), x0.1 applied.
WEATHER_OFFSETS = np.array([[-1.0, 5.0, -2.0], [2.0, -3.0, 3.0], [0.5, -5.0, 1.5]])
PHYSICAL = {"temp": (-40.0, 85.0), "humidity": (0.0, 100.0), "pressure": (300.0, 1100.0)}
NOISE_SCALE = {"temp": 0.2, "humidity": 1.0, "pressure": 0.3}
VARIABLES = ("temp", "humidity", "pressure")
COLUMNS = {"temp": "temperature_c", "humidity": "humidity", "pressure": "pressure_hpa"}


def device_name(entity_id: int) -> str:
    return f"bme280_{entity_id + 1:04d}"


class Bme280Generator:
    """State of every device of this process: current values and weather event."""

    stream = STREAM

    def __init__(self, settings: Bme280Fields, entity_ids: I64, keys: U64) -> None:
        self.settings = settings
        self.entity_ids = entity_ids
        self.keys = keys
        self.schema: Schema = Bme280Schema(entity_ids)
        n = entity_ids.size
        self.range = np.array([settings.bounds(v) for v in VARIABLES])  # (3, 2): min, max
        # Daily swing amplitudes, shrunk if the range is narrow: the walk keeps a third of it.
        swing = np.array([3.0, 10.0, 0.0]) if settings.enable_daily_pattern else np.zeros(3)
        self.swing = np.minimum(swing, (self.range[:, 1] - self.range[:, 0]) / 3.0)
        # The walk's own bounds: the range narrowed by the swing on both sides.
        self.bounds = np.stack([self.range[:, 0] + self.swing, self.range[:, 1] - self.swing], 1)
        self.drift = np.array(
            [settings.temp_drift, settings.humidity_drift, settings.pressure_drift]
        )
        self.value = np.zeros((n, 3))
        self.steps = np.zeros(n, dtype=np.int64)  # readings so far in this run
        self.event_left = np.zeros(n, dtype=np.int64)
        self.event_type = np.full(n, -1, dtype=np.int8)  # -1: no event
        self._offset_ms = round(settings.utc_offset_hours * HOUR_MS)

    def _initial(self, local: I64) -> F64:
        """Start values of devices at their first reading: uniform inside the range."""
        low = self.bounds[:, 0] + np.array([2.0, 5.0, 5.0])
        high = self.bounds[:, 1] - np.array([2.0, 5.0, 5.0])
        low, high = np.minimum(low, high), np.maximum(low, high)
        keys = self.keys[local]
        u = np.stack([rng.uniform(keys, 20 + i) for i in range(3)], axis=1)
        start: F64 = low + u * (high - low)
        return start

    def _daily(self, time_ms: I64) -> F64:
        """Offsets (temperature, humidity, pressure) from the local hour of day."""
        hours = ((time_ms + self._offset_ms) % (24 * HOUR_MS)) / HOUR_MS
        offsets: F64 = daily_cycle(hours)[:, None] * (self.swing * np.array([1.0, -1.0, 0.0]))
        return offsets

    def generate(self, due: Due) -> RecordBatch:
        s = self.settings
        local, time_ms = due.entity, due.time_ms
        n = local.size
        rank = rank_within_entity(local)
        step = self.steps[local] + rank
        keys = rng.combine(rng.combine(self.keys[local], time_ms), step)

        # Everything random is drawn for the whole batch at once: columns 0-2 walk steps,
        # 3-8 noise (three Box-Muller pairs), 9 event start, 10 event length, 11 event kind.
        u = rng.uniform_block(keys, 12)
        walk = (u[:, 0:3] * 2.0 - 1.0) * self.drift
        if s.enable_weather_events:
            starts = u[:, 9] < s.weather_event_probability
            length = (10 + np.floor(u[:, 10] * 41)).astype(np.int64)
            kind = np.floor(u[:, 11] * 3).astype(np.int8)
        value = np.empty((n, 3))
        in_event = np.zeros(n, dtype=np.bool_)
        event_type = np.full(n, -1, dtype=np.int8)

        # ... and only the state recurrence runs reading by reading, over all devices at once.
        for idx in levels(rank):
            ent = local[idx]
            if idx is not None and rank[idx[0]] == 0:
                fresh = ent[self.steps[ent] == 0]
                if fresh.size:
                    self.value[fresh] = self._initial(fresh)
            current = self.value[ent]
            step_walk = walk[idx]
            if s.enable_weather_events:
                left = self.event_left[ent]
                kinds = self.event_type[ent]
                begin = (left <= 0) & starts[idx]
                left = np.where(begin, length[idx], left)
                kinds = np.where(begin, kind[idx], kinds)
                active = left > 0
                left = left - active
                active &= left > 0
                kinds = np.where(active, kinds, -1).astype(np.int8)
                self.event_left[ent] = left
                self.event_type[ent] = kinds
                step_walk = step_walk + np.where(
                    active[:, None], WEATHER_OFFSETS[np.maximum(kinds, 0)] * 0.1, 0.0
                )
                in_event[idx] = active
                event_type[idx] = kinds
            new = _bounce(current + step_walk, self.bounds[:, 0], self.bounds[:, 1])
            self.value[ent] = new
            value[idx] = new
        np.add.at(self.steps, local, 1)
        if s.enable_daily_pattern:
            value += self._daily(time_ms)

        if s.add_noise:
            noise = rng.box_muller(u[:, 3:9:2], u[:, 4:9:2]) * s.noise_factor
            value += noise * np.array([NOISE_SCALE[var] for var in VARIABLES])
        columns: dict[str, npt.NDArray[Any]] = {}
        for i, var in enumerate(VARIABLES):
            low, high = PHYSICAL[var]
            columns[COLUMNS[var]] = np.clip(np.round(value[:, i], 2), low, high)
        columns["in_weather_event"] = in_event
        columns["weather_event"] = event_type
        return RecordBatch(STREAM, self.entity_ids[local], time_ms, keys, columns)


def daily_cycle(hours: F64) -> F64:
    """-1 at 06:00 (dawn), +1 at 14:00, smooth: 8 h of warming, 16 h of cooling.

    The seed's README: "Temperature peaks around 14:00, lowest at 06:00".
    """
    since_dawn = (hours - 6.0) % 24.0
    warming = -np.cos(np.pi * since_dawn / 8.0)
    cooling = np.cos(np.pi * (since_dawn - 8.0) / 16.0)
    return np.where(since_dawn < 8.0, warming, cooling)


def _bounce(x: F64, low: F64, high: F64) -> F64:
    """The seed's soft bounds: an overshoot is reflected at half its size, then clipped."""
    x = np.where(x < low, low + (low - x) * 0.5, x)
    x = np.where(x > high, high - (x - high) * 0.5, x)
    return np.clip(x, low, high)


_METADATA = {
    (active, kind): {
        "generator": "synthstream.bme280",
        "version": MODEL_VERSION,
        "in_weather_event": active,
        "weather_event_type": WEATHER_TYPES[kind] if active and kind >= 0 else None,
    }
    for active in (False, True)
    for kind in (-1, 0, 1, 2)
}


class Bme280Schema:
    """The seed's ``BME280Reading`` JSON shape, plus ``message_id`` and ``is_duplicate``."""

    stream = STREAM
    partition_key = "device_id"
    time_field = "timestamp"
    optional_fields: tuple[str, ...] = ("metadata",)
    kinds: Kinds | None = None

    def __init__(self, entity_ids: I64) -> None:
        self.measures = {
            "temperature_c": (3.0, *PHYSICAL["temp"]),
            "humidity": (10.0, *PHYSICAL["humidity"]),
            "pressure_hpa": (4.0, *PHYSICAL["pressure"]),
        }
        top = int(entity_ids.max()) + 1 if entity_ids.size else 0
        self.names = np.array([device_name(i) for i in range(top)], dtype=object)
        self._arrow_names = pa.array(self.names, pa.string())
        self._arrow_kinds = pa.array(WEATHER_TYPES, pa.string())
        self._arrow_generator = pa.array(["synthstream.bme280"], pa.string())
        self._arrow_version = pa.array([MODEL_VERSION], pa.string())

    def rows(self, batch: RecordBatch) -> list[dict[str, Any]]:
        c = batch.columns
        metadata = [
            _METADATA[(a, k)]
            for a, k in zip(
                c["in_weather_event"].tolist(), c["weather_event"].tolist(), strict=True
            )
        ]
        return [
            {
                "device_id": device,
                "temperature_c": t,
                "humidity": h,
                "pressure_hpa": p,
                "timestamp": ts,
                "metadata": meta,
                "message_id": mid,
                "is_duplicate": dup,
            }
            for device, t, h, p, ts, meta, mid, dup in zip(
                self.names[batch.entity].tolist(),
                c["temperature_c"].tolist(),
                c["humidity"].tolist(),
                c["pressure_hpa"].tolist(),
                batch.iso_times(),
                metadata,
                batch.message_ids().astype("U36").tolist(),
                batch.is_duplicate.tolist(),
                strict=True,
            )
        ]

    def table(self, batch: RecordBatch) -> pa.Table:
        c = batch.columns
        n = len(batch)
        kinds = c["weather_event"]
        metadata = pa.StructArray.from_arrays(
            [
                # Constant strings as one-entry dictionaries: 1 byte a row, not 18.
                pa.DictionaryArray.from_arrays(np.zeros(n, np.int8), self._arrow_generator),
                pa.DictionaryArray.from_arrays(np.zeros(n, np.int8), self._arrow_version),
                pa.array(c["in_weather_event"]),
                pa.DictionaryArray.from_arrays(
                    pa.array(kinds, pa.int8(), mask=kinds < 0), self._arrow_kinds
                ),
            ],
            names=["generator", "version", "in_weather_event", "weather_event_type"],
        )
        return pa.table(
            {
                "device_id": pa.DictionaryArray.from_arrays(
                    batch.entity.astype(np.int32), self._arrow_names
                ),
                # NaN (a sensor dropout injected by faults) is written as null.
                "temperature_c": pa.array(c["temperature_c"], from_pandas=True),
                "humidity": pa.array(c["humidity"], from_pandas=True),
                "pressure_hpa": pa.array(c["pressure_hpa"], from_pandas=True),
                "timestamp": timestamp_array(batch.reported_ms),
                "metadata": metadata,
                "message_id": uuid_array(batch.key),
                "is_duplicate": pa.array(batch.is_duplicate),
            }
        )
