"""Fault injection between a stream's generator and its sinks.

Decisions are pure functions of each record's key, so the same seed drops and duplicates the
same records in every run and every shard, and a run with faults off is the clean stream.
A duplicate follows its original immediately, with the same ``message_id`` and
``is_duplicate: true``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from producer import rng
from producer.records import RecordBatch
from producer.settings import FaultSettings

_DROP_DRAW = 40
_DUPLICATE_DRAW = 41


@dataclass(frozen=True, slots=True)
class FaultResult:
    batch: RecordBatch  # what goes on to the sinks
    dropped: RecordBatch  # originals that were dropped
    duplicated: RecordBatch  # the extra copies that were added


class Faults:
    def __init__(self, settings: FaultSettings) -> None:
        self.drop_rate = settings.drop_rate
        self.duplicate_rate = settings.duplicate_rate

    @property
    def active(self) -> bool:
        return self.drop_rate > 0 or self.duplicate_rate > 0

    def apply(self, batch: RecordBatch) -> FaultResult:
        drop = rng.uniform(batch.key, _DROP_DRAW) < self.drop_rate
        dup = ~drop & (rng.uniform(batch.key, _DUPLICATE_DRAW) < self.duplicate_rate)
        if not drop.any() and not dup.any():
            empty = batch.take(slice(0, 0))
            return FaultResult(batch, empty, empty)
        kept = np.flatnonzero(~drop)
        # Each kept record once, a duplicated one twice in a row: repeat counts 1 or 2.
        order = np.repeat(kept, 1 + dup[kept].astype(np.int64))
        out = batch.take(order)
        is_copy = np.zeros(order.size, dtype=np.bool_)
        is_copy[1:] = order[1:] == order[:-1]
        out.is_duplicate[is_copy] = True
        copies = out.take(np.flatnonzero(is_copy))
        return FaultResult(out, batch.take(np.flatnonzero(drop)), copies)
