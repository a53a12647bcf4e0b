"""The built-in fault stages, in pipeline order (see ``producer.faults``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from producer import rng
from producer.cdc import ChangeSchema
from producer.encoding import MALFORMED, MALFORMED_KINDS, SOURCE, SOURCES, VARIANT, VARIANTS
from producer.faults.base import (
    DAY_MS,
    HOUR_MS,
    Held,
    Stage,
    Step,
    Truth,
    episodes,
    marked,
    without,
)
from producer.faults.cdc import AddedColumn, ChangeDelays, Replays
from producer.records import RecordBatch, Schema, uuid_strings
from producer.rng import I64
from producer.settings import FaultSettings

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


class Anomalies:
    """Sensor episodes on measurement columns: spike, stuck, drift, dropout (null), step;
    per entity and hour with ``anomaly_rate``."""

    order = 10

    def __init__(self, s: FaultSettings, key: int, measures: dict[str, tuple[float, float, float]]):
        self.s, self.key, self.measures = s, key, measures
        self.kinds = tuple(s.anomaly_kinds)
        self.stuck_values: dict[tuple[int, int, str], float] = {}

    def apply(self, batch: RecordBatch, step: Step) -> RecordBatch:
        found, start, u = episodes(self.key, 1, batch.entity, batch.time_ms, self.s.anomaly_rate)
        kinds = self.kinds
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
            if not (active & (col_i == ci)).any():
                continue
            # A whole-number measure (a page's seconds) moves in floats and is rounded back;
            # it has no null to drop out to.
            whole = np.issubdtype(columns[name].dtype, np.integer)
            values = columns[name].astype(np.float64) if whole else columns[name].copy()
            for ki, kind in enumerate(kinds):
                hit = np.flatnonzero(active & (col_i == ci) & (kind_i == ki))
                if not hit.size or (whole and kind == "dropout"):
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
            columns[name] = np.rint(values).astype(columns[name].dtype) if whole else values
        if len(self.stuck_values) > 100_000:  # episodes last at most an hour
            horizon = int(batch.time_ms.min()) - 2 * HOUR_MS
            self.stuck_values = {k: v for k, v in self.stuck_values.items() if k[1] > horizon}
        out = replace(batch, columns=columns)
        step.truth += [Truth(kind, out.take(hit), params) for kind, hit, params in touched]
        return out


class ClockSkew:
    """A share of entities report time_ms + offset + drift (re-synced daily)."""

    order = 20
    kinds = ("clock_skew",)

    def __init__(self, s: FaultSettings, key: int) -> None:
        self.s, self.key = s, key

    def apply(self, batch: RecordBatch, step: Step) -> RecordBatch:
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
        step.truth.append(Truth("clock_skew", out.take(hit), {"skew_ms": skew[hit]}))
        return out


class Malformed:
    """Records made malformed for dead-letter tests: ``out_of_range`` in the columns (every
    output format shows it), the other kinds as a mark the JSON encoder renders."""

    order = 30

    def __init__(self, s: FaultSettings, measures: dict[str, tuple[float, float, float]]):
        self.s, self.names = s, list(measures)
        self.kinds = tuple(f"malformed_{k}" for k in s.malformed_kinds)

    def apply(self, batch: RecordBatch, step: Step) -> RecordBatch:
        s, names = self.s, self.names
        hit, codes = marked(batch, _MALFORMED_DRAW, s.malformed_rate, s.malformed_kinds,
                             MALFORMED_KINDS)  # fmt: skip
        if not hit.size:
            return batch
        malformed = batch.mark(MALFORMED).copy()
        malformed[hit] = codes
        columns = dict(batch.columns)
        column_of = (batch.key[hit] % np.uint64(len(names))).astype(np.int64)
        out_of_range = codes == MALFORMED_KINDS.index("out_of_range")
        for ci, name in enumerate(names):
            rows = hit[out_of_range & (column_of == ci)]
            if rows.size:  # far outside the sensor's range, in every output format
                columns[name] = columns[name].copy()
                columns[name][rows] = np.round(columns[name][rows] * 100 + 1000, 2)
        out = replace(batch, columns=columns).marked(MALFORMED, malformed)
        for code in np.unique(codes).tolist():
            mine = hit[codes == code]
            field_names = np.asarray(names, dtype=object)[column_of[codes == code]]
            step.truth.append(
                Truth(f"malformed_{MALFORMED_KINDS[code]}", out.take(mine), {"field": field_names})
            )
        return out


def _shift_measure(
    measures: dict[str, tuple[float, float, float]],
    batch: RecordBatch,
    rows: I64,
    low_scale: float,
    high_scale: float,
    draw: int,
) -> tuple[dict[str, Any], Any]:
    """Move one measurement per record (chosen by its key) by +/- low..high x its scale,
    clipped to the plausible range. Returns new columns and the column names."""
    names = list(measures)
    columns = dict(batch.columns)
    column_of = (batch.key[rows] % np.uint64(len(names))).astype(np.int64)
    u = rng.uniform_block(batch.key[rows], draw + 2)[:, draw:]
    for ci, name in enumerate(names):
        mine = column_of == ci
        if mine.any():
            scale, low, high = measures[name]
            sign = np.where(u[mine, 0] < 0.5, -1.0, 1.0)
            size = low_scale + u[mine, 1] * (high_scale - low_scale)
            columns[name] = columns[name].copy()
            moved = columns[name][rows[mine]] + sign * size * scale
            columns[name][rows[mine]] = np.clip(np.round(moved, 2), low, high)
    return columns, np.asarray(names, dtype=object)[column_of]


class Quality:
    """Seed 004's "95 % clean": missing optional values (null, "", "N/A"), another date
    format, a near-duplicate entity name, an outlier within the plausible range."""

    order = 40

    def __init__(self, s: FaultSettings, measures: dict[str, tuple[float, float, float]]):
        self.s, self.measures = s, measures
        self.kinds = tuple(f"quality_{k}" for k in s.quality_issue_kinds)

    def apply(self, batch: RecordBatch, step: Step) -> RecordBatch:
        s = self.s
        hit, codes = marked(batch, _QUALITY_DRAW, s.quality_issue_rate, s.quality_issue_kinds,
                             VARIANTS)  # fmt: skip
        if not hit.size:
            return batch
        variant = batch.mark(VARIANT).copy()
        variant[hit] = codes
        columns = batch.columns
        outliers = hit[codes == VARIANTS.index("outlier")]
        fields = None
        if outliers.size and self.measures:
            columns, fields = _shift_measure(self.measures, batch, outliers, 1.5, 2.5, 10)
        out = replace(batch, columns=columns).marked(VARIANT, variant)
        for code in np.unique(codes).tolist():
            mine = hit[codes == code]
            params = {"field": fields} if VARIANTS[code] == "outlier" and fields is not None else {}
            step.truth.append(Truth(f"quality_{VARIANTS[code]}", out.take(mine), params))
        return out


class Sources:
    """Seed 004's S02: the stream as 2 or 3 sources. Each record is unique to one source or
    shared by two; shares follow ``source_overlaps`` (A 40 %, B 50 %, C 30 % of a source's
    records also in another); the second copy of a shared record conflicts (name 40 %,
    measure 30 %, date 20 %, other 10 %). Every copy has its own message_id; the ground
    truth links it to the original's."""

    order = 50
    kinds = ("source_copy",)

    def __init__(self, s: FaultSettings, measures: dict[str, tuple[float, float, float]]):
        self.s, self.measures = s, measures

    def apply(self, batch: RecordBatch, step: Step) -> RecordBatch:
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
        variant = batch.mark(VARIANT)[index].copy()
        codes = np.asarray([VARIANTS.index(c) for c in _CONFLICTS], dtype=np.int8)
        variant[second] = codes[conflict[second]]
        out = batch.take(index)
        original_ids = uuid_strings(out.key).astype("U36").astype(object)
        out = replace(out, key=rng.combine(out.key, source.astype(np.int64) + 1))
        out = out.marked(SOURCE, source).marked(VARIANT, variant)
        columns, skew = out.columns, out.skew_ms
        measure = np.flatnonzero(second & (conflict == _CONFLICTS.index("measure_conflict")))
        if measure.size and self.measures:
            columns, _ = _shift_measure(self.measures, out, measure, 0.03, 0.3, 12)
        dates = np.flatnonzero(second & (conflict == _CONFLICTS.index("date_conflict")))
        if dates.size:
            shift = (1 + rng.uniform(out.key[dates], 14) * 119) * 1000
            sign = np.where(rng.uniform(out.key[dates], 15) < 0.5, -1, 1)
            skew = skew.copy()
            skew[dates] += (sign * shift).astype(np.int64)
        out = replace(out, columns=columns, skew_ms=skew)
        conflict_names = np.where(second, np.asarray(_CONFLICTS, dtype=object)[conflict], "")
        step.truth.append(Truth("source_copy", out, {
            "source": np.asarray(SOURCES, dtype=object)[source],
            "original_message_id": original_ids,
            "conflict": conflict_names,
        }))  # fmt: skip
        step.added += len(out) - len(batch)
        return out


class Outages:
    """An entity (or a gateway's group) goes silent for a while, per group and hour; its
    records are lost, or held and replayed in a burst when it comes back."""

    order = 60

    def __init__(self, s: FaultSettings, key: int, held: Held) -> None:
        self.s, self.key, self.held = s, key, held
        self.kinds = ("outage_replayed",) if s.outage_replay else ("outage_lost",)

    def apply(self, batch: RecordBatch, step: Step) -> RecordBatch:
        s = self.s
        group = batch.entity // s.outage_group_size
        found, start, u = episodes(self.key, 3, group, batch.time_ms, s.outage_rate)
        span = s.outage_min_s + u[:, 0] * (s.outage_max_s - s.outage_min_s)
        end = start + (span * 1000).astype(np.int64)
        silent = found & (batch.time_ms < end)
        if not silent.any():
            return batch
        hit = np.flatnonzero(silent)
        step.truth.append(Truth(self.kinds[0], batch.take(hit), {
            "start_ms": start[hit], "end_ms": end[hit], "group": group[hit],
        }))  # fmt: skip
        if s.outage_replay:
            self.held.hold(batch.take(hit), end[hit])
        else:
            step.lost.append(batch.take(hit))
        return batch.take(np.flatnonzero(~silent))


# Ground truth of records that are gone on purpose (the truth says why they are missing).
LOSSES = ("outage_lost", "episode_outage")


class DropsAndDuplicates:
    """Records dropped; copies right after their original (same message_id, is_duplicate
    true). Ground truth of other faults on records that never arrive is taken back here."""

    order = 70
    kinds = ("duplicate", "drop")

    def __init__(self, s: FaultSettings, drop_rate: float) -> None:
        self.s, self.drop_rate = s, drop_rate

    def apply(self, batch: RecordBatch, step: Step) -> RecordBatch:
        s, drop_rate = self.s, self.drop_rate
        # No draws for a rate of zero: the production profile's backfills stay lean.
        none = np.zeros(len(batch), dtype=np.bool_)
        if drop_rate and s.duplicate_rate:  # both draws in one pass (a live tick's few)
            u = rng.uniforms(batch.key, (_DROP_DRAW, _DUPLICATE_DRAW))
            drop = u[:, 0] < drop_rate
            dup = ~drop & (u[:, 1] < s.duplicate_rate)
        else:
            drop = rng.uniform(batch.key, _DROP_DRAW) < drop_rate if drop_rate else none
            dup = ~drop & (rng.uniform(batch.key, _DUPLICATE_DRAW) < s.duplicate_rate
                           if s.duplicate_rate else none)  # fmt: skip
        any_drop = bool(drop.any())
        dropped = batch.take(np.flatnonzero(drop)) if any_drop else None
        if any_drop or dup.any():
            kept = np.flatnonzero(~drop)
            order = np.repeat(kept, 1 + dup[kept].astype(np.int64) * s.duplicate_copies)
            batch = batch.take(order)
            copy = np.zeros(order.size, dtype=np.bool_)
            copy[1:] = order[1:] == order[:-1]
            batch.is_duplicate[copy] = True
            step.truth.append(Truth("duplicate", batch.take(np.flatnonzero(copy))))
        gone = [b.key for b in ([dropped] if dropped is not None else []) + step.lost if len(b)]
        if gone:  # an anomaly or skew on a record that never arrives is not visible
            keys = np.concatenate(gone)
            step.truth[:] = [t if t.kind in LOSSES else without(t, keys)
                             for t in step.truth]  # fmt: skip
        if dropped is not None:
            step.truth.append(Truth("drop", dropped))
            step.lost.append(dropped)
        step.duplicated = int(dup.sum()) * s.duplicate_copies
        return batch


class Late:
    """Records held back by a delay (exponential or uniform, bounded by ``late_max_s``) and released
    after later ones; ``late_keep_key_order`` holds a key's later records behind a late one
    instead."""

    order = 80
    kinds = ("late",)

    def __init__(self, s: FaultSettings, held: Held) -> None:
        self.s, self.held = s, held
        self.block_until = np.zeros(0, dtype=np.int64)  # per entity, keep-order mode

    def apply(self, batch: RecordBatch, step: Step) -> RecordBatch:
        s = self.s
        late = rng.uniform(batch.key, _LATE_DRAW) < s.late_rate
        u = rng.uniform(batch.key, _LATE_DELAY_DRAW)
        drawn = u * s.late_max_s if s.late_delay == "uniform" else -np.log(u) * s.late_mean_s
        delay = np.minimum(drawn * 1000, s.late_max_s * 1000).astype(np.int64)
        delay = np.where(late, np.maximum(delay, 1), 0)
        release = batch.time_ms + delay
        if late.any():
            hit = np.flatnonzero(late)
            step.truth.append(Truth("late", batch.take(hit), {"delay_ms": delay[hit]}))
        if s.late_keep_key_order:
            release = self._keep_order(batch.entity, release)
        wait = release >= step.t1
        self.held.hold(batch.take(np.flatnonzero(wait)), release[wait])
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


def built_in_stages(s: FaultSettings, key: int, schema: Schema | None, held: Held) -> list[Stage]:
    """The generic stages that are on for these settings (a stage at rate 0 costs nothing)."""
    measures = dict(schema.measures) if schema is not None else {}
    stages: list[Stage] = []
    if s.anomaly_rate > 0 and measures and s.anomaly_kinds:
        stages.append(Anomalies(s, key, measures))
    if s.clock_skew_rate > 0:
        stages.append(ClockSkew(s, key))
    if s.malformed_rate > 0 and measures:
        stages.append(Malformed(s, measures))
    if s.quality_issue_rate > 0:
        stages.append(Quality(s, measures))
    if s.sources > 1:
        stages.append(Sources(s, measures))
    if s.outage_rate > 0:
        stages.append(Outages(s, key, held))
    table = isinstance(schema, ChangeSchema)  # a table's changes
    stages.append(DropsAndDuplicates(s, s.cdc_drop_rate if table else s.drop_rate))
    if s.late_rate > 0 or s.late_keep_key_order:
        stages.append(Late(s, held))
    if isinstance(schema, ChangeSchema):
        if s.cdc_reorder_rate > 0 or s.cdc_late_delete_rate > 0:
            stages.append(ChangeDelays(s, held))
        if s.cdc_schema_change_at is not None:
            stages.append(AddedColumn(s, schema))
        if s.cdc_replay_rate > 0:
            stages.append(Replays(s, key))
    return stages
