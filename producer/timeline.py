"""Time as the domains see it: the units, local hour of day and day of week, the shape of an
hour-of-day curve, and the rate factors of the run-wide scenarios. Local time itself (a
zone's offset at an instant) is ``producer.zones``; "now" is ``producer.clock``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from producer.rng import F64, I64

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)
# The rate settings' scenarios (``RateSettings.scenario``), as factors on a total rate.
SCENARIO_FACTORS = {"normal": 1.0, "peak": 3.0, "maintenance": 0.1}


Moment = TypeVar("Moment", I64, int)


def hour_of_day(local_ms: Moment) -> Moment:
    """0-23, of local times (ms since the epoch, in local time)."""
    return (local_ms % DAY_MS) // HOUR_MS


def weekday(local_ms: Moment) -> Moment:
    """Day of the week of local times, Monday = 0."""
    return (local_ms // DAY_MS + EPOCH_WEEKDAY) % 7


def hour_curve(factors: Sequence[float]) -> F64:
    """24 factors by local hour (midnight first), scaled to a mean of 1: the hour's share of
    a day's activity, times 24."""
    values = np.asarray(factors, dtype=np.float64)
    if values.shape != (24,):
        raise ValueError(f"an hour curve needs 24 factors, got {values.size}")
    curve: F64 = values / values.mean()
    return curve
