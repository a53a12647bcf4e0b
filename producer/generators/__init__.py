"""Generators: one module per domain, each pure (no I/O, no clock, no global randomness)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from producer import rng
from producer.rates import Due, FixedInterval, Pace, RateModel, TotalRate
from producer.records import RecordBatch, Schema
from producer.rng import F64, I64, U64
from producer.settings import RateSettings, Shard


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


class SingleChannel:
    """A ``Generator`` and its rate model as a one-channel ``Source``."""

    def __init__(self, generator: Generator, rate: RateModel) -> None:
        self.stream = generator.stream
        self.generator = generator
        self.rate = rate
        self.channels = {generator.stream: generator.schema}

    def advance(self, t0: int, t1: int, limit: int | None) -> dict[str, RecordBatch]:
        due = self.rate.due(t0, t1)
        if not len(due):
            return {}
        if limit is None or len(due) <= limit:
            return {self.stream: self.generator.generate(due)}
        # The first ``limit`` records written: as many due, and, when some of them write
        # nothing (a silent state, a stay under changes_only), the rest of the window too, so
        # that what comes back is what a run without a limit writes first.
        batch = self.generator.generate(due.head(limit))
        if len(batch) < limit:
            batch = RecordBatch.concat([batch, self.generator.generate(due.tail(limit))])
        return {self.stream: batch.take(slice(0, limit)) if len(batch) > limit else batch}

    def next_due(self, t: int) -> int:
        return self.rate.next_due(t)

    def target_rates(self, t: int) -> dict[str, float]:
        return {self.stream: self.rate.target_rate(t)}

    def entities(self) -> dict[str, int]:
        return {self.stream: int(self.generator.entity_ids.size)}

    def snapshot(self, t: int) -> dict[str, RecordBatch]:
        """A record of every entity at ``t`` (what a table of them holds then)."""
        n = int(self.generator.entity_ids.size)
        due = Due(np.arange(n, dtype=np.int64), np.full(n, t, dtype=np.int64))
        return {self.stream: self.generator.generate(due)} if n else {}


def earliest(batches: dict[str, RecordBatch], limit: int) -> dict[str, RecordBatch]:
    """The ``limit`` earliest records over all channels (ties: channel order)."""
    names = list(batches)
    times = np.concatenate([batches[n].time_ms for n in names])
    keep = np.zeros(times.size, dtype=np.bool_)
    keep[np.argsort(times, kind="stable")[:limit]] = True
    out = {}
    start = 0
    for name in names:
        size = len(batches[name])
        mine = np.flatnonzero(keep[start : start + size])
        if mine.size:
            out[name] = batches[name].take(mine)
        start += size
    return out


FILL_RECORDS = 2_000  # about what one look-ahead fill makes at high rates


class Lookahead:
    """A ``Source`` whose generator works ahead of emission: one ``advance`` of the inner
    source covers up to ``horizon_ms`` of event time (less at high rates, so that a fill stays
    near ``FILL_RECORDS``), and each tick takes what is due from the records held. Live ticks
    of 20 ms then cost a slice, not a generate call of their own; the records, their event
    times and their order are those of the inner source (windows that partition time give
    records that partition the output), and ``limit`` keeps the earliest records, as a source
    does."""

    def __init__(self, source: Source, horizon_ms: int) -> None:
        self.inner = source
        self.stream = source.stream
        self.channels = source.channels
        self.horizon_ms = horizon_ms  # the most event time one fill covers
        self.reach_ms = horizon_ms  # what the next fill covers (fewer ms at high rates)
        self.held: dict[str, RecordBatch] = {}  # made, from self.start[channel] on not yet taken
        self.start: dict[str, int] = {}
        self.ahead: int | None = None  # the inner source has made everything before this

    def advance(self, t0: int, t1: int, limit: int | None) -> dict[str, RecordBatch]:
        if self.ahead is None:
            self.ahead = t0
        if t1 > self.ahead:
            until = max(t1, t0 + self.reach_ms)
            made = self.inner.advance(self.ahead, until, None)
            count = sum(len(b) for b in made.values())
            # Keep each fill near FILL_RECORDS: at 20,000 records/s a second's worth would hold
            # the loop for a tick or two once a second (the records are the same either way).
            per_ms = count / max(until - self.ahead, 1)
            self.reach_ms = int(min(self.horizon_ms, max(1.0, FILL_RECORDS / max(per_ms, 1e-9))))
            self.ahead = until
            for channel, batch in made.items():
                if channel in self.held:
                    old, start = self.held[channel], self.start[channel]
                    batch = RecordBatch.concat([old.take(slice(start, None)), batch])
                self.held[channel], self.start[channel] = batch, 0
        out: dict[str, RecordBatch] = {}
        for channel in self.channels:
            if channel not in self.held:
                continue
            batch, start = self.held[channel], self.start[channel]
            cut = int(np.searchsorted(batch.time_ms, t1, side="left"))
            if cut > start:
                whole = start == 0 and cut == len(batch)
                out[channel] = batch if whole else batch.take(slice(start, cut))
            if cut == len(batch):
                del self.held[channel], self.start[channel]
            else:
                self.start[channel] = cut
        if limit is not None and sum(len(b) for b in out.values()) > limit:
            out = earliest(out, limit)
        return out

    def next_due(self, t: int) -> int:
        firsts = [int(b.time_ms[self.start[ch]]) for ch, b in self.held.items()]
        if firsts:
            return max(t, min(firsts))
        return self.inner.next_due(t if self.ahead is None else max(t, self.ahead))

    def target_rates(self, t: int) -> dict[str, float]:
        return self.inner.target_rates(t)

    def entities(self) -> dict[str, int]:
        return self.inner.entities()


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


def levels(rank: I64) -> list[I64]:
    """Record indices grouped by rank (``rank_within_entity``): level r holds every
    entity's r-th record, so per-entity state can advance a level at a time, all entities at
    once."""
    if rank.size == 0:
        return []
    if int(rank.max()) == 0:
        return [np.arange(rank.size, dtype=np.int64)]
    order = np.argsort(rank, kind="stable")
    counts = np.bincount(rank)
    return np.split(order, np.cumsum(counts)[:-1])


# --------------------------------------------------------------------------- shared helpers
def weighted_choice(u: F64, weights: npt.ArrayLike) -> I64:
    """Index of each uniform ``u`` in the cumulative ``weights`` (not normalised)."""
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
    picked: I64 = np.searchsorted(cdf / cdf[-1], u, side="right").astype(np.int64)
    return np.minimum(picked, cdf.size - 1)


def weighted_choice_rows(u: F64, weights: F64) -> I64:
    """``weighted_choice`` with one row of weights per uniform."""
    cdf = np.cumsum(weights, axis=1)
    picked = (u[:, None] * cdf[:, -1:] >= cdf).sum(axis=1)
    out: I64 = np.minimum(picked, weights.shape[1] - 1).astype(np.int64)
    return out


POISSON_EXACT = 60.0  # above this mean a rounded normal (its error is under 1 % there)


def poisson(u1: F64, u2: F64, mean: F64 | float, most: int | None = None) -> F64:
    """Poisson counts from uniforms: the inverse CDF at ``u1`` for means up to
    ``POISSON_EXACT``, a rounded normal (from ``u1``, ``u2``) above; a negative mean is 0.
    With ``most``, counts stop there (the inverse CDF alone: small means, bounded counts)."""
    m = np.broadcast_to(np.maximum(np.asarray(mean, dtype=np.float64), 0.0), u1.shape)
    out = np.zeros(u1.shape)
    small = m <= POISSON_EXACT if most is None else np.ones(u1.shape, dtype=np.bool_)
    if small.any():
        lam, u = m[small], u1[small]
        pmf = np.exp(-lam)
        cdf, k = pmf.copy(), np.zeros(lam.shape)
        for i in range(1, most + 1 if most is not None else int(POISSON_EXACT * 3) + 30):
            more = u > cdf
            if not more.any():
                break
            k += more
            pmf = pmf * lam / i
            cdf = cdf + pmf
        out[small] = k
    if not small.all():
        lam = m[~small]
        z = rng.box_muller(u1[~small], u2[~small])
        out[~small] = np.maximum(0.0, np.round(lam + np.sqrt(lam) * z))
    return out


def lognormal(keys: U64, index: int, median: F64 | float, sigma: float) -> F64:
    """Log-normal draws with the given median, from draws ``index`` and ``index + 1``."""
    z = rng.box_muller(rng.uniform(keys, index), rng.uniform(keys, index + 1))
    out: F64 = median * np.exp(sigma * z)
    return out


class Pending:
    """Rows waiting for their event time (a session's later clicks, an incident's later
    stages), sorted by time; ties keep the order they were added in, so the output does
    not depend on how time is cut into windows."""

    def __init__(self) -> None:
        self.cols: dict[str, npt.NDArray[Any]] = {}

    def __len__(self) -> int:
        return 0 if not self.cols else int(self.cols["time_ms"].size)

    def add(self, cols: dict[str, npt.NDArray[Any]]) -> None:
        if not cols["time_ms"].size:
            return
        if self.cols:
            cols = {k: np.concatenate([self.cols[k], v]) for k, v in cols.items()}
        order = np.argsort(cols["time_ms"], kind="stable")
        self.cols = {k: v[order] for k, v in cols.items()}

    def release(self, t1: int) -> dict[str, npt.NDArray[Any]] | None:
        """The rows due before ``t1``, removed."""
        if not self.cols:
            return None
        cut = int(np.searchsorted(self.cols["time_ms"], t1, "left"))
        if cut == 0:
            return None
        out = {k: v[:cut] for k, v in self.cols.items()}
        self.cols = {k: v[cut:] for k, v in self.cols.items()} if cut < len(self) else {}
        return out

    def first(self) -> int:
        return int(self.cols["time_ms"][0]) if self.cols else 2**62

    def keep(self, mask: npt.NDArray[np.bool_]) -> None:
        if self.cols:
            self.cols = {k: v[mask] for k, v in self.cols.items()} if mask.any() else {}


def shard_entities(stream: str, count: int, shard: Shard) -> I64:
    """Global ids of the entities of ``shard``: by a hash of (stream, id), not of the seed,
    so a replica keeps its entities whatever the seed."""
    ids = np.arange(count, dtype=np.int64)
    if shard.count == 1:
        return ids
    owner = rng.combine(rng.text_key("shard", stream), ids) % np.uint64(shard.count)
    kept: I64 = ids[owner == np.uint64(shard.index)]
    return kept


def entity_keys(seed: int, stream: str, ids: I64) -> U64:
    return rng.combine(rng.text_key(seed, stream), ids)


def sensor_source(
    name: str, total: int, rate_settings: RateSettings, seed: int, shard: Shard,
    make: Callable[[I64, U64], Generator], pace: Pace | None = None,
) -> SingleChannel:  # fmt: skip
    """The source of a stream of ``total`` entities on a rate model: this shard's entities,
    their keys, the kind's generator (``make``), and a fixed interval or a total rate."""
    ids = shard_entities(name, total, shard)
    keys = entity_keys(seed, name, ids)
    generator = make(ids, keys)
    rate: RateModel
    if rate_settings.total_per_s is not None:
        local = np.full(total, -1, dtype=np.int64)
        local[ids] = np.arange(ids.size, dtype=np.int64)
        rate = TotalRate(
            rng.text_key(seed, name, "arrivals"),
            total,
            local,
            rate_settings,
            ids.size / total,
            pace,
        )
    else:
        offset = float(rng.uniform(rng.combine(rng.text_key(seed, name), 0), 7)[0])
        rate = FixedInterval(
            ids, keys, round(rate_settings.interval_s * 1000), round(rate_settings.jitter_s * 1000),
            offset, rate_settings.aligned, pace,
        )  # fmt: skip
    return SingleChannel(generator, rate)
