"""The sink contract.

A sink is a small class around one acknowledged call. It does not batch, pace or retry: the
engine does (``producer.delivery``). Lifecycle: ``open`` once (connect, create what is missing
if configured, raise ``ConfigError`` for a place that cannot work, such as an unwritable
folder), then ``send`` any number of times, possibly concurrently for different streams, then
``aclose`` (idempotent), which flushes what ``send`` acknowledged but buffered.

A sink whose send of a few records is a local write may also have ``send_now(batch,
schema) -> bool``: the same send, done at once on the loop, or False (nothing done) when the
batch is too large for that. The engine uses it for a live tick's records when nothing is
queued or being sent on the route, and goes through the queue otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import orjson
import pyarrow as pa

from producer.records import RecordBatch, Schema


@dataclass(frozen=True, slots=True)
class SinkLimits:
    """What one ``send`` may carry. The engine's batcher never exceeds these."""

    max_records: int
    max_bytes: int | None = None
    max_in_flight: int = 1  # sends at once (lanes by key, each key's order kept)
    # Whether fuller sends are worth waiting ``linger_s`` for: yes for a network call, no for
    # a local write (a live tick's records go out at once, without a timer of their own).
    linger: bool = True
    # A longer wait of the sink's own, when a fuller send is worth more than its latency (a
    # Parquet row group: the file is unreadable until it rolls anyway). None: ``linger_s``.
    linger_s: float | None = None


class Sink(Protocol):
    name: str
    limits: SinkLimits

    async def open(self) -> None:
        """Connect and check the destination. Raises ``ConfigError`` if it cannot work."""
        ...

    async def send(self, batch: RecordBatch, schema: Schema) -> None:
        """Deliver the batch; returns once it is acknowledged.

        Raises ``RetryableError``, ``PartialFailure`` or ``FatalError`` (``sinks.errors``).
        """
        ...

    async def check(self) -> str:
        """One line on whether the destination is reachable; raises ``SinkError`` if not."""
        ...

    async def aclose(self) -> None:
        """Flush and release; idempotent."""
        ...


async def finish_in_thread(call: Callable[[], None]) -> bool:
    """Run a blocking write in a thread, to its end even if the send is cancelled (a thread
    cannot be stopped, and what it wrote reached the destination). Returns True if the send
    was cancelled meanwhile: the caller then reports what was written (``Interrupted``),
    whether or not the write itself failed; otherwise the write's own error is raised."""
    future = asyncio.ensure_future(asyncio.to_thread(call))
    try:
        await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await future
        return True
    return False


def flat(table: pa.Table) -> pa.Table:
    """A table CSV (and COPY) can carry: struct fields as columns of their own
    (``metadata.in_weather_event``), lists (a transaction's products) as JSON text in their
    cell (the field says so in its metadata: ``json``), dictionary columns decoded."""
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    for i, f in enumerate(table.schema):
        if pa.types.is_list(f.type) or pa.types.is_large_list(f.type):
            text = [None if v is None else orjson.dumps(v).decode() for v in table[i].to_pylist()]
            field = pa.field(f.name, pa.string(), metadata={b"json": b"list"})
            table = table.set_column(i, field, pa.array(text, pa.string()))
    for i, f in enumerate(table.schema):
        if pa.types.is_dictionary(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(f.type.value_type))
    return table
