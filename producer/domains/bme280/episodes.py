"""BME280's episode started by live control: a weather event over the devices."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from producer.episodes import Episode, EpisodeKind, Param
from producer.records import RecordBatch
from producer.rng import F64, I64

# Peak offsets of a weather event (temperature C, humidity %, pressure hPa), the directions
# of the model's own events (storm: colder, wetter, low pressure), 25 readings' worth.
PEAKS = {"storm": (-2.5, 12.5, -5.0), "front": (5.0, -7.5, 7.5), "clear": (1.25, -12.5, 3.75)}
COLUMNS = ("temperature_c", "humidity", "pressure_hpa")
LIMITS = ((-40.0, 85.0), (0.0, 100.0), (300.0, 1100.0))


def _weather(batch: RecordBatch, hit: I64, shape: F64, episode: Episode) -> RecordBatch:
    peaks = PEAKS[str(episode.params["type"])]
    columns = dict(batch.columns)
    for name, peak, (low, high) in zip(COLUMNS, peaks, LIMITS, strict=True):
        values = columns[name].astype(np.float64, copy=True)
        values[hit] = np.round(np.clip(values[hit] + peak * shape, low, high), 2)
        columns[name] = values
    return replace(batch, columns=columns)


WEATHER = EpisodeKind(
    "weather", "A weather event passes over the devices (all, or `entities` of them).",
    {"type": Param("storm", choices=tuple(PEAKS), description="storm, front or clear")},
    effect=_weather, default_seconds=600, all_entities=True,
)  # fmt: skip
