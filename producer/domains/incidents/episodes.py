"""Incidents' episode started by live control: a major incident, reported now, critical,
with many units (the nearest stations' first). It is an incident of the model like any
other (its lifecycle, its units, its CDC rows), numbered apart from the arrival model's:
``F<yy>-09xxxxx``. The ground truth lists every record of it, to its resolution."""

from __future__ import annotations

import zlib

import numpy as np

from producer.episodes import Episode, EpisodeKind, Param, unchanged
from producer.records import RecordBatch

MAJOR_BASE = 900_000  # numbers of major incidents: far above a year's arrivals
FIRE_TYPES = ("STRUCTURE_FIRE", "BRUSH_FIRE", "HAZMAT", "RESCUE", "TRAFFIC_COLLISION",
              "VEHICLE_FIRE", "GAS_LEAK")  # fmt: skip


def major_seq(episode: Episode) -> int:
    """The incident's number in its year, from the episode's id (kept by a replayed log)."""
    return MAJOR_BASE + zlib.crc32(episode.id.encode()) % 100_000


def _its_records(batch: RecordBatch, episode: Episode) -> object:
    return batch.columns["seq"] == np.int64(major_seq(episode))


MAJOR_INCIDENT = EpisodeKind(
    "major_incident", "A critical incident reported now, with many units.",
    {"type": Param("STRUCTURE_FIRE", choices=FIRE_TYPES, description="the incident's type"),
     "units": Param(12, 2, 40, description="units sent (at most the stations)",
                    whole=True)},
    effect=unchanged, default_seconds=1, all_entities=True, select=_its_records, open_ended=True,
)  # fmt: skip
