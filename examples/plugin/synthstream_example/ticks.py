"""Stock ticks: each symbol's price is a geometric random walk, one tick per interval.

A stream kind of the sensor shape: its settings model names the kind and makes a generator;
synthstream supplies the rest (the rate model, sharding, faults, every sink, backfill equal
to live). Everything random derives from the record's key, so the same seed gives the same
ticks, whatever the window sizes the engine asks for.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from producer.api import (
    I64,
    U64,
    Due,
    Generator,
    Kinds,
    RateSettings,
    RecordBatch,
    Schema,
    SensorStreamSettings,
    rank_within_entity,
    rng,
    timestamp_array,
    uuid_array,
)


class TicksSettings(SensorStreamSettings):
    """Stock ticks: a geometric random walk of each symbol's price."""

    KIND: ClassVar[str] = "ticks"
    DESCRIPTION: ClassVar[str] = "stock ticks: a random walk of each symbol's price (a plugin)"

    symbols: int = Field(50, ge=1, le=100_000, description="Number of symbols.")
    volatility: float = Field(0.001, gt=0, le=0.1, description="Log-price step per tick, sd.")
    rate: RateSettings = RateSettings(interval_s=1.0)

    @property
    def entities(self) -> int:
        return self.symbols

    def generator(self, entity_ids: I64, keys: U64) -> Generator:
        return TicksGenerator(self, entity_ids, keys)


class TicksSchema:
    stream = "ticks"
    partition_key = "symbol"
    time_field = "timestamp"
    optional_fields: tuple[str, ...] = ()
    kinds: Kinds | None = None

    def __init__(self) -> None:
        self.measures = {"price": (1.0, 0.0, 1e9)}

    def rows(self, batch: RecordBatch) -> list[dict[str, Any]]:
        return [
            {"symbol": f"SYM{e:05d}", "price": round(p, 4), "timestamp": ts,
             "message_id": mid, "is_duplicate": dup}
            for e, p, ts, mid, dup in zip(
                batch.entity.tolist(), batch.columns["price"].tolist(), batch.iso_times(),
                batch.message_ids().astype("U36").tolist(), batch.is_duplicate.tolist(),
                strict=True,
            )
        ]  # fmt: skip

    def table(self, batch: RecordBatch) -> pa.Table:
        return pa.table({
            "symbol": pa.array([f"SYM{e:05d}" for e in batch.entity.tolist()]),
            "price": pa.array(batch.columns["price"], from_pandas=True),
            "timestamp": timestamp_array(batch.reported_ms),
            "message_id": uuid_array(batch.key),
            "is_duplicate": pa.array(batch.is_duplicate),
        })  # fmt: skip


class TicksGenerator:
    stream = "ticks"

    def __init__(self, settings: TicksSettings, entity_ids: I64, keys: U64) -> None:
        self.settings = settings
        self.entity_ids, self.keys = entity_ids, keys
        self.schema: Schema = TicksSchema()
        self.steps = np.zeros(entity_ids.size, dtype=np.int64)
        # Each symbol starts between 10 and 500, drawn from its own key.
        self.log_price = np.log(10 + 490 * rng.uniform(keys, 1))

    def generate(self, due: Due) -> RecordBatch:
        local, time_ms = due.entity, due.time_ms
        step = self.steps[local] + rank_within_entity(local)
        keys = rng.combine(rng.combine(self.keys[local], time_ms), step)
        u1, u2 = rng.uniform(keys, 2), rng.uniform(keys, 3)
        z = np.sqrt(-2 * np.log(np.maximum(u1, 1e-300))) * np.cos(2 * np.pi * u2)
        moves = z * self.settings.volatility
        # Per symbol, in time order: the walk so far plus this batch's steps up to each tick.
        order = np.lexsort((time_ms, local))
        ent, move = local[order], moves[order]
        total = np.cumsum(move)
        first = np.ones(ent.size, dtype=np.bool_)
        first[1:] = ent[1:] != ent[:-1]
        start = np.maximum.accumulate(np.where(first, np.arange(ent.size), 0))
        within = total - total[start] + move[start]
        log_price = np.empty(ent.size)
        log_price[order] = self.log_price[ent] + within
        last = np.flatnonzero(np.append(first[1:], True))  # each symbol's last tick
        self.log_price[ent[last]] = log_price[order][last]
        np.add.at(self.steps, local, 1)
        return RecordBatch("ticks", self.entity_ids[local], time_ms, keys,
                           {"price": np.exp(log_price)})  # fmt: skip
