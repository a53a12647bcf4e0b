"""Generators: one module per domain, each pure (no I/O, no clock, no global randomness)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from producer.rates import Due
from producer.records import RecordBatch, Schema
from producer.rng import I64, U64


class Generator(Protocol):
    """Per-entity state of one stream, advanced by ``generate``.

    ``entity_ids`` are the global ids of this process's entities (its shard), ``keys`` their
    random keys. ``generate`` takes records due at given times for local entity indices (sorted
    by time; an entity may appear several times) and returns them as one batch, advancing each
    entity's state in time order. It never blocks and never reads a clock.
    """

    stream: str
    schema: Schema
    entity_ids: I64
    keys: U64

    def generate(self, due: Due) -> RecordBatch: ...


def rank_within_entity(local: I64) -> I64:
    """For each record, how many earlier records of the same entity are in the batch."""
    n = local.size
    if n == 0:
        return np.empty(0, dtype=np.int64)
    order = np.argsort(local, kind="stable")
    ordered = local[order]
    first = np.ones(n, dtype=np.bool_)
    first[1:] = ordered[1:] != ordered[:-1]
    positions = np.arange(n, dtype=np.int64)
    group_start = np.maximum.accumulate(np.where(first, positions, 0))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = positions - group_start
    return rank
