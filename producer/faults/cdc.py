"""Faults of change data capture, on a table's change channels (``producer.cdc``), each with
its ground truth:

    cdc_replay       a connector restart (per channel and hour, with ``cdc_replay_rate``, at
                     a uniform moment): the changes of the ``cdc_replay_s`` before it are
                     sent again right after it, as a connector that lost its offsets does
                     (same message_id, is_duplicate true, counted as duplicates)
    cdc_reorder      an update held back up to ``cdc_reorder_max_s``: a later change of its
                     key may overtake it, and its ``seq`` then goes back
    cdc_late_delete  a delete held back up to ``cdc_late_delete_max_s``: its key may be
                     created again before the delete arrives
    cdc_schema_change
                     from ``cdc_schema_change_at`` on, every row a change writes has one more
                     column, ``cdc_added_column`` (an integer from the row's key); a
                     ``before`` has it when the key's last row had it (the ground truth:
                     the first change that carries it)

They run after the generic stages (late records included), so the order they make is the
order sinks see.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from producer import rng
from producer.cdc import DELETE, UPDATE, ChangeSchema
from producer.faults.base import HOUR_MS, Held, Step, Truth
from producer.records import RecordBatch
from producer.settings import FaultSettings

_RESTART_SALT = rng.text_key("faults", "cdc-restart")
_CHOICE_DRAW = 50
_DELAY_DRAW = 51


def _place(batch: RecordBatch, moved: RecordBatch, at_ms: np.ndarray) -> RecordBatch:
    """``moved`` put into ``batch`` where its times (``at_ms``) fall: after every record of
    the batch that is not later (by the running maximum of the batch's times)."""
    if not len(moved):
        return batch
    if not len(batch):
        return moved.take(np.argsort(at_ms, kind="stable"))
    reach = np.maximum.accumulate(batch.time_ms)
    where = np.searchsorted(reach, at_ms, side="right")
    n = len(batch) + len(moved)
    slot = np.concatenate([np.arange(len(batch)) * 2, where * 2 - 1])  # a moved one sits
    order = np.argsort(slot, kind="stable")  # before the record at its position
    both = RecordBatch.concat([batch, moved])
    assert order.size == n
    return both.take(order)


class ChangeDelays:
    """Updates reordered and deletes made late, within their bounds (see the module)."""

    order = 82
    kinds = ("cdc_reorder", "cdc_late_delete")

    def __init__(self, s: FaultSettings, held: Held) -> None:
        self.s, self.held = s, held

    def apply(self, batch: RecordBatch, step: Step) -> RecordBatch:
        s = self.s
        if not len(batch):
            return batch
        op = batch.columns["op"]
        u = rng.uniforms(batch.key, (_CHOICE_DRAW, _DELAY_DRAW))
        fresh = ~batch.is_duplicate
        reorder = fresh & (op == UPDATE) & (u[:, 0] < s.cdc_reorder_rate)
        late = fresh & (op == DELETE) & (u[:, 0] < s.cdc_late_delete_rate)
        chosen = reorder | late
        if not chosen.any():
            return batch
        bound = np.where(reorder, s.cdc_reorder_max_s, s.cdc_late_delete_max_s) * 1000
        delay = np.maximum(1, (u[:, 1] * bound).astype(np.int64))
        for kind, mask in (("cdc_reorder", reorder), ("cdc_late_delete", late)):
            hit = np.flatnonzero(mask)
            if hit.size:
                step.truth.append(Truth(kind, batch.take(hit), {"delay_ms": delay[hit]}))
        release = batch.time_ms + delay
        hit = np.flatnonzero(chosen)
        wait = release[hit] >= step.t1
        self.held.hold(batch.take(hit[wait]), release[hit[wait]])
        now = hit[~wait]
        rest = batch.take(np.flatnonzero(~chosen))
        return _place(rest, batch.take(now), release[now])


class Replays:
    """Connector restarts that send the last ``cdc_replay_s`` of changes again."""

    order = 85
    kinds = ("cdc_replay",)

    def __init__(self, s: FaultSettings, key: int) -> None:
        self.rate, self.span = s.cdc_replay_rate, round(s.cdc_replay_s * 1000)
        self.key = int(rng.combine(key, _RESTART_SALT)[0])
        self.recent: RecordBatch | None = None  # what went out in the last span
        self.last_ms: int | None = None  # the latest time seen: restarts after it are ahead

    def _restarts(self, after: int, upto: int) -> list[int]:
        """Restart moments in (after, upto]."""
        hours = np.arange(max(after, 0) // HOUR_MS, upto // HOUR_MS + 1, dtype=np.int64)
        u = rng.uniform_block(rng.combine(self.key, hours), 2)
        moment = hours * HOUR_MS + (u[:, 1] * HOUR_MS).astype(np.int64)
        hit = (u[:, 0] < self.rate) & (moment > after) & (moment <= upto)
        found: list[int] = moment[hit].tolist()
        return found

    def apply(self, batch: RecordBatch, step: Step) -> RecordBatch:
        if not len(batch):
            return batch
        top = int(batch.time_ms.max())
        first = int(batch.time_ms.min()) - 1 if self.last_ms is None else self.last_ms
        for moment in self._restarts(first, top) if top > first else []:
            # What went out before the restart: the recent past, and this batch up to it.
            upto = int(np.searchsorted(np.maximum.accumulate(batch.time_ms), moment, "right"))
            before = batch.take(slice(0, upto))
            sent = before if self.recent is None else RecordBatch.concat([self.recent, before])
            again = np.flatnonzero((sent.time_ms >= moment - self.span)
                                   & (sent.time_ms < moment) & ~sent.is_duplicate)  # fmt: skip
            if not again.size:
                continue
            copies = sent.take(again)
            copies.is_duplicate[:] = True
            step.truth.append(Truth("cdc_replay", copies, {"restart_ms": moment}))
            step.duplicated += len(copies)
            batch = RecordBatch.concat([before, copies, batch.take(slice(upto, None))])
        self.last_ms = max(top, first)
        seen = batch if self.recent is None else RecordBatch.concat([self.recent, batch])
        keep = np.flatnonzero((seen.time_ms >= self.last_ms - self.span) & ~seen.is_duplicate)
        self.recent = seen.take(keep) if keep.size else None
        return batch


class AddedColumn:
    """A table's schema change: one more column from a moment on (see the module)."""

    order = 84
    kinds = ("cdc_schema_change",)

    def __init__(self, s: FaultSettings, schema: ChangeSchema) -> None:
        assert s.cdc_schema_change_at is not None
        self.at = round(s.cdc_schema_change_at.timestamp() * 1000)
        self.name, self.key = s.cdc_added_column, schema.table_spec.key
        schema.may_add(self.name, pa.int64())
        self.widened: set[tuple[Any, ...]] = set()  # keys whose last row has the column
        self.announced = False

    def apply(self, batch: RecordBatch, step: Step) -> RecordBatch:
        late = np.flatnonzero(batch.time_ms >= self.at)
        if not late.size:
            return batch
        befores, afters = batch.columns["before"].copy(), batch.columns["after"].copy()
        for i in late.tolist():
            after, before = afters[i], befores[i]
            pk = tuple((after or before)[k] for k in self.key)
            value = int(rng.text_key("cdc-added", *pk) % 1000)
            if before is not None and pk in self.widened:
                befores[i] = {**before, self.name: value}
            if after is None:
                self.widened.discard(pk)
            else:
                afters[i] = {**after, self.name: value}
                self.widened.add(pk)
        out = RecordBatch(batch.stream, batch.entity, batch.time_ms, batch.key,
                          {**batch.columns, "before": befores, "after": afters},
                          batch.is_duplicate, batch.skew_ms, batch.marks)  # fmt: skip
        if not self.announced:
            self.announced = True
            first = late[np.argmin(batch.time_ms[late])]
            step.truth.append(Truth("cdc_schema_change", out.take(np.array([first])),
                                    {"column": self.name}))  # fmt: skip
        return out
