"""Local time in real time zones: the UTC offset *at each instant*, vectorised.

Every local-time rule (business hours, rush hours, weekends, seasonal events, fraud hours,
incident hour curves) asks for the offset of the instant it looks at. A table holds, per zone
and UTC day, the offset at the day's start, the moment it changed during the day (daylight
saving time, a zone's rule change) and the offset after, so an offset is two array look-ups:

    offset(t) = after[zone, day] if t >= change[zone, day] else before[zone, day]

The days are found from offsets at day starts, sampled weekly and refined day by day only in
weeks where the offset changed; the moment of a change is then bisected to the second. A
zone changes at most twice a year (never twice in one UTC day), so a year costs about 60
look-ups of ``zoneinfo`` per zone.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np

from producer.rng import I64

DAY_MS = 86_400_000
_DAY_S = 86_400


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def offset_s(zone_name: str, epoch_s: int) -> int:
    """The zone's UTC offset, in seconds, at an instant (whole seconds since the epoch)."""
    offset = datetime.fromtimestamp(epoch_s, UTC).astimezone(_zone(zone_name)).utcoffset()
    return int(offset.total_seconds()) if offset else 0


def day_table(zone_name: str, first_day: int, end_day: int) -> tuple[I64, I64, I64]:
    """(before, change, after) per UTC day in ``[first_day, end_day)``: offsets in ms at the
    day's start and end, and the instant (ms) of the change in between (the day's end when
    there is none)."""
    days = end_day - first_day
    starts = np.empty(days + 1, dtype=np.int64)  # offsets at the start of each day, and after
    marks = [*range(0, days + 1, 7), days] if days else [0]
    values = {m: offset_s(zone_name, (first_day + m) * _DAY_S) for m in marks}
    for a, b in itertools.pairwise(dict.fromkeys(marks)):
        if values[a] == values[b]:
            starts[a : b + 1] = values[a]
        else:
            for d in range(a, b + 1):
                starts[d] = offset_s(zone_name, (first_day + d) * _DAY_S)
    starts[marks[-1]] = values[marks[-1]]
    before, after = starts[:-1] * 1000, starts[1:] * 1000
    change = (np.arange(first_day, end_day, dtype=np.int64) + 1) * DAY_MS
    for d in np.flatnonzero(before != after).tolist():
        lo, hi = (first_day + d) * _DAY_S, (first_day + d + 1) * _DAY_S  # before at lo, not hi
        target = int(after[d]) // 1000
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if offset_s(zone_name, mid) == target:
                hi = mid
            else:
                lo = mid
        change[d] = hi * 1000
    return before, change, after


class ZoneTable:
    """UTC offsets of a fixed list of time zones at any instants, grown on demand."""

    def __init__(self, zones: list[str]) -> None:
        self.zones = list(zones)
        self._day0 = 0
        self._days = 0
        shape = (len(self.zones), 0)
        self._before = np.zeros(shape, dtype=np.int64)
        self._change = np.zeros(shape, dtype=np.int64)
        self._after = np.zeros(shape, dtype=np.int64)

    def _cover(self, first: int, last: int) -> None:
        if self._days == 0:
            self._day0, self._days = first, 0
            self._extend(first, last + 1, front=False)
            return
        if first < self._day0:
            self._extend(first, self._day0, front=True)
        end = self._day0 + self._days
        if last >= end:
            self._extend(end, last + 1, front=False)

    def _extend(self, first: int, end: int, front: bool) -> None:
        parts = [day_table(zone, first, end) for zone in self.zones]
        new = [np.stack([p[i] for p in parts]) if parts else np.zeros((0, end - first),
               dtype=np.int64) for i in range(3)]  # fmt: skip
        if front:
            self._before = np.hstack([new[0], self._before])
            self._change = np.hstack([new[1], self._change])
            self._after = np.hstack([new[2], self._after])
            self._day0 = first
        else:
            self._before = np.hstack([self._before, new[0]])
            self._change = np.hstack([self._change, new[1]])
            self._after = np.hstack([self._after, new[2]])
        self._days += end - first

    def offsets_ms(self, zone: I64 | int, t: I64) -> I64:
        """The offset (ms) of zone ``zone[i]`` (an index into ``zones``) at instant ``t[i]``."""
        t = np.asarray(t, dtype=np.int64)
        if t.size == 0:
            return np.zeros(0, dtype=np.int64)
        day = t // DAY_MS
        self._cover(int(day.min()), int(day.max()))
        z = np.broadcast_to(np.asarray(zone, dtype=np.int64), t.shape)
        i = day - self._day0
        out: I64 = np.where(t >= self._change[z, i], self._after[z, i], self._before[z, i])
        return out

    def local_ms(self, zone: I64 | int, t: I64) -> I64:
        """Local wall-clock time of instants, as ms since the epoch read as local."""
        local: I64 = np.asarray(t, dtype=np.int64) + self.offsets_ms(zone, t)
        return local


@cache
def zone_table(zone_name: str) -> ZoneTable:
    """One shared table for a single zone (a region's incidents, one city)."""
    return ZoneTable([zone_name])
