"""Fault injection between a stream's generator and its sinks, with ground truth.

Every decision is a pure function of record keys (or of entity and hour for episodes), so
the same seed injects the same faults in every run and shard, and faults off gives the clean
stream exactly. Stages, in order:

    anomalies   sensor episodes on measurement columns: spike, stuck, drift, dropout (null),
                step; per entity and hour with ``anomaly_rate``
    clock skew  a share of entities report time_ms + offset + drift (re-synced daily)
    outage      an entity goes silent for a while (per entity and hour); its records are
                lost, or held and replayed in a burst when it comes back
    drop        records dropped
    duplicate   a copy right after its original: same message_id, is_duplicate true
    late        records held back by an exponential delay (bounded by ``late_max_s``) and
                released after later ones; ``late_keep_key_order`` holds a key's later
                records behind a late one instead

Held records count as in flight for every route from the moment they are generated, so
``generated = delivered + dropped_by_fault + failed + in_flight`` holds while they wait;
``flush`` releases them all at the end of a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from producer import rng
from producer.records import (
    MALFORMED_KINDS,
    SOURCES,
    VARIANTS,
    RecordBatch,
    Schema,
    uuid_strings,
)
from producer.rng import I64
from producer.settings import FaultSettings

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
_DROP_DRAW = 40
_DUPLICATE_DRAW = 41
_LATE_DRAW = 42
_LATE_DELAY_DRAW = 43
_MALFORMED_DRAW = 44
_QUALITY_DRAW = 46
_SOURCE_DRAW = 48
# Conflicts between sources (seed 004, S02): name variants 40 %, measure differences 30 %,
# date conflicts 20 %, other 10 %.
_CONFLICTS = ("name_conflict", "measure_conflict", "date_conflict", "other_conflict")
_CONFLICT_WEIGHTS = np.cumsum([0.4, 0.3, 0.2, 0.1])
# Episode durations by anomaly kind, seconds (all within an hour: an episode spills at most
# into the next hour, which is all the look-back below handles).
_ANOMALY_SECONDS = {
    "spike": (10, 60),
    "stuck": (600, 3600),
    "drift": (1800, 3600),
    "dropout": (60, 1800),
    "step": (1800, 3600),
}


@dataclass
class Truth:
    """Records one fault touched, and its parameters (one value, or one per record)."""

    kind: str
    records: RecordBatch
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class FaultOutput:
    batch: RecordBatch  # to route now
    generated: int = 0  # records that entered the pipeline (originals and duplicates)
    accepted: int = 0  # of those, routed now or held for later (in flight either way)
    dropped: int = 0  # dropped on purpose (drops, outages without replay)
    duplicated: int = 0
    truth: list[Truth] = field(default_factory=list)


class Faults:
    def __init__(self, settings: FaultSettings, key: int, schema: Schema | None = None) -> None:
        self.s = settings
        self.key = key
        self.measures = dict(schema.measures) if schema is not None else {}
        self.episode_columns: tuple[str, ...] = getattr(schema, "episode_columns", ())
        self.held: RecordBatch | None = None
        self.release_ms = np.empty(0, dtype=np.int64)
        self.block_until = np.zeros(0, dtype=np.int64)  # per entity, keep-order mode
        self.stuck_values: dict[tuple[int, int, str], float] = {}

    # ------------------------------------------------------------------ episodes
    def _episode(
        self, entity: I64, time_ms: I64, salt: int, rate: float, slot_ms: int = HOUR_MS
    ) -> tuple[Any, ...]:
        """The episode (if any) covering each record: per entity and slot (an hour, or a
        day), with probability ``rate``, starting at a uniform time in the slot. Looks at
        this slot and the last (an episode lasts at most one slot)."""
        found = np.zeros(entity.size, dtype=np.bool_)
        start = np.zeros(entity.size, dtype=np.int64)
        draws = np.zeros((entity.size, 4))
        for back in (1, 0):  # this slot's episode wins over the last one's
            slot = time_ms // slot_ms - back
            keys = rng.combine(rng.combine(rng.combine(self.key, salt), entity), slot)
            u = rng.uniform_block(keys, 6)
            begins = slot * slot_ms + (u[:, 1] * slot_ms).astype(np.int64)
            hit = (u[:, 0] < rate) & (time_ms >= begins)
            found = np.where(hit, True, found)
            start = np.where(hit, begins, start)
            draws = np.where(hit[:, None], u[:, 2:6], draws)
        return found, start, draws

    def _anomalies(self, batch: RecordBatch, truth: list[Truth]) -> RecordBatch:
        if not self.measures or not self.s.anomaly_kinds:
            return batch
        found, start, u = self._episode(batch.entity, batch.time_ms, 1, self.s.anomaly_rate)
        kinds = self.s.anomaly_kinds
        kind_i = np.minimum((u[:, 0] * len(kinds)).astype(np.int64), len(kinds) - 1)
        names = list(self.measures)
        col_i = np.minimum((u[:, 1] * len(names)).astype(np.int64), len(names) - 1)
        sign = np.where(u[:, 2] < 0.5, -1.0, 1.0)
        lengths = np.array([_ANOMALY_SECONDS[k] for k in kinds], dtype=np.float64) * 1000
        duration = lengths[kind_i, 0] + u[:, 3] * (lengths[kind_i, 1] - lengths[kind_i, 0])
        active = found & (batch.time_ms < start + duration.astype(np.int64))
        if not active.any():
            return batch
        columns = dict(batch.columns)
        touched: list[tuple[str, I64, dict[str, Any]]] = []
        for ci, name in enumerate(names):
            scale, low, high = self.measures[name]
            if (active & (col_i == ci)).any():
                columns[name] = columns[name].copy()
            values = columns[name]
            for ki, kind in enumerate(kinds):
                hit = np.flatnonzero(active & (col_i == ci) & (kind_i == ki))
                if not hit.size:
                    continue
                magnitude = sign[hit] * scale
                elapsed = (batch.time_ms[hit] - start[hit]) / duration[hit]
                if kind == "spike":
                    values[hit] += magnitude * (4 + 4 * u[hit, 3])
                elif kind == "drift":
                    values[hit] += magnitude * 2 * elapsed
                elif kind == "step":
                    values[hit] += magnitude * 1.5
                elif kind == "dropout":
                    values[hit] = np.nan
                else:  # stuck: the value of the episode's first reading, held
                    for i in hit.tolist():
                        slot = (int(batch.entity[i]), int(start[i]), name)
                        values[i] = self.stuck_values.setdefault(slot, float(values[i]))
                if kind != "dropout":
                    values[hit] = np.clip(np.round(values[hit], 2), low, high)
                end = start[hit] + duration[hit].astype(np.int64)
                touched.append((kind, hit, {"column": name, "start_ms": start[hit], "end_ms": end}))
        if len(self.stuck_values) > 100_000:  # episodes last at most an hour
            horizon = int(batch.time_ms.min()) - 2 * HOUR_MS
            self.stuck_values = {k: v for k, v in self.stuck_values.items() if k[1] > horizon}
        out = replace(batch, columns=columns)
        truth += [Truth(kind, out.take(hit), params) for kind, hit, params in touched]
        return out

    def _pollution_episodes(self, batch: RecordBatch, truth: list[Truth]) -> RecordBatch:
        """A city's pollutants x3-10 for 2-8 hours, the two hours either side elevated on a
        ramp: per city and day with ``pollution_episode_rate``."""
        ramp = 2 * HOUR_MS
        found, rise, u = self._episode(
            batch.entity, batch.time_ms, 5, self.s.pollution_episode_rate, DAY_MS
        )
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
        for name in self.episode_columns:
            columns[name] = columns[name].copy()
            columns[name][hit] = np.round(columns[name][hit] * factor, 2)
        out = replace(batch, columns=columns)
        truth.append(Truth("pollution_episode", out.take(hit), {
            "factor": np.round(factor, 3), "peak_factor": np.round(peak[hit], 3),
            "core_start_ms": start[hit], "core_end_ms": start[hit] + core[hit],
        }))  # fmt: skip
        return out

    def _clock_skew(self, batch: RecordBatch, truth: list[Truth]) -> RecordBatch:
        keys = rng.combine(rng.combine(self.key, 2), batch.entity)
        u = rng.uniform_block(keys, 5)
        skewed = u[:, 0] < self.s.clock_skew_rate
        if not skewed.any():
            return batch
        offset = rng.box_muller(u[:, 1], u[:, 2]) * self.s.clock_skew_s * 1000
        drift = rng.box_muller(u[:, 3], u[:, 4]) * self.s.clock_drift_ppm * 1e-6
        since_sync = (batch.time_ms % DAY_MS).astype(np.float64)
        skew = np.where(skewed, np.rint(offset + drift * since_sync), 0).astype(np.int64)
        out = replace(batch, skew_ms=batch.skew_ms + skew)
        hit = np.flatnonzero(skewed)
        truth.append(Truth("clock_skew", out.take(hit), {"skew_ms": skew[hit]}))
        return out

    def _malformed(self, batch: RecordBatch, truth: list[Truth]) -> RecordBatch:
        hit, codes = _marked(
            batch, _MALFORMED_DRAW, self.s.malformed_rate, self.s.malformed_kinds, MALFORMED_KINDS
        )
        if not hit.size or not self.measures:
            return batch
        malformed = batch.malformed.copy()
        malformed[hit] = codes
        columns = dict(batch.columns)
        names = list(self.measures)
        column_of = (batch.key[hit] % np.uint64(len(names))).astype(np.int64)
        out_of_range = codes == MALFORMED_KINDS.index("out_of_range")
        for ci, name in enumerate(names):
            rows = hit[out_of_range & (column_of == ci)]
            if rows.size:  # far outside the sensor's range, in every output format
                columns[name] = columns[name].copy()
                columns[name][rows] = np.round(columns[name][rows] * 100 + 1000, 2)
        out = replace(batch, columns=columns, malformed=malformed)
        for code in np.unique(codes).tolist():
            mine = hit[codes == code]
            field_names = np.asarray(names, dtype=object)[column_of[codes == code]]
            truth.append(
                Truth(f"malformed_{MALFORMED_KINDS[code]}", out.take(mine), {"field": field_names})
            )
        return out

    def _shift_measure(
        self, batch: RecordBatch, rows: I64, low_scale: float, high_scale: float, draw: int
    ) -> tuple[dict[str, Any], Any]:
        """Move one measurement per record (chosen by its key) by +/- low..high x its scale,
        clipped to the plausible range. Returns new columns and the column names."""
        names = list(self.measures)
        columns = dict(batch.columns)
        column_of = (batch.key[rows] % np.uint64(len(names))).astype(np.int64)
        u = rng.uniform_block(batch.key[rows], draw + 2)[:, draw:]
        for ci, name in enumerate(names):
            mine = column_of == ci
            if mine.any():
                scale, low, high = self.measures[name]
                sign = np.where(u[mine, 0] < 0.5, -1.0, 1.0)
                size = low_scale + u[mine, 1] * (high_scale - low_scale)
                columns[name] = columns[name].copy()
                moved = columns[name][rows[mine]] + sign * size * scale
                columns[name][rows[mine]] = np.clip(np.round(moved, 2), low, high)
        return columns, np.asarray(names, dtype=object)[column_of]

    def _quality(self, batch: RecordBatch, truth: list[Truth]) -> RecordBatch:
        """Seed 004's "95 % clean": missing optional values (null, "", "N/A"), another date
        format, a near-duplicate entity name, an outlier within the plausible range."""
        hit, codes = _marked(
            batch, _QUALITY_DRAW, self.s.quality_issue_rate, self.s.quality_issue_kinds, VARIANTS
        )
        if not hit.size:
            return batch
        variant = batch.variant.copy()
        variant[hit] = codes
        columns = batch.columns
        outliers = hit[codes == VARIANTS.index("outlier")]
        fields = None
        if outliers.size and self.measures:
            columns, fields = self._shift_measure(batch, outliers, 1.5, 2.5, 10)
        out = replace(batch, columns=columns, variant=variant)
        for code in np.unique(codes).tolist():
            mine = hit[codes == code]
            params = {"field": fields} if VARIANTS[code] == "outlier" and fields is not None else {}
            truth.append(Truth(f"quality_{VARIANTS[code]}", out.take(mine), params))
        return out

    def _sources(self, batch: RecordBatch, truth: list[Truth]) -> RecordBatch:
        """Seed 004's S02: the stream as 2 or 3 sources. Each record is unique to one source
        or shared by two; shares follow ``source_overlaps`` (A 40 %, B 50 %, C 30 % of a
        source's records also in another); the second copy of a shared record conflicts
        (name 40 %, measure 30 %, date 20 %, other 10 %). Every copy has its own message_id;
        the ground truth links it to the original's."""
        n = self.s.sources
        overlaps = np.asarray(self.s.source_overlaps[:n])
        pairs = [(0, 1)] if n == 2 else [(0, 1), (0, 2), (1, 2)]
        unique_weight = (n - 1) * (1 - overlaps) / overlaps  # per shared pair, see the note
        weights = np.concatenate([unique_weight, np.ones(len(pairs))])
        bounds = np.cumsum(weights / weights.sum())
        u = rng.uniform_block(batch.key, _SOURCE_DRAW + 2)[:, _SOURCE_DRAW:]
        category = np.minimum(np.searchsorted(bounds, u[:, 0], side="right"), len(bounds) - 1)
        shared = category >= n
        copies = 1 + shared.astype(np.int64)
        index = np.repeat(np.arange(len(batch)), copies)
        second = np.zeros(index.size, dtype=np.bool_)
        second[1:] = index[1:] == index[:-1]
        first_of_pair = np.asarray([p[0] for p in pairs])
        first_source = np.where(shared, first_of_pair[np.maximum(category - n, 0)], category)
        second_source = np.asarray([p[1] for p in pairs])[np.maximum(category - n, 0)]
        source = np.where(second, second_source[index], first_source[index]).astype(np.int8)
        conflict = np.searchsorted(_CONFLICT_WEIGHTS, u[index, 1], side="right")
        conflict = np.minimum(conflict, len(_CONFLICTS) - 1)
        variant = batch.variant[index].copy()
        codes = np.asarray([VARIANTS.index(c) for c in _CONFLICTS], dtype=np.int8)
        variant[second] = codes[conflict[second]]
        out = batch.take(index)
        original_ids = uuid_strings(out.key).astype("U36").astype(object)
        out = replace(out, key=rng.combine(out.key, source.astype(np.int64) + 1), source=source,
                      variant=variant)  # fmt: skip
        columns, skew = out.columns, out.skew_ms
        measure = np.flatnonzero(second & (conflict == _CONFLICTS.index("measure_conflict")))
        if measure.size and self.measures:
            columns, _ = self._shift_measure(out, measure, 0.03, 0.3, 12)
        dates = np.flatnonzero(second & (conflict == _CONFLICTS.index("date_conflict")))
        if dates.size:
            shift = (1 + rng.uniform(out.key[dates], 14) * 119) * 1000
            sign = np.where(rng.uniform(out.key[dates], 15) < 0.5, -1, 1)
            skew = skew.copy()
            skew[dates] += (sign * shift).astype(np.int64)
        out = replace(out, columns=columns, skew_ms=skew)
        conflict_names = np.where(second, np.asarray(_CONFLICTS, dtype=object)[conflict], "")
        truth.append(Truth("source_copy", out, {
            "source": np.asarray(SOURCES, dtype=object)[source],
            "original_message_id": original_ids,
            "conflict": conflict_names,
        }))  # fmt: skip
        return out

    def _outages(self, batch: RecordBatch, truth: list[Truth]) -> tuple[RecordBatch, RecordBatch]:
        """Returns (records going on, records lost); replayed ones are held."""
        group = batch.entity // self.s.outage_group_size
        found, start, u = self._episode(group, batch.time_ms, 3, self.s.outage_rate)
        span = self.s.outage_min_s + u[:, 0] * (self.s.outage_max_s - self.s.outage_min_s)
        end = start + (span * 1000).astype(np.int64)
        silent = found & (batch.time_ms < end)
        empty = np.empty(0, dtype=np.int64)
        if not silent.any():
            return batch, batch.take(empty)
        hit = np.flatnonzero(silent)
        kind = "outage_replayed" if self.s.outage_replay else "outage_lost"
        truth.append(Truth(kind, batch.take(hit), {
            "start_ms": start[hit], "end_ms": end[hit], "group": group[hit],
        }))  # fmt: skip
        going = batch.take(np.flatnonzero(~silent))
        if self.s.outage_replay:
            self._hold(batch.take(hit), end[hit])
            return going, batch.take(empty)
        return going, batch.take(hit)

    def _hold(self, records: RecordBatch, release: I64) -> None:
        if not len(records):
            return
        if self.held is None:
            self.held, self.release_ms = records, release
        else:
            self.held = RecordBatch.concat([self.held, records])
            self.release_ms = np.concatenate([self.release_ms, release])

    # ------------------------------------------------------------------ the pipeline
    def apply(self, batch: RecordBatch | None, t1: int) -> FaultOutput:
        """Inject faults into a new batch (or none) and release what is due before ``t1``."""
        truth: list[Truth] = []
        if batch is None or not len(batch):
            released = self._release(t1)
            return FaultOutput(released if released is not None else _nothing(batch), truth=truth)
        generated = len(batch)
        s = self.s
        if s.anomaly_rate > 0:
            batch = self._anomalies(batch, truth)
        if s.pollution_episode_rate > 0 and self.episode_columns:
            batch = self._pollution_episodes(batch, truth)
        if s.clock_skew_rate > 0:
            batch = self._clock_skew(batch, truth)
        lost: RecordBatch | None = None
        if s.malformed_rate > 0:
            batch = self._malformed(batch, truth)
        if s.quality_issue_rate > 0:
            batch = self._quality(batch, truth)
        if s.sources > 1:
            before = len(batch)
            batch = self._sources(batch, truth)
            generated += len(batch) - before
        if s.outage_rate > 0:
            batch, lost = self._outages(batch, truth)
        # No draws for a rate of zero: the production profile's backfills stay lean.
        none = np.zeros(len(batch), dtype=np.bool_)
        drop = rng.uniform(batch.key, _DROP_DRAW) < s.drop_rate if s.drop_rate else none
        dup = ~drop & (
            rng.uniform(batch.key, _DUPLICATE_DRAW) < s.duplicate_rate if s.duplicate_rate else none
        )
        any_drop = bool(drop.any())
        dropped = batch.take(np.flatnonzero(drop)) if any_drop else None
        if any_drop or dup.any():
            kept = np.flatnonzero(~drop)
            order = np.repeat(kept, 1 + dup[kept].astype(np.int64))
            batch = batch.take(order)
            copy = np.zeros(order.size, dtype=np.bool_)
            copy[1:] = order[1:] == order[:-1]
            batch.is_duplicate[copy] = True
            truth.append(Truth("duplicate", batch.take(np.flatnonzero(copy))))
        gone = [b.key for b in (dropped, lost) if b is not None and len(b)]
        if gone:  # an anomaly or skew on a record that never arrives is not visible
            keys = np.concatenate(gone)
            truth[:] = [_without(t, keys) if t.kind != "outage_lost" else t for t in truth]
        if dropped is not None:
            truth.append(Truth("drop", dropped))
        duplicated = int(dup.sum())
        out = self._late(batch, t1, truth) if s.late_rate > 0 or s.late_keep_key_order else batch
        released = self._release(t1)
        if released is not None:  # a backlog goes out before what is new
            out = RecordBatch.concat([released, out]) if len(out) else released
        total = generated + duplicated
        lost_count = sum(len(b) for b in (dropped, lost) if b is not None)
        return FaultOutput(
            out, generated=total, accepted=total - lost_count, dropped=lost_count,
            duplicated=duplicated, truth=truth,
        )  # fmt: skip

    def _late(self, batch: RecordBatch, t1: int, truth: list[Truth]) -> RecordBatch:
        s = self.s
        late = rng.uniform(batch.key, _LATE_DRAW) < s.late_rate
        delay = np.minimum(
            -np.log(rng.uniform(batch.key, _LATE_DELAY_DRAW)) * s.late_mean_s * 1000,
            s.late_max_s * 1000,
        ).astype(np.int64)
        delay = np.where(late, np.maximum(delay, 1), 0)
        release = batch.time_ms + delay
        if late.any():
            hit = np.flatnonzero(late)
            truth.append(Truth("late", batch.take(hit), {"delay_ms": delay[hit]}))
        if s.late_keep_key_order:
            release = self._keep_order(batch.entity, release)
        wait = release >= t1
        self._hold(batch.take(np.flatnonzero(wait)), release[wait])
        # What goes now goes in order of release, so a short delay still lands behind later
        # records even when the whole delay falls inside one (backfill-sized) tick.
        now = np.flatnonzero(~wait)
        return batch.take(now[np.argsort(release[now], kind="stable")])

    def _keep_order(self, entity: I64, release: I64) -> I64:
        """No record of a key leaves before an earlier one of the same key: a running
        maximum of release times per key, in time order, carried across batches."""
        top = int(entity.max()) + 1
        if self.block_until.size < top:
            self.block_until = np.concatenate(
                [self.block_until, np.zeros(top - self.block_until.size, dtype=np.int64)]
            )
        release = np.maximum(release, self.block_until[entity])
        order = np.argsort(entity, kind="stable")
        ent = entity[order]
        base = int(release.min())
        group = np.cumsum(np.concatenate([[0], ent[1:] != ent[:-1]]))
        span = int(release.max()) - base + 1
        running = np.maximum.accumulate((release[order] - base) + group * span) - group * span
        result = np.empty_like(release)
        result[order] = running + base
        np.maximum.at(self.block_until, entity, result)
        return result

    def _release(self, t1: int) -> RecordBatch | None:
        if self.held is None:
            return None
        due = self.release_ms < t1
        if not due.any():
            return None
        idx = np.flatnonzero(due)
        idx = idx[np.lexsort((self.held.time_ms[idx], self.release_ms[idx]))]
        out = self.held.take(idx)
        rest = np.flatnonzero(~due)
        if rest.size:
            self.held, self.release_ms = self.held.take(rest), self.release_ms[rest]
        else:
            self.held, self.release_ms = None, np.empty(0, dtype=np.int64)
        return out

    def flush(self) -> RecordBatch | None:
        """Everything still held, now (end of a run: its event times have passed)."""
        return self._release(2**62)


def _nothing(batch: RecordBatch | None) -> RecordBatch:
    empty = np.empty(0, dtype=np.int64)
    if batch is not None:
        return batch.take(empty)
    return RecordBatch("", empty, empty, np.empty(0, dtype=np.uint64), {})


def _without(entry: Truth, keys: np.ndarray) -> Truth:
    keep = np.flatnonzero(~np.isin(entry.records.key, keys))
    if keep.size == len(entry.records):
        return entry
    params = {k: v[keep] if isinstance(v, np.ndarray) else v for k, v in entry.params.items()}
    return Truth(entry.kind, entry.records.take(keep), params)


def _marked(
    batch: RecordBatch, draw: int, rate: float, kinds: list[str], codebook: tuple[str, ...]
) -> tuple[I64, np.ndarray]:
    """Records chosen with ``rate`` (draw ``draw``), and for each a kind among ``kinds``
    (draw ``draw + 1``) as its code in ``codebook``."""
    hit = np.flatnonzero(rng.uniform(batch.key, draw) < rate) if kinds else np.empty(0, np.int64)
    choice = np.minimum((rng.uniform(batch.key[hit], draw + 1) * len(kinds)).astype(np.int64),
                        max(len(kinds) - 1, 0))  # fmt: skip
    codes = (
        np.asarray([codebook.index(k) for k in kinds], dtype=np.int8)[choice]
        if kinds
        else (np.empty(0, np.int8))
    )
    return hit, codes
