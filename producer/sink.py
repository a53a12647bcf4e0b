"""The sink contract: what the engine may call on a sink, declared whole, and what a sink's
``send`` may raise.

A sink is a small class around one acknowledged call. It does not batch, pace or retry: the
engine does (``producer.delivery``). Lifecycle: ``open`` once (connect, create what is missing
if configured, raise ``ConfigError`` for a place that cannot work, such as an unwritable
folder), then any number of ``encode`` and ``send`` (possibly concurrently for different
channels), then ``aclose`` (idempotent), which flushes what ``send`` acknowledged but buffered.

The engine calls nothing else, and probes for nothing: what a sink can do beyond that is
declared in its ``limits`` (``SinkLimits``):

- ``encode(batch, schema) -> Payload`` is pure: the records as the sink will send them
  (entries and each one's size, where a call is bounded in bytes: Kinesis' 5 MiB). The
  engine forms sends of at most ``max_records`` and ``max_bytes`` from it, and encodes a
  live tick's records ahead, while the tick is made, for a sink that takes them at once.
- ``send(payload)`` returns once the destination acknowledged it, or raises one of the
  errors below.
- ``at_once_records`` (a capability): a send of at most this many records is a local write
  the engine may make at once on the loop, with ``send_now(payload)`` (the same send,
  synchronous), when nothing is queued or being sent on the route; 0: never.
- ``linger`` and ``linger_s``: whether a fuller send is worth waiting for, and how long.

``BaseSink`` gives the defaults (an ``encode`` that carries the batch as it is, no at-once
write, nothing to report); a sink implements ``send`` and ``check``.

What ``send`` may raise, and what the engine does with it:
What a sink's ``send`` may raise, and what the engine does with it.

    SinkError
    ├── RetryableError     the whole batch may succeed if sent again (timeout, 503, outage)
    ├── PartialFailure     some records were accepted; resend only ``failed`` (Kinesis
    │                      entries with an ErrorCode, HTTP 429/5xx for some requests);
    │                      ``rejected`` ones failed for good (a 4xx for one request)
    ├── FatalError         sending again cannot help (401, 400, a record too large):
    │                      the records are counted as failed with ``reason``
    ├── ReaderGone         the consumer closed the destination on purpose (``| head``):
    │                      the run stops generating and ends quietly with status 0
    └── Interrupted        the send was cancelled (the shutdown deadline) part way:
                           ``acknowledged`` positions count as delivered, the rest not

Any other exception from a sink is treated as fatal (and logged with its type), so that a bug
can never turn into an endless retry loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from producer.records import RecordBatch, Schema


class SinkError(Exception):
    """Base of the errors a sink raises; ``reason`` is a short label for metrics. From
    ``check``, ``hint`` says what to do (naming the setting), and ``waitable`` False says that
    waiting for the destination cannot help (credentials, a missing stream)."""

    def __init__(
        self, message: str, reason: str = "error", hint: str | None = None,
        waitable: bool = True,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.reason = reason
        self.hint = hint
        self.waitable = waitable


class RetryableError(SinkError):
    """Sending the same batch again may succeed.

    ``retry_after_s`` is the server's own hint (HTTP ``Retry-After``): the engine waits at
    least that long.
    """

    def __init__(
        self, message: str, reason: str = "error", retry_after_s: float | None = None,
        unknown_outcome: bool = False,
    ):  # fmt: skip
        super().__init__(message, reason)
        self.retry_after_s = retry_after_s
        # Sent, but no answer came (a read timeout): the destination may have it already,
        # so sending again may deliver it twice (counted as redelivered).
        self.unknown_outcome = unknown_outcome


class PartialFailure(RetryableError):
    """Some records were acknowledged; ``failed`` are the batch positions to resend.

    ``rejected`` maps a reason (``http_422``) to positions that failed for good: they are
    counted as failed and not sent again. Every other position was acknowledged.
    """

    def __init__(
        self,
        message: str,
        failed: npt.NDArray[np.int64],
        reason: str = "partial",
        retry_after_s: float | None = None,
        rejected: dict[str, npt.NDArray[np.int64]] | None = None,
    ) -> None:
        super().__init__(message, reason, retry_after_s)
        self.failed = failed
        self.rejected = rejected or {}


class FatalError(SinkError):
    """Sending again cannot help; the batch's records are counted as failed."""


class ReaderGone(SinkError):
    """The reader went away (a closed pipe): it chose to stop, so the run stops too."""


class Interrupted(SinkError):
    """Raised by a send that was cancelled part way, instead of the bare cancellation: the
    batch positions the destination had acknowledged by then. The engine counts them as
    delivered and lets the cancellation go on."""

    def __init__(self, acknowledged: npt.NDArray[np.int64]) -> None:
        super().__init__(f"interrupted after {len(acknowledged)} acknowledged", "interrupted")
        self.acknowledged = acknowledged


@dataclass(frozen=True, slots=True)
class SinkLimits:
    """What one ``send`` may carry, and what the sink can do. The engine's batcher never
    exceeds these."""

    max_records: int
    max_bytes: int | None = None  # per send, as the payload's ``sizes`` count
    max_in_flight: int = 1  # sends at once (lanes by key, each key's order kept)
    # Whether fuller sends are worth waiting ``linger_s`` for: yes for a network call, no for
    # a local write (a live tick's records go out at once, without a timer of their own).
    linger: bool = True
    # A longer wait of the sink's own, when a fuller send is worth more than its latency (a
    # Parquet row group: the file is unreadable until it rolls anyway). None: ``linger_s``.
    linger_s: float | None = None
    # A send of at most this many records is a local write that may be made at once on the
    # loop (``Sink.send_now``); 0: never. Only where a route has one lane.
    at_once_records: int = 0


@dataclass(frozen=True, slots=True)
class Payload:
    """Records as a sink will send them: the batch and its schema, and, where the sink encodes
    up front, one entry per record with its size in bytes (``entries``, ``sizes``). The
    engine splits a payload by ``SinkLimits.max_bytes`` and resends parts of it (``take``)."""

    batch: RecordBatch
    schema: Schema
    entries: Sequence[Any] | None = None
    sizes: Sequence[int] | None = None

    def __len__(self) -> int:
        return len(self.batch)

    def take(self, positions: slice | npt.NDArray[np.int64]) -> Payload:
        """The records at ``positions`` (a slice or batch positions), with their entries."""
        batch = self.batch.take(positions)
        if self.entries is None:
            return Payload(batch, self.schema)
        if isinstance(positions, slice):
            sizes = None if self.sizes is None else self.sizes[positions]
            return Payload(batch, self.schema, self.entries[positions], sizes)
        picked = positions.tolist()
        sizes = None if self.sizes is None else [self.sizes[i] for i in picked]
        return Payload(batch, self.schema, [self.entries[i] for i in picked], sizes)


class Sink(Protocol):
    """What the engine calls on a sink: nothing more (see the module's doc)."""

    name: str
    limits: SinkLimits

    async def open(self) -> None:
        """Connect and check the destination. Raises ``ConfigError`` if it cannot work."""
        ...

    async def check(self) -> str:
        """One line on whether the destination is reachable; raises ``SinkError`` if not."""
        ...

    def encode(self, batch: RecordBatch, schema: Schema) -> Payload:
        """The records as this sink sends them; pure (the same batch, the same payload)."""
        ...

    async def send(self, payload: Payload) -> None:
        """Deliver the payload; returns once it is acknowledged.

        Raises ``RetryableError``, ``PartialFailure`` or ``FatalError`` (positions are the
        payload's), ``ReaderGone``, or ``Interrupted`` when cancelled part way.
        """
        ...

    def send_now(self, payload: Payload) -> None:
        """The same send, synchronous, for at most ``limits.at_once_records`` records: the
        engine calls it only where that capability is declared."""
        ...

    def written(self) -> dict[str, Any]:
        """What the sink has written, for the run's summary (files and bytes); {} if nothing
        to say."""
        ...

    async def aclose(self) -> None:
        """Flush and release; idempotent."""
        ...


class BaseSink:
    """The defaults of the contract: a subclass sets ``name`` and ``limits`` and implements
    ``check`` and ``send``."""

    name: str = ""
    limits: SinkLimits = SinkLimits(max_records=1000)

    async def open(self) -> None:
        return None

    async def check(self) -> str:
        raise NotImplementedError

    def encode(self, batch: RecordBatch, schema: Schema) -> Payload:
        return Payload(batch, schema)

    async def send(self, payload: Payload) -> None:
        raise NotImplementedError

    def send_now(self, payload: Payload) -> None:
        raise TypeError(f"the {self.name} sink declares no at-once write (at_once_records=0)")

    def written(self) -> dict[str, Any]:
        return {}

    async def aclose(self) -> None:
        return None


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
