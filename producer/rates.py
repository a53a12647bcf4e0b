"""Rate models: which entities are due in a window of event time.

Every model answers ``due(t0, t1)``: the records due in ``[t0, t1)`` (milliseconds since the
Unix epoch), sorted by time, as local entity indices and due times. Windows that partition
time give records that partition the schedule, whatever the window sizes: a live run asks
for a few milliseconds at a time, a backfill for an hour, and both get the same records.
Due times are pure functions of ``(seed, stream, entity, step)``, so they are the same in
every process and every run.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from producer import rng
from producer.rng import F64, I64, U64
from producer.settings import RateSettings
from producer.timeline import DAY_MS, HOUR_MS, SCENARIO_FACTORS, hour_of_day, weekday

_GOLDEN_FRACTION = (5**0.5 - 1) / 2
NEVER = 2**62  # a due time that does not come


class Pace:
    """A stream's rate multiplier over event time, as live control sets it: 1 until the first
    change, then piecewise constant from each change's event time on (0 while paused).

    Rate models schedule in operational time ``tau(t)``, the integral of the multiplier:
    their due times are the usual ones in tau, mapped back to event time, so x3 packs three
    times the records into each second, 0 stops them, and every entity's state (a device's
    random walk, a user's session) continues where it was. Before the first change tau is t,
    so a run without control makes exactly the records it always made; the records before a
    change do not depend on it, so a backfill given the same changes makes the same records
    as the live run that was steered. Values are kept relative to a base time (a window's
    start, an hour's) so that float rounding at 1.8e12 ms never moves a record."""

    def __init__(self) -> None:
        self.at: list[int] = []  # change times (ms), increasing
        self.factor: list[float] = []
        self.shift: list[float] = []  # tau(at[k]) - at[k]
        self._at = np.empty(0, np.int64)
        self._factor = np.empty(0)
        self._shift = np.empty(0)

    @property
    def steady(self) -> bool:
        return not self.at

    def set(self, t: int, factor: float) -> None:
        """The multiplier from event time ``t`` on (``t`` at or after the last change)."""
        if factor < 0 or not math.isfinite(factor):
            raise ValueError(f"a pace factor must be finite and >= 0, got {factor}")
        if self.at and t < self.at[-1]:
            raise ValueError(f"pace changes go forward in time: {t} < {self.at[-1]}")
        if self.at and t == self.at[-1]:
            self.factor[-1] = factor
        else:
            self.shift.append(self.rel(t, t))
            self.at.append(t)
            self.factor.append(factor)
        self._at = np.asarray(self.at, np.int64)
        self._factor = np.asarray(self.factor)
        self._shift = np.asarray(self.shift)

    def factor_at(self, t: int) -> float:
        k = bisect_right(self.at, t) - 1
        return 1.0 if k < 0 else self.factor[k]

    def changes_before(self, t: int) -> bool:
        """Whether any change is earlier than ``t`` (else tau is t up to ``t``)."""
        return bool(self.at) and self.at[0] < t

    def stopped_from(self, t: int) -> bool:
        """Paused from ``t`` on for good (as far as the changes known go)."""
        return bool(self.at) and self.factor[-1] == 0 and t >= self.at[-1]

    def rel(self, t: int, base: int) -> float:
        """``tau(t) - base``."""
        k = bisect_right(self.at, t) - 1
        if k < 0:
            return float(t - base)
        return (t - base) + self.shift[k] + (self.factor[k] - 1.0) * (t - self.at[k])

    def back(self, y: F64, base: int) -> I64:
        """For operational times ``base + y``: the event time ``t`` (floored) whose tau they
        fall in, minus ``base``; ``NEVER`` past a pause without end. Non-decreasing in y.
        Worked out from each segment's start (``y - (at - base)`` is exact for whole ms), so
        the answer does not depend on ``base``: windows of any size agree."""
        if not self.at:
            return np.floor(y).astype(np.int64)
        starts = (self._at - base) + self._shift  # tau(at[k]) - base
        k = np.searchsorted(starts, y, "right") - 1
        last = len(self.at) - 1

        def into(k: I64) -> F64:  # operational ms into segment k (negative: before it)
            kk = np.clip(k, 0, last)
            out: F64 = (y - (self._at[kk] - base)) - self._shift[kk]
            return out

        # Rounding near a segment's start: decide by the segment's own arithmetic.
        k = np.where((k >= 0) & (into(k) < 0), k - 1, k)
        k = np.where((k < last) & (into(k + 1) >= 0), k + 1, k)
        kk = np.clip(k, 0, last)
        f = self._factor[kk]
        inside = np.floor(into(kk) / np.where(f > 0, f, 1.0)).astype(np.int64)
        nxt = np.append(self._at[1:] - self._at[:-1], NEVER)[kk] - 1
        t = (self._at[kk] - base) + np.minimum(np.maximum(inside, 0), nxt)
        t = np.where(f > 0, t, NEVER)
        out: I64 = np.where(k < 0, np.floor(y).astype(np.int64), t)
        return out


@dataclass(frozen=True, slots=True)
class Due:
    """Records due in a window: local entity index and due time (ms), sorted by time."""

    entity: I64
    time_ms: I64

    def __len__(self) -> int:
        return int(self.entity.size)

    def head(self, n: int) -> Due:
        return Due(self.entity[:n], self.time_ms[:n])

    def tail(self, n: int) -> Due:
        """What ``head(n)`` leaves."""
        return Due(self.entity[n:], self.time_ms[n:])


class RateModel(Protocol):
    """When the entities of one stream are due. Pure: no clock, no state between calls."""

    def due(self, t0: int, t1: int) -> Due:
        """Records due in ``[t0, t1)`` ms, sorted by time."""
        ...

    def next_due(self, t: int) -> int:
        """A lower bound of the first due time ``>= t`` (may be early, never late)."""
        ...

    def target_rate(self, t: int) -> float:
        """The intended records per second at time ``t`` for this process's entities."""
        ...


class FixedInterval:
    """Each entity every ``interval``, at its own phase, optionally jittered.

    Entity ``e`` is due at ``phase[e] + c * interval + jitter(e, c)`` for every cycle ``c``.
    Phases follow the golden-ratio sequence over entity ids, ``frac(offset + e * 0.618...)``:
    each entity's phase depends on its own id only, yet any set of ids is spread almost
    evenly over the interval, so 330 devices at 10 s give 33 records in *every* second, not
    33 on average (random phases would give 33 +/- 6). Phases are kept sorted, so a window
    costs a binary search plus its output, not a scan of every entity.
    """

    def __init__(
        self, entity_ids: I64, keys: U64, interval_ms: int, jitter_ms: int = 0,
        phase_offset: float = 0.0, aligned: bool = False, pace: Pace | None = None,
    ) -> None:  # fmt: skip
        self.pace = pace
        if interval_ms < 1 or 2 * jitter_ms >= interval_ms:
            raise ValueError("needs interval_ms >= 1 and jitter_ms < interval_ms / 2")
        self.keys = keys
        self.interval = interval_ms
        self.jitter = jitter_ms
        spread = np.modf(phase_offset + entity_ids * _GOLDEN_FRACTION)[0]
        phase = np.floor(spread * interval_ms).astype(np.int64)
        if aligned:  # hourly data on the hour, every entity at once
            phase = np.zeros_like(phase)
        self._phase_of_entity = phase
        self._order = np.argsort(phase, kind="stable").astype(np.int64)
        self._phase = phase[self._order]

    def _grid(self, t0: int, t1: int) -> tuple[I64, I64]:
        """Entities and cycles whose unjittered time is in ``[t0, t1)``, in time order."""
        p = self.interval
        ents: list[I64] = []
        cycles: list[I64] = []
        for c in range(t0 // p - 1, t1 // p + 1):
            base = c * p
            lo = int(np.searchsorted(self._phase, t0 - base, "left"))
            hi = int(np.searchsorted(self._phase, t1 - base, "left"))
            if hi > lo:
                ents.append(self._order[lo:hi])
                cycles.append(np.full(hi - lo, c, dtype=np.int64))
        if not ents:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty
        return np.concatenate(ents), np.concatenate(cycles)

    def time_of(self, entity: I64, cycle: I64) -> I64:
        t: I64 = self._phase_of_entity[entity] + cycle * self.interval
        if self.jitter:
            keys = rng.combine(self.keys[entity], cycle)
            t = t + np.rint((rng.uniform(keys, 1) * 2.0 - 1.0) * self.jitter).astype(np.int64)
        return t

    def due(self, t0: int, t1: int) -> Due:
        pace = self.pace
        if pace is None or not pace.changes_before(t1):
            return self._due(t0, t1)
        # The grid in operational time, mapped back (see Pace).
        d = self._due(t0 + math.floor(pace.rel(t0, t0)) - 1,
                      t0 + math.ceil(pace.rel(t1, t0)) + 2)  # fmt: skip
        t = t0 + pace.back((d.time_ms - t0).astype(np.float64), t0)
        keep = (t >= t0) & (t < t1)
        return Due(d.entity[keep], t[keep])

    def _due(self, t0: int, t1: int) -> Due:
        if not self.jitter:
            ent, cyc = self._grid(t0, t1)
            return Due(ent, self._phase_of_entity[ent] + cyc * self.interval)
        ent, cyc = self._grid(t0 - self.jitter, t1 + self.jitter)
        t = self.time_of(ent, cyc)
        keep = (t >= t0) & (t < t1)
        ent, t = ent[keep], t[keep]
        order = np.argsort(t, kind="stable")
        return Due(ent[order], t[order])

    def next_due(self, t: int) -> int:
        pace = self.pace
        if pace is None or pace.steady:
            return self._next_due(t)
        if pace.stopped_from(t):
            return NEVER
        x = self._next_due(t + math.floor(pace.rel(t, t)))
        if x >= NEVER:
            return NEVER
        return max(t, t + int(pace.back(np.asarray([float(x - t)]), t)[0]))

    def _next_due(self, t: int) -> int:
        if self._phase.size == 0:
            return NEVER
        p = self.interval
        # A record due at or after t has its unjittered time at or after t - jitter.
        c, offset = divmod(t - self.jitter, p)
        i = int(np.searchsorted(self._phase, offset, "left"))
        if i < self._phase.size:
            grid = c * p + int(self._phase[i])
        else:
            grid = (c + 1) * p + int(self._phase[0])
        return max(t, grid - self.jitter)

    def target_rate(self, t: int) -> float:
        factor = 1.0 if self.pace is None else self.pace.factor_at(t)
        return float(self._phase.size * 1000.0 / self.interval) * factor


class TotalRate:
    """A total rate over all entities of the stream, each record for a random entity.

    Within each hour the rate is constant: ``base x multipliers(hour)``, and arrivals are
    evenly spaced at that rate from a random offset, so a minute at 33/s holds 1,980 records
    (+/-1), not a Poisson 1,980 +/- 44. Arrival ``j`` of hour ``H`` goes to entity
    ``hash(stream, H, j) mod N``; this process keeps the arrivals of its own shard's entities.
    """

    def __init__(
        self,
        stream_key: int,
        total_entities: int,
        local_index: I64,
        settings: RateSettings,
        shard_share: float,
        pace: Pace | None = None,
    ) -> None:
        assert settings.total_per_s is not None
        self.pace = pace
        self.key = stream_key
        self.n = total_entities
        self.local = local_index  # global entity id -> local index, -1 if another shard's
        self.base = settings.total_per_s * SCENARIO_FACTORS[settings.scenario]
        self.hours = np.asarray(settings.hour_multipliers or [1.0] * 24)
        self.weekdays = np.asarray(settings.weekday_multipliers or [1.0] * 7)
        self.months = np.asarray(settings.month_multipliers or [1.0] * 12)
        self.offset_ms = round(settings.utc_offset_hours * HOUR_MS)
        self.share = shard_share
        self._hours: dict[int, tuple[float, float, int]] = {}
        # Dated events as (first hour, end hour, factor): an hour counts when it starts
        # inside the event.
        self.events = [(math.ceil(e.start.timestamp() * 1000 / HOUR_MS),
                        math.ceil(e.end.timestamp() * 1000 / HOUR_MS), e.multiplier)
                       for e in settings.events]  # fmt: skip

    def rate_in_hour(self, hour: int) -> float:
        """Records per second (all shards) in the hour starting ``hour * 3600`` s."""
        local_ms = hour * HOUR_MS + self.offset_ms
        hod, day = hour_of_day(local_ms), weekday(local_ms)
        month = int(np.datetime64(local_ms // DAY_MS, "D").astype("datetime64[M]").astype(int) % 12)
        rate = float(self.base * self.hours[hod] * self.weekdays[day] * self.months[month])
        for first, end, factor in self.events:
            if first <= hour < end:
                rate *= factor
        return rate

    def _hour(self, hour: int) -> tuple[float, float, int]:
        """The hour's rate, its phase offset and key, worked out once an hour (a live tick
        asks for them tens of times a second)."""
        found = self._hours.get(hour)
        if found is None:
            if len(self._hours) > 64:
                self._hours.clear()
            key = rng.combine(self.key, np.asarray([hour]))
            found = (self.rate_in_hour(hour), float(rng.uniform(key, 0)[0]), int(key[0]))
            self._hours[hour] = found
        return found

    def _arrivals(self, hour: int, t0: int, t1: int) -> tuple[I64, I64, U64]:
        """Global entity ids, times and keys of this hour's arrivals in ``[t0, t1)``."""
        j, t = self._times(hour, t0, t1)
        if not j.size:
            return j, t, np.empty(0, np.uint64)
        keys = rng.combine(np.full(j.size, self._hour(hour)[2], dtype=np.uint64), j)
        return self.pick(hour, keys, t), t, keys

    def _times(self, hour: int, t0: int, t1: int) -> tuple[I64, I64]:
        """Numbers within the hour and times of the hour's arrivals in ``[t0, t1)``."""
        rate, off, _ = self._hour(hour)
        h0 = hour * HOUR_MS
        if rate <= 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        per_ms = rate / 1000.0
        pace = self.pace
        if pace is None or not pace.changes_before(h0 + HOUR_MS):
            count = math.ceil(HOUR_MS * per_ms - off)
            j0 = max(0, math.floor((t0 - h0) * per_ms - off) - 1)
            j1 = min(count, math.ceil((t1 - h0) * per_ms - off) + 1)
            j = np.arange(j0, max(j0, j1), dtype=np.int64)
            t = h0 + np.floor((j + off) / per_ms).astype(np.int64)
        else:  # the hour's arrivals evenly spaced in operational time (see Pace)
            tau0 = pace.rel(h0, h0)
            count = math.ceil((pace.rel(h0 + HOUR_MS, h0) - tau0) * per_ms - off)
            j0 = max(0, math.floor((pace.rel(t0, h0) - tau0) * per_ms - off) - 1)
            j1 = min(count, math.ceil((pace.rel(t1, h0) - tau0) * per_ms - off) + 1)
            j = np.arange(j0, max(j0, j1), dtype=np.int64)
            t = h0 + pace.back((tau0 + (j + off) / per_ms).astype(np.float64), h0)
        keep = (t >= t0) & (t < t1) & (t < h0 + HOUR_MS)
        return j[keep], t[keep]

    def pick(self, hour: int, keys: U64, times: I64) -> I64:
        """The entity of each arrival at ``times``: uniform over all entities (subclasses
        weigh them)."""
        entity: I64 = (rng.draw(keys, 0) % np.uint64(self.n)).astype(np.int64)
        return entity

    def arrivals(self, t0: int, t1: int) -> tuple[I64, I64, U64]:
        """This process's arrivals in ``[t0, t1)``: local entity index, time, key."""
        ents: list[I64] = []
        times: list[I64] = []
        keys: list[U64] = []
        for hour in range(t0 // HOUR_MS, (t1 - 1) // HOUR_MS + 1):
            lo, hi = max(t0, hour * HOUR_MS), min(t1, (hour + 1) * HOUR_MS)
            entity, t, k = self._arrivals(hour, lo, hi)
            local = self.local[entity]
            keep = local >= 0
            ents.append(local[keep])
            times.append(t[keep])
            keys.append(k[keep])
        if not ents:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.uint64)
        return np.concatenate(ents), np.concatenate(times), np.concatenate(keys)

    def due(self, t0: int, t1: int) -> Due:
        local, t, _ = self.arrivals(t0, t1)
        return Due(local, t)

    def next_due(self, t: int) -> int:
        pace = self.pace
        if pace is not None and not pace.steady:
            return self._paced_next_due(t, pace)
        hour = t // HOUR_MS
        for h in range(hour, hour + 24 * 400):
            rate, off, _ = self._hour(h)
            if rate <= 0:
                continue
            per_ms = rate / 1000.0
            h0 = h * HOUR_MS
            j = max(0, math.floor((max(t, h0) - h0) * per_ms - off))
            nxt = h0 + math.floor((j + off) / per_ms)
            while nxt < t:
                j += 1
                nxt = h0 + math.floor((j + off) / per_ms)
            if nxt < h0 + HOUR_MS:
                return nxt
        return 2**62

    def _paced_next_due(self, t: int, pace: Pace) -> int:
        """``next_due`` under control: the first arrival in the next two days, skipping
        pauses (an arrival of another shard's entity is a lower bound too)."""
        s, end = t, t + 48 * HOUR_MS
        while s < end:
            if pace.factor_at(s) == 0:
                k = bisect_right(pace.at, s)
                if k >= len(pace.at):
                    return NEVER
                s = pace.at[k]
                continue
            stop = min((s // HOUR_MS + 1) * HOUR_MS, s + 10 * 60_000)
            _, times = self._times(s // HOUR_MS, s, stop)
            if times.size:
                return int(times[0])
            s = stop
        return s

    def target_rate(self, t: int) -> float:
        factor = 1.0 if self.pace is None else self.pace.factor_at(t)
        return self.rate_in_hour(t // HOUR_MS) * self.share * factor
