"""Air quality's episode started by live control: pollution raised over the cities."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from producer.domains.air_quality.model import POLLUTANT_RATIOS
from producer.episodes import Episode, EpisodeKind, Param
from producer.records import RecordBatch
from producer.rng import F64, I64


def _pollution(batch: RecordBatch, hit: I64, shape: F64, episode: Episode) -> RecordBatch:
    factor = 1 + (float(episode.params["factor"]) - 1) * shape
    columns = dict(batch.columns)
    for name in POLLUTANT_RATIOS:
        values = columns[name].astype(np.float64, copy=True)
        values[hit] = np.round(values[hit] * factor, 2)
        columns[name] = values
    return replace(batch, columns=columns)


POLLUTION = EpisodeKind(
    "pollution", "Pollutants of the cities (all, or `entities` of them) raised by `factor`.",
    {"factor": Param(5.0, 1.0, 20.0, description="Peak factor on every pollutant.")},
    effect=_pollution, default_seconds=3600, all_entities=True,
)  # fmt: skip
