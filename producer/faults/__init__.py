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

from collections.abc import Sequence

import numpy as np

from producer.faults.base import FaultOutput, Held, Stage, Step, Truth
from producer.faults.stages import built_in_stages
from producer.records import RecordBatch, Schema
from producer.settings import FaultSettings

__all__ = ["FaultOutput", "Faults", "Stage", "Step", "Truth"]


class Faults:
    """A channel's fault pipeline: its stages in order, and the records they hold."""

    def __init__(
        self,
        settings: FaultSettings,
        key: int,
        schema: Schema | None = None,
        stages: Sequence[Stage] = (),
    ) -> None:
        self.s = settings
        self.key = key
        self.holding = Held()
        chosen = [*built_in_stages(settings, key, schema, self.holding), *stages]
        self.stages = sorted(chosen, key=lambda stage: stage.order)  # stable: ties keep order

    @property
    def held(self) -> RecordBatch | None:
        return self.holding.batch

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every ground-truth kind these stages may write."""
        return tuple(kind for stage in self.stages for kind in stage.kinds)

    def apply(self, batch: RecordBatch | None, t1: int) -> FaultOutput:
        """Inject faults into a new batch (or none) and release what is due before ``t1``."""
        if batch is None or not len(batch):
            released = self.holding.release(t1)
            return FaultOutput(released if released is not None else _nothing(batch))
        step = Step(t1)
        generated = len(batch)
        for stage in self.stages:
            batch = stage.apply(batch, step)
        released = self.holding.release(t1)
        if released is not None:  # a backlog goes out before what is new
            batch = RecordBatch.concat([released, batch]) if len(batch) else released
        total = generated + step.added + step.duplicated
        lost = sum(len(b) for b in step.lost)
        return FaultOutput(
            batch, generated=total, accepted=total - lost, dropped=lost,
            duplicated=step.duplicated, truth=step.truth,
        )  # fmt: skip

    def flush(self) -> RecordBatch | None:
        """Everything still held, now (end of a run: its event times have passed)."""
        return self.holding.release(2**62)


def _nothing(batch: RecordBatch | None) -> RecordBatch:
    empty = np.empty(0, dtype=np.int64)
    if batch is not None:
        return batch.take(empty)
    return RecordBatch("", empty, empty, np.empty(0, dtype=np.uint64), {})
