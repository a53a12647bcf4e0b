"""Generators: one module per domain, each pure (no I/O, no clock, no global randomness)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from producer.rates import Due, RateModel
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


class Source(Protocol):
    """What the engine runs for one stream: records of one or more channels per window.

    A channel is one record type with its own schema, faults, metrics label and sink
    destination (a Kafka topic, a Kinesis stream, an HTTP path): a sensor stream has one,
    named after the stream; e-commerce has five (transactions, user events, ...). ``advance``
    returns the records with event times in ``[t0, t1)``, each channel's sorted by time, at
    most ``limit`` in all. Windows that partition time give records that partition the
    output, whatever the window sizes, so live runs, backfills and shards agree.
    """

    stream: str
    channels: dict[str, Schema]

    def advance(self, t0: int, t1: int, limit: int | None) -> dict[str, RecordBatch]: ...

    def next_due(self, t: int) -> int:
        """A lower bound of the first event time ``>= t`` of any channel."""
        ...

    def target_rates(self, t: int) -> dict[str, float]:
        """Intended records/s per channel at time ``t`` for this process."""
        ...

    def entities(self) -> dict[str, int]:
        """Entities behind each channel in this process (devices, users, products)."""
        ...

    def kind_counts(self) -> dict[tuple[str, str], int]:
        """Generated records by (channel, kind) so far, for domain statistics."""
        ...


class SingleChannel:
    """A ``Generator`` and its rate model as a one-channel ``Source``."""

    def __init__(self, generator: Generator, rate: RateModel) -> None:
        self.stream = generator.stream
        self.generator = generator
        self.rate = rate
        self.channels = {generator.stream: generator.schema}

    def advance(self, t0: int, t1: int, limit: int | None) -> dict[str, RecordBatch]:
        due = self.rate.due(t0, t1)
        if limit is not None and len(due) > limit:
            due = due.head(limit)
        return {self.stream: self.generator.generate(due)} if len(due) else {}

    def next_due(self, t: int) -> int:
        return self.rate.next_due(t)

    def target_rates(self, t: int) -> dict[str, float]:
        return {self.stream: self.rate.target_rate(t)}

    def entities(self) -> dict[str, int]:
        return {self.stream: int(self.generator.entity_ids.size)}

    def kind_counts(self) -> dict[tuple[str, str], int]:
        return {}


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
