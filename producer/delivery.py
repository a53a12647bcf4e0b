"""Delivery: one bounded queue, batcher and retry loop per route (stream x sink).

The scheduler ``put``s batches on a route's queue; the route's worker takes up to the sink's
``max_records`` (waiting up to ``linger_s`` to fill a batch), sends them through
``send_with_retry`` (the engine's only retry path) and accounts for every record: delivered,
failed with a reason, or still in flight. A full queue either blocks the scheduler (the
default; it shows as scheduler lag) or refuses the new records, counted as failed with
reason ``queue_full``. Nothing is lost silently.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import structlog

from producer.clock import Clock, Stopper, WallClock, wait_first
from producer.metrics import Metrics
from producer.records import RecordBatch, Schema
from producer.settings import DeliverySettings
from producer.sink import (
    FatalError,
    Interrupted,
    PartialFailure,
    Payload,
    ReaderGone,
    RetryableError,
    Sink,
)

log = structlog.get_logger("synthstream")

CUT_GRACE_S = 2.0  # at the deadline, sends under way get this long to be acknowledged
DRAIN_NOTICE_S = 1.0  # a drain that takes longer than this is logged, with how to end it


class Route:
    """Records of one stream on their way to one sink.

    The engine owns concurrency: up to the sink's ``max_in_flight`` sends at once, one per
    lane. A record's lane is its entity modulo the lane count, so each key (device, user,
    city) keeps its order, and a lane that waits out a retry holds up only its own keys.

    The queue holds at most ``queue_records`` over all lanes (a batch larger than the room
    left is split: the part that fits goes in, the rest waits). Waiting for room watches
    ``stop``: once the run is asked to stop, ``put`` waits no more and returns what it could
    not queue. At the shutdown deadline the engine ``cut``s the route: no lane starts another
    send, the sends under way may finish (what they acknowledged counts), then the rest is
    abandoned. Signalling is by futures (one asyncio loop, no lock needed)."""

    def __init__(
        self, stream: str, schema: Schema, sink: Sink, settings: DeliverySettings,
        metrics: Metrics, clock: Clock | None = None,
    ) -> None:  # fmt: skip
        self.clock = clock or WallClock()
        self.stream = stream
        self.schema = schema
        self.sink = sink
        self.settings = settings
        self.metrics = metrics
        self.labels = (stream, sink.name)
        # The children of this route's series, looked up once (a lookup per tick adds up).
        # Read when /metrics is scraped (on this loop, between steps): nothing to do per send.
        metrics.queue_depth.labels(*self.labels).set_function(lambda: self._queued)
        metrics.in_flight.labels(*self.labels).set_function(lambda: self.in_flight)
        self._delivered = metrics.delivered.labels(*self.labels)
        self._deferred = metrics.deferred  # (counts per send: added up at the scrape)
        self.lane_count = max(1, sink.limits.max_in_flight)
        self._lanes: list[deque[RecordBatch]] = [deque() for _ in range(self.lane_count)]
        self._lane_size = [0] * self.lane_count
        self._queued = 0
        self._closed = False
        self._cut = False
        self._sending = 0
        self._blocked = 0  # puts waiting for room: then lingering cannot fill a batch
        self._room_waiters: list[asyncio.Future[None]] = []
        self._item_waiters: list[list[asyncio.Future[None]]] = [[] for _ in self._lanes]
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._cut_waiters: list[asyncio.Future[None]] = []
        self.stop: asyncio.Future[None] | None = None  # the run's stop request (the engine's)
        self.in_flight = 0
        self.reader_gone = False
        self.on_reader_gone: Callable[[], None] = lambda: None
        # A sink may take a small send at once, on the loop (a local write: its declared
        # ``at_once_records``): a live tick's records then skip the queue and the lane's
        # wake-up when nothing is ahead of them, encoded while the tick was made.
        limits = sink.limits
        self.at_once = (
            min(limits.at_once_records, limits.max_records) if self.lane_count == 1 else 0
        )
        self._failed_at_once: RetryableError | None = None  # the lane's head was tried so
        self._send_latency = metrics.send_latency.labels(sink.name)

    @staticmethod
    def _wake(waiters: list[asyncio.Future[None]]) -> None:
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        waiters.clear()

    async def _wait(
        self, waiters: list[asyncio.Future[None]], limit_s: float | None = None,
        stop: bool = False,
    ) -> None:  # fmt: skip
        """Until woken (or ``limit_s`` passed, or, with ``stop``, the run's stop request)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        watch = (self.stop,) if stop and self.stop is not None else ()
        try:
            await wait_first(waiter, *watch, limit_s=limit_s)
        finally:
            if not waiter.done():
                waiter.cancel()
                if waiter in waiters:
                    waiters.remove(waiter)

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.done()

    # ------------------------------------------------------------------ producer side
    def prepare(self, batch: RecordBatch) -> Payload | None:
        """A live tick's records encoded ahead, while the tick is made (producer.ticks), for
        a sink that may take them at once; None where they will go through the queue."""
        if len(batch) <= self.at_once:
            return self.sink.encode(batch, self.schema)
        return None

    async def put(self, batch: RecordBatch, ahead: Payload | None = None) -> RecordBatch | None:
        """Queue a batch already counted by ``accept``, as room allows; with ``block`` wait
        for room, but not once the run is stopping. Returns what was not queued (or None).
        A sink that can (``at_once_records``: a local write) takes a small batch at once
        instead, when nothing is queued or being sent; ``ahead``: the batch as ``prepare``
        encoded it."""
        if (len(batch) <= self.at_once and not self._queued and not self._sending
                and not self._cut):  # fmt: skip
            left = self._at_once(ahead or self.sink.encode(batch, self.schema))
            if left is None:
                return None
            batch = left
        bound = self.settings.queue_records
        while len(batch):
            room = bound - self._queued
            if self.settings.when_full == "drop_newest":
                if room < len(batch):
                    refused = batch.take(slice(max(room, 0), None))
                    self.fail(len(refused), "queue_full", "queue full; records refused")
                    batch = batch.take(slice(0, max(room, 0)))
                if len(batch):
                    self._append(batch)
                return None
            if room > 0:
                part = batch if len(batch) <= room else batch.take(slice(0, room))
                self._append(part)
                batch = batch.take(slice(len(part), None))
                continue
            if self._stopping():
                return batch
            self._blocked += 1
            try:
                await self._wait(self._room_waiters, stop=True)
            finally:
                self._blocked -= 1
        return None

    def _at_once(self, payload: Payload) -> RecordBatch | None:
        """The sink's send made now, nothing being queued or sent (so order holds): what
        failed and may be sent again (the lane goes on from this attempt, with its backoff),
        or None once all is settled."""
        started = self.clock.monotonic()
        try:
            self.sink.send_now(payload)
        except Exception as exc:
            outcome = settle(self, payload, exc)
            if outcome is None:
                return None
            self._failed_at_once = outcome[1]
            return outcome[0].batch
        self.delivered(len(payload), took_s=self.clock.monotonic() - started)
        return None

    def _append(self, batch: RecordBatch) -> None:
        if self.lane_count == 1:
            parts = [(0, batch)]
        else:
            lane_of = batch.entity % self.lane_count
            parts = [(lane, batch.take(np.flatnonzero(lane_of == lane)))
                     for lane in np.unique(lane_of).tolist()]  # fmt: skip
        for lane, part in parts:
            self._lanes[lane].append(part)
            self._lane_size[lane] += len(part)
            self._wake(self._item_waiters[lane])
        self._queued += len(batch)

    async def close(self) -> None:
        """No more batches will come; the lanes drain what is queued and stop."""
        self._closed = True
        for waiters in self._item_waiters:
            self._wake(waiters)

    def cut(self) -> None:
        """The shutdown deadline: no lane starts another send (those under way may end)."""
        self._cut = True
        for waiters in self._item_waiters:
            self._wake(waiters)
        self._wake(self._cut_waiters)

    @property
    def is_cut(self) -> bool:
        return self._cut

    async def pause(self, seconds: float) -> None:
        """A backoff between attempts; it ends early at the cut."""
        if not self._cut:
            await self._wait(self._cut_waiters, limit_s=seconds)

    async def idle(self) -> None:
        """Until no send is under way."""
        while self._sending:
            await self._wait(self._idle_waiters)

    # ------------------------------------------------------------------ worker side
    async def _take(self, lane: int) -> RecordBatch | None:
        """Up to ``max_records`` of a lane, waiting ``linger_s`` to fill; None when drained
        (or cut)."""
        limit = self.sink.limits.max_records
        queue = self._lanes[lane]
        while not queue and not self._closed and not self._cut:
            await self._wait(self._item_waiters[lane])
        if not queue or self._cut:
            return None
        linger_s = max(self.settings.linger_s, self.sink.limits.linger_s or 0.0)
        if self._lane_size[lane] < limit and linger_s > 0 and self.sink.limits.linger:
            deadline = self.clock.monotonic() + linger_s
            while (self._lane_size[lane] < limit and not self._closed and not self._blocked
                   and not self._cut):  # fmt: skip
                remaining = deadline - self.clock.monotonic()
                if remaining <= 0:
                    break
                await self._wait(self._item_waiters[lane], limit_s=remaining)
            if self._cut:
                return None
        parts: list[RecordBatch] = []
        taken = 0
        while queue and taken < limit:
            head = queue[0]
            room = limit - taken
            if len(head) <= room:
                parts.append(queue.popleft())
                taken += len(head)
            else:
                parts.append(head.take(slice(0, room)))
                queue[0] = head.take(slice(room, None))
                taken += room
        self._lane_size[lane] -= taken
        self._queued -= taken
        self._wake(self._room_waiters)
        return parts[0] if len(parts) == 1 else RecordBatch.concat(parts)

    async def run(self) -> None:
        """Deliver until the route is closed and drained (or cut): one task per lane."""
        async with asyncio.TaskGroup() as group:
            for lane in range(self.lane_count):
                group.create_task(self._run_lane(lane))

    async def _run_lane(self, lane: int) -> None:
        while (batch := await self._take(lane)) is not None:
            for part in self._by_bytes(batch):
                if self._cut:
                    break  # (what is left stays in flight: abandoned, counted)
                self._sending += 1
                failed, self._failed_at_once = self._failed_at_once, None
                try:
                    await send_with_retry(self, part, failed)
                finally:
                    self._sending -= 1
                    if not self._sending:
                        self._wake(self._idle_waiters)

    def _by_bytes(self, batch: RecordBatch) -> Iterator[Payload]:
        """The batch as the sink encodes it, in sends of at most the sink's ``max_bytes``
        (where its payload gives each entry's size): each send is then one call it makes."""
        payload = self.sink.encode(batch, self.schema)
        budget, sizes = self.sink.limits.max_bytes, payload.sizes
        if budget is None or sizes is None:
            yield payload
            return
        start, used = 0, 0
        for i, size in enumerate(sizes):
            if i > start and used + size > budget:
                yield payload.take(slice(start, i))
                start, used = i, 0
            used += size
        yield payload if start == 0 else payload.take(slice(start, None))

    # ------------------------------------------------------------------ accounting
    def accept(self, n: int) -> None:
        """Count records as in flight. Called for every route of a stream in the same step
        that counts them as generated, so that the identity holds before any ``put`` waits."""
        self.in_flight += n

    def delivered(self, n: int, took_s: float | None = None) -> None:
        """``n`` records acknowledged; ``took_s``: by a send that took this long, whole."""
        self.in_flight -= n
        self._deferred.inc(self._delivered, n)
        if took_s is not None:
            self._deferred.observe(self._send_latency, took_s)

    def fail(self, n: int, reason: str, message: str, quiet: bool = False) -> None:
        self.in_flight -= n
        self.metrics.records_failed(self.stream, self.sink.name, reason, n, message, quiet)

    def abandon(self) -> int:
        """At the shutdown deadline: count what is still here as failed; return how many."""
        left = self.in_flight
        if left:
            for queue in self._lanes:
                queue.clear()
            self._lane_size = [0] * self.lane_count
            self._queued = 0
            if self.reader_gone:
                self.fail(left, "closed", "the reader closed the destination", quiet=True)
            else:
                self.fail(left, "shutdown", "shutdown deadline passed before delivery")
        return left


def backoff_s(attempt: int, base_s: float, max_s: float) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(max, base * 2**attempt))."""
    return random.uniform(0.0, min(max_s, base_s * (2.0**attempt)))


async def send_with_retry(
    route: Route, payload: Payload, failed: RetryableError | None = None
) -> None:
    """Send until acknowledged, failed for good, or out of attempts. The only retry loop.

    ``max_attempts`` bounds consecutive attempts without progress: a partial failure that
    delivered some records starts the count (and the backoff) again. After the route is cut
    (the shutdown deadline) no attempt starts: what is left stays in flight, and
    ``Route.abandon`` counts it. A send interrupted by cancellation reports what the
    destination had acknowledged (``Interrupted``), and that counts as delivered. ``failed``:
    the batch's first attempt was made already (at once, by ``Route.put``) and failed so.
    """
    sink, settings, metrics = route.sink, route.settings, route.metrics
    pending = payload
    attempt = 0  # consecutive attempts that made no progress
    error = failed
    while True:
        if error is not None:  # after a failed attempt: another one, after a backoff
            attempt += 1
            if attempt >= settings.max_attempts:
                route.fail(len(pending), "retries_exhausted",
                           f"{attempt} attempts, last: {error}")  # fmt: skip
                return
            if route.is_cut:
                return  # no attempt after the deadline: abandoned, counted as failed
            delay = backoff_s(attempt - 1, settings.backoff_base_s, settings.backoff_max_s)
            if error.retry_after_s is not None:
                delay = max(delay, min(error.retry_after_s, settings.backoff_max_s))
            metrics.send_retried(route.stream, sink.name, error.reason, len(pending), attempt,
                                 delay, str(error))  # fmt: skip
            await route.pause(delay)
            if route.is_cut:
                return
            if error.unknown_outcome:  # it may have arrived: this send may deliver it twice
                metrics.redelivered.labels(*route.labels).inc(len(pending))
        started = route.clock.monotonic()
        try:
            await sink.send(pending)
        except Interrupted as exc:  # cancelled mid-send: count what was acknowledged
            route.delivered(len(exc.acknowledged))
            raise asyncio.CancelledError from exc
        except Exception as exc:
            outcome = settle(route, pending, exc)
            if outcome is None:
                return
            pending, error, progress = outcome
            if progress:
                attempt = -1  # the bound counts attempts that achieved nothing
        else:
            route.delivered(len(pending), took_s=route.clock.monotonic() - started)
            return


Retry = tuple[Payload, RetryableError, bool]


def settle(route: Route, pending: Payload, exc: Exception) -> Retry | None:
    """What a failed attempt means: counts what it delivered or failed for good and returns
    what to send again (the records with their entries, the error, whether the attempt made
    progress), or None when nothing is left to send."""
    if isinstance(exc, PartialFailure):
        failed = np.asarray(exc.failed, dtype=np.int64)
        refused = sum(len(positions) for positions in exc.rejected.values())
        accepted = len(pending) - failed.size - refused
        route.delivered(accepted)
        for reason, positions in exc.rejected.items():
            if len(positions):
                route.fail(len(positions), reason, str(exc))
        if failed.size == 0:
            return None
        return pending.take(failed), exc, bool(accepted or refused)
    if isinstance(exc, RetryableError):
        return pending, exc, False
    if isinstance(exc, FatalError):
        route.fail(len(pending), exc.reason, str(exc))
    elif isinstance(exc, ReaderGone):  # counted, not logged: the reader chose to stop
        route.fail(len(pending), exc.reason, str(exc), quiet=True)
        if not route.reader_gone:
            route.reader_gone = True
            route.on_reader_gone()
    else:  # a sink bug must not become an endless retry loop
        route.fail(len(pending), "unexpected", f"{type(exc).__name__}: {exc}")
    return None


async def drain(
    routes: list[Route], workers: list[asyncio.Task[None]], stopper: Stopper, timeout_s: float
) -> None:
    """Let the routes drain because their input ended (``workers``: their tasks).

    A run asked to stop (a signal, ``--duration``) drains under the shutdown deadline. A
    run whose work is done (the end of a backfill, ``--max-records``) waits for its
    sinks as long as they make progress (retries are bounded); a signal then cuts it off.
    """
    for route in routes:
        await route.close()
    loop = asyncio.get_running_loop()
    forced = stopper.forced
    finished = stopper.reason in ("backfill_complete", "max_records")
    deadline = float("inf") if finished else (loop.time() + timeout_s)
    notice_at = loop.time() + DRAIN_NOTICE_S  # a wait longer than this is said, once
    while not all(task.done() for task in workers) and not forced.done():
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        if loop.time() >= notice_at:
            notice_at = float("inf")
            _draining(routes, None if finished else remaining)
        running = {task for task in workers if not task.done()}
        wait_s = max(min(remaining, notice_at - loop.time()), 0.0)
        await asyncio.wait(
            running | {forced},
            timeout=None if wait_s == float("inf") else wait_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
    if not all(task.done() for task in workers):
        # The deadline (or a second signal): no new sends; those under way may end, so
        # that what the destination acknowledged counts as delivered, then the rest goes.
        for route in routes:
            route.cut()
        if not forced.done():
            idle: asyncio.Future[Any] = asyncio.ensure_future(
                asyncio.gather(*(r.idle() for r in routes))
            )
            watch: set[asyncio.Future[Any]] = {idle, forced}
            await asyncio.wait(watch, timeout=CUT_GRACE_S, return_when=asyncio.FIRST_COMPLETED)
            idle.cancel()
            await asyncio.gather(idle, return_exceptions=True)
    for task in workers:
        if not task.done():
            task.cancel()
    if workers:
        await asyncio.wait(workers)
    for route in routes:
        route.abandon()


def _draining(routes: list[Route], deadline_s: float | None) -> None:
    """One line when the queues take a while to drain: what is left and how to end it."""
    left = sum(route.in_flight for route in routes)
    if deadline_s is None:  # the work is done: the sinks get as long as they move
        log.warning("waiting_for_sinks", in_flight=left,
                    hint="a signal (Ctrl-C) ends the wait; the rest then fails")  # fmt: skip
    else:
        log.warning("draining", in_flight=left, deadline_s=round(deadline_s, 1),
                    hint="a second signal (Ctrl-C) stops at once; what is left then "
                    "fails with reason shutdown")  # fmt: skip
