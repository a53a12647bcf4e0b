"""What every fault stage works with: ground truth, the step a batch takes through the
stages, the stage contract, held records, and the draws stages share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from producer import rng
from producer.records import RecordBatch
from producer.rng import F64, I64

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


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


@dataclass
class Step:
    """One new batch on its way through the stages: what they did to it so far."""

    t1: int  # the tick's end: what is due before it goes now
    truth: list[Truth] = field(default_factory=list)
    lost: list[RecordBatch] = field(default_factory=list)  # left the stream for good
    added: int = 0  # records that entered the stream at a stage (a second source's copy)
    duplicated: int = 0  # copies made by the duplicate stage (counted apart)


class Stage(Protocol):
    """One kind of fault: a small class made from its settings when it is on.

    ``order`` places it in the pipeline (domains put their own stages between the built-in
    ones); ``kinds`` are the ground-truth kinds it may write, which are also the
    ``kind`` labels it counts under ``synthstream_faults_injected_total``."""

    @property
    def order(self) -> int: ...

    @property
    def kinds(self) -> tuple[str, ...]: ...

    def apply(self, batch: RecordBatch, step: Step) -> RecordBatch: ...


class Held:
    """Records held back by a stage (late, replayed after an outage) until their release."""

    def __init__(self) -> None:
        self.batch: RecordBatch | None = None
        self.release_ms = np.empty(0, dtype=np.int64)

    def hold(self, records: RecordBatch, release: I64) -> None:
        if not len(records):
            return
        if self.batch is None:
            self.batch, self.release_ms = records, release
        else:
            self.batch = RecordBatch.concat([self.batch, records])
            self.release_ms = np.concatenate([self.release_ms, release])

    def release(self, t1: int) -> RecordBatch | None:
        """What is due before ``t1``, in order of release (then of event time)."""
        if self.batch is None:
            return None
        due = self.release_ms < t1
        if not due.any():
            return None
        idx = np.flatnonzero(due)
        idx = idx[np.lexsort((self.batch.time_ms[idx], self.release_ms[idx]))]
        out = self.batch.take(idx)
        rest = np.flatnonzero(~due)
        if rest.size:
            self.batch, self.release_ms = self.batch.take(rest), self.release_ms[rest]
        else:
            self.batch, self.release_ms = None, np.empty(0, dtype=np.int64)
        return out


def episodes(
    key: int, salt: int, entity: I64, time_ms: I64, rate: float, slot_ms: int = HOUR_MS
) -> tuple[npt.NDArray[np.bool_], I64, F64]:
    """The episode (if any) covering each record: per entity and slot (an hour, or a day),
    with probability ``rate``, starting at a uniform time in the slot. Looks at this slot and
    the last (an episode lasts at most one slot). Returns (found, start, four uniforms)."""
    found = np.zeros(entity.size, dtype=np.bool_)
    start = np.zeros(entity.size, dtype=np.int64)
    draws = np.zeros((entity.size, 4))
    for back in (1, 0):  # this slot's episode wins over the last one's
        slot = time_ms // slot_ms - back
        keys = rng.combine(rng.combine(rng.combine(key, salt), entity), slot)
        u = rng.uniform_block(keys, 6)
        begins = slot * slot_ms + (u[:, 1] * slot_ms).astype(np.int64)
        hit = (u[:, 0] < rate) & (time_ms >= begins)
        found = np.where(hit, True, found)
        start = np.where(hit, begins, start)
        draws = np.where(hit[:, None], u[:, 2:6], draws)
    return found, start, draws


def without(entry: Truth, keys: np.ndarray) -> Truth:
    keep = np.flatnonzero(~np.isin(entry.records.key, keys))
    if keep.size == len(entry.records):
        return entry
    params = {k: v[keep] if isinstance(v, np.ndarray) else v for k, v in entry.params.items()}
    return Truth(entry.kind, entry.records.take(keep), params)


def marked(
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
