"""Air quality's own fault: pollution episodes (a city's pollutants raised for hours)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from producer.domains.air_quality.model import POLLUTANT_RATIOS
from producer.faults.base import DAY_MS, HOUR_MS, Step, Truth, episodes
from producer.records import RecordBatch


class PollutionEpisodes:
    """A city's pollutants x3-10 for 2-8 hours, the two hours either side elevated on a
    ramp: per city and day with ``pollution_episode_rate``. After sensor anomalies, before
    clock skew."""

    order = 15
    kinds: tuple[str, ...] = ("pollution_episode",)
    columns = tuple(POLLUTANT_RATIOS)

    def __init__(self, rate: float, key: int) -> None:
        self.rate, self.key = rate, key

    def apply(self, batch: RecordBatch, step: Step) -> RecordBatch:
        ramp = 2 * HOUR_MS
        found, rise, u = episodes(self.key, 5, batch.entity, batch.time_ms, self.rate, DAY_MS)
        start = rise + ramp  # the core begins after two hours of rising levels
        core = ((2 + u[:, 0] * 6) * HOUR_MS).astype(np.int64)
        peak = 3 + u[:, 1] * 7
        t = batch.time_ms
        before = np.clip((t - rise) / ramp, 0, 1)
        after = np.clip(((start + core + ramp) - t) / ramp, 0, 1)
        shape = np.where(found, np.minimum(before, after), 0.0)
        hit = np.flatnonzero(shape > 0)
        if not hit.size:
            return batch
        factor = 1 + (peak[hit] - 1) * shape[hit]
        columns = dict(batch.columns)
        for name in self.columns:
            columns[name] = columns[name].copy()
            columns[name][hit] = np.round(columns[name][hit] * factor, 2)
        out = replace(batch, columns=columns)
        step.truth.append(Truth("pollution_episode", out.take(hit), {
            "factor": np.round(factor, 3), "peak_factor": np.round(peak[hit], 3),
            "core_start_ms": start[hit], "core_end_ms": start[hit] + core[hit],
        }))  # fmt: skip
        return out
