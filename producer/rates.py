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
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from producer import rng
from producer.rng import I64, U64
from producer.settings import RateSettings
from producer.timeline import DAY_MS, HOUR_MS, SCENARIO_FACTORS, hour_of_day, weekday

_GOLDEN_FRACTION = (5**0.5 - 1) / 2


@dataclass(frozen=True, slots=True)
class Due:
    """Records due in a window: local entity index and due time (ms), sorted by time."""

    entity: I64
    time_ms: I64

    def __len__(self) -> int:
        return int(self.entity.size)

    def head(self, n: int) -> Due:
        return Due(self.entity[:n], self.time_ms[:n])


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
        phase_offset: float = 0.0, aligned: bool = False,
    ) -> None:  # fmt: skip
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
        if self._phase.size == 0:
            return 2**62
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
        return float(self._phase.size * 1000.0 / self.interval)


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
    ) -> None:
        assert settings.total_per_s is not None
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
        rate, off, hour_key = self._hour(hour)
        h0 = hour * HOUR_MS
        if rate <= 0:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.uint64)
        per_ms = rate / 1000.0
        count = math.ceil(HOUR_MS * per_ms - off)
        j0 = max(0, math.floor((t0 - h0) * per_ms - off) - 1)
        j1 = min(count, math.ceil((t1 - h0) * per_ms - off) + 1)
        j = np.arange(j0, max(j0, j1), dtype=np.int64)
        t = h0 + np.floor((j + off) / per_ms).astype(np.int64)
        keep = (t >= t0) & (t < t1) & (t < h0 + HOUR_MS)
        j, t = j[keep], t[keep]
        keys = rng.combine(np.full(j.size, hour_key, dtype=np.uint64), j)
        return self.pick(hour, keys, t), t, keys

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

    def target_rate(self, t: int) -> float:
        return self.rate_in_hour(t // HOUR_MS) * self.share
