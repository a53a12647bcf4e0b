"""Delivery through the engine: retries, partial failures, fatal errors, full queues,
the shutdown deadline, and the accounting identity after each.

The sinks here are test doubles of an *external* destination (a flaky server), driven by the
real engine, queues and retry path.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from producer.app import Engine
from producer.clock import Stopper
from producer.config import Settings, load_settings
from producer.delivery import Route, backoff_s
from producer.metrics import Metrics
from producer.records import RecordBatch, Schema
from producer.settings import DeliverySettings
from producer.sink import BaseSink, FatalError, PartialFailure, Payload, RetryableError, SinkLimits

RECORDS = 10 * 600  # 10 devices, one reading a second, ten minutes


def settings(**delivery: Any) -> Settings:
    return load_settings(
        {
            "backfill": {
                "enabled": True,
                "start": "2024-01-01T00:00:00",
                "end": "2024-01-01T00:10:00",
                "progress": "off",
            },
            "bme280": {
                "devices": 10,
                "sinks": "null",
                "rate": {"interval_s": 1},
                "faults": {"drop_rate": 0, "duplicate_rate": 0},
            },
            "delivery": {"backoff_base_s": 0.001, "backoff_max_s": 0.01, "linger_s": 0, **delivery},
        }
    )


class Destination(BaseSink):
    """Records what it accepted; ``behaviour(call_number, batch)`` may raise instead."""

    name = "null"

    def __init__(self, behaviour: Any = None, max_records: int = 500) -> None:
        self.limits = SinkLimits(max_records=max_records)
        self.behaviour = behaviour
        self.calls = 0
        self.accepted: list[np.ndarray] = []
        self.closed = False

    async def open(self) -> None:
        return None

    async def check(self) -> str:
        return "test destination"

    async def send(self, payload: Payload) -> None:
        batch = payload.batch
        self.calls += 1
        if self.behaviour is not None:
            accepted = await self.behaviour(self.calls, batch)
            if accepted is not None:
                self.accepted.append(batch.key[accepted])
                return
        self.accepted.append(batch.key.copy())

    async def aclose(self) -> None:
        self.closed = True

    def keys(self) -> np.ndarray:
        return np.concatenate(self.accepted) if self.accepted else np.empty(0, np.uint64)


async def run(dest: Destination, s: Settings | None = None) -> tuple[int, Metrics, Engine]:
    metrics = Metrics()
    engine = Engine(s or settings(), metrics, sinks={"null": dest})
    outcome = await engine.run(Stopper())
    return outcome.exit_code, metrics, engine


def identity_holds(m: Metrics) -> bool:
    labels = {"stream": "bme280", "sink": "null"}
    failed = sum(
        m.value("synthstream_records_failed_total", {**labels, "reason": r})
        for r in (
            "queue_full",
            "shutdown",
            "stopped",
            "retries_exhausted",
            "unexpected",
            "http_401",
            "bad",
        )
    )
    return m.value("synthstream_records_generated_total", {"stream": "bme280"}) == (
        m.value("synthstream_records_delivered_total", labels)
        + m.value("synthstream_records_dropped_by_fault_total", {"stream": "bme280"})
        + failed
        + m.value("synthstream_records_in_flight", labels)
    )


async def test_everything_arrives_once_in_order_and_the_sink_is_closed() -> None:
    dest = Destination()
    code, m, _ = await run(dest)
    assert code == 0
    keys = dest.keys()
    assert keys.size == RECORDS
    assert np.unique(keys).size == RECORDS
    assert dest.closed
    assert all(len(k) <= 500 for k in dest.accepted), "batches respect the sink's limit"
    assert identity_holds(m)


async def test_retryable_errors_are_retried_until_delivered() -> None:
    async def flaky(call: int, batch: RecordBatch) -> None:
        if call % 3 != 0:
            raise RetryableError("503 from the server", reason="http_503")

    dest = Destination(flaky)
    code, m, _ = await run(dest)
    assert code == 0
    assert dest.keys().size == RECORDS
    assert np.unique(dest.keys()).size == RECORDS
    retries = m.value("synthstream_send_retries_total", {"sink": "null", "reason": "http_503"})
    assert retries == dest.calls - len(dest.accepted)
    assert retries > 0
    assert identity_holds(m)


async def test_a_partial_failure_resends_only_the_failed_records() -> None:
    async def half(call: int, batch: RecordBatch) -> Any:
        if len(batch) > 1 and call % 2 == 1:
            odd = np.arange(1, len(batch), 2)
            err = PartialFailure("some entries throttled", failed=odd)
            err.accepted = np.arange(0, len(batch), 2)  # type: ignore[attr-defined]
            raise err
        return None

    class Partial(Destination):
        async def send(self, payload: Payload) -> None:
            try:
                await super().send(payload)
            except PartialFailure as exc:
                self.accepted.append(payload.batch.key[exc.accepted])  # type: ignore[attr-defined]
                raise

    dest = Partial(half)
    code, m, _ = await run(dest)
    assert code == 0
    keys = dest.keys()
    assert keys.size == RECORDS, "nothing lost, nothing sent twice"
    assert np.unique(keys).size == RECORDS
    assert identity_holds(m)


async def test_a_fatal_error_fails_the_records_without_retrying() -> None:
    async def refuse(call: int, batch: RecordBatch) -> None:
        raise FatalError("401 unauthorized", reason="http_401")

    dest = Destination(refuse)
    code, m, _ = await run(dest)
    assert code == 1, "undelivered records make the exit status 1"
    labels = {"stream": "bme280", "sink": "null", "reason": "http_401"}
    assert m.value("synthstream_records_failed_total", labels) == RECORDS
    assert m.value("synthstream_send_retries_total", {"sink": "null", "reason": "http_401"}) == 0
    assert identity_holds(m)


async def test_retries_are_bounded() -> None:
    async def down(call: int, batch: RecordBatch) -> None:
        raise RetryableError("connection refused", reason="connect")

    dest = Destination(down, max_records=RECORDS)
    code, m, _ = await run(dest, settings(max_attempts=4, queue_records=RECORDS))
    assert code == 1
    labels = {"stream": "bme280", "sink": "null", "reason": "retries_exhausted"}
    assert m.value("synthstream_records_failed_total", labels) == RECORDS
    assert m.value("synthstream_send_retries_total", {"sink": "null", "reason": "connect"}) == (
        dest.calls - dest.calls // 4
    )
    assert identity_holds(m)


async def test_a_signal_cuts_the_drain_and_counts_what_is_left_as_failed() -> None:
    sending = asyncio.Event()

    async def hang(call: int, batch: RecordBatch) -> None:
        sending.set()
        await asyncio.Event().wait()  # a destination that never answers

    dest = Destination(hang)
    metrics = Metrics()
    stopper = Stopper()
    engine = Engine(settings(shutdown_timeout_s=0.2, queue_records=1000), metrics,
                    sinks={"null": dest})  # fmt: skip
    run_task = asyncio.create_task(engine.run(stopper))
    await sending.wait()
    stopper.stop("signal SIGTERM")
    stopper.stop("signal SIGTERM")  # a second Ctrl-C: stop waiting for the sink
    outcome = await run_task
    assert outcome.exit_code == 1
    labels = {"stream": "bme280", "sink": "null"}
    queued = metrics.value("synthstream_records_failed_total", {**labels, "reason": "shutdown"})
    waiting = metrics.value("synthstream_records_failed_total", {**labels, "reason": "stopped"})
    generated = metrics.value("synthstream_records_generated_total", {"stream": "bme280"})
    assert queued + waiting == generated
    assert queued <= 1000 + 500, "the queue's bound (and one send) held, the rest never queued"
    assert waiting > 0
    assert metrics.value("synthstream_records_in_flight", labels) == 0
    assert identity_holds(metrics)


async def test_a_finished_backfill_waits_for_a_slow_sink_past_the_deadline() -> None:
    async def slow(call: int, batch: RecordBatch) -> None:
        await asyncio.sleep(0.05)  # 120 calls: 6 s, far past the 0.2 s deadline

    dest = Destination(slow, max_records=50)
    code, m, _ = await run(dest, settings(shutdown_timeout_s=0.2))
    assert code == 0
    assert dest.keys().size == RECORDS
    assert identity_holds(m)


async def test_drop_newest_counts_refused_records_when_the_queue_is_full() -> None:
    async def slow(call: int, batch: RecordBatch) -> None:
        await asyncio.sleep(0.05)  # a destination slower than the producer

    dest = Destination(slow, max_records=100)
    s = settings(queue_records=100, when_full="drop_newest")
    s.backfill.speed = 1000.0  # chunks of 100 s of event time every 0.1 s
    code, m, _ = await run(dest, s)
    labels = {"stream": "bme280", "sink": "null"}
    refused = m.value("synthstream_records_failed_total", {**labels, "reason": "queue_full"})
    assert refused > 0
    assert dest.keys().size + refused == RECORDS
    assert code == 1
    assert identity_holds(m)


async def test_block_makes_the_scheduler_wait_and_loses_nothing() -> None:
    async def slow(call: int, batch: RecordBatch) -> None:
        await asyncio.sleep(0.01)

    dest = Destination(slow, max_records=100)
    s = settings(queue_records=100, when_full="block")
    s.backfill.speed = 1000.0
    code, m, _ = await run(dest, s)
    assert code == 0
    assert dest.keys().size == RECORDS
    assert identity_holds(m)


async def test_the_queue_bound_holds_for_a_chunk_larger_than_the_queue() -> None:
    deepest = 0.0
    metrics = Metrics()

    async def slow(call: int, batch: RecordBatch) -> None:
        nonlocal deepest
        depth = metrics.value("synthstream_queue_depth_records", {"stream": "bme280",
                                                                   "sink": "null"})  # fmt: skip
        deepest = max(deepest, depth)
        await asyncio.sleep(0.001)

    dest = Destination(slow, max_records=100)
    engine = Engine(settings(queue_records=300), metrics, sinks={"null": dest})
    outcome = await engine.run(Stopper())  # one chunk of 6,000 records, queue of 300
    assert outcome.exit_code == 0
    assert dest.keys().size == RECORDS
    assert 0 < deepest <= 300
    assert identity_holds(metrics)


async def test_a_stop_under_backpressure_stops_generation_at_once() -> None:
    sending = asyncio.Event()

    async def hang(call: int, batch: RecordBatch) -> None:
        sending.set()
        await asyncio.Event().wait()  # the destination stopped answering

    s = settings(shutdown_timeout_s=0.3, queue_records=1000)
    assert s.backfill.start is not None
    s.backfill.end = s.backfill.start.replace(day=3)  # 2 days: 1.7 M records, 9 chunks
    metrics = Metrics()
    stopper = Stopper()
    engine = Engine(s, metrics, sinks={"null": Destination(hang)})
    run_task = asyncio.create_task(engine.run(stopper))
    await sending.wait()
    stopper.stop("signal SIGTERM")  # once: the drain gets its deadline
    outcome = await asyncio.wait_for(run_task, timeout=10)
    assert outcome.exit_code == 1
    assert outcome.generated <= 200_000, "no chunk after the stop"
    assert identity_holds(metrics)


@pytest.mark.parametrize("attempt", range(8))
def test_backoff_is_full_jitter_and_capped(attempt: int) -> None:
    delays = [backoff_s(attempt, 0.1, 2.0) for _ in range(300)]
    cap = min(2.0, 0.1 * 2**attempt)
    assert min(delays) >= 0
    assert max(delays) <= cap
    assert max(delays) > cap * 0.8, "spread over the whole range"


async def test_a_resend_after_an_unknown_outcome_is_counted_as_redelivered() -> None:
    async def slow_answer(call: int, batch: RecordBatch) -> None:
        if call % 3 == 1:  # it arrived, but the answer timed out: the sender cannot know
            dest.accepted.append(batch.key.copy())
            raise RetryableError("timeout: no answer", "timeout", unknown_outcome=True)

    dest = Destination(slow_answer, max_records=100)
    code, m, _ = await run(dest)
    assert code == 0
    keys = dest.keys()
    labels = {"stream": "bme280", "sink": "null"}
    assert np.unique(keys).size == RECORDS == m.value("synthstream_records_delivered_total",
                                                       labels)  # fmt: skip
    duplicates = keys.size - np.unique(keys).size
    assert duplicates > 0
    assert m.value("synthstream_records_redelivered_total", labels) == duplicates
    assert identity_holds(m)


async def test_the_engine_forms_sends_within_a_sinks_byte_limit() -> None:
    """A sink that encodes up front (Kinesis: 5 MiB a call) gets sends within its bytes,
    each one call; a failed entry is resent by itself, with its own encoding."""

    class BytesDestination(Destination):
        def __init__(self) -> None:
            super().__init__(max_records=500)
            self.limits = SinkLimits(max_records=500, max_bytes=10_000)
            self.sizes: list[int] = []

        def encode(self, batch: RecordBatch, schema: Schema) -> Payload:
            entries = [(int(k), 97 + int(k) % 7) for k in batch.key.tolist()]
            return Payload(batch, schema, entries, [size for _, size in entries])

        async def send(self, payload: Payload) -> None:
            batch, entries = payload.batch, payload.entries
            assert entries is not None
            assert [e[0] for e in entries] == batch.key.tolist(), "entries follow the batch"
            self.calls += 1
            self.sizes.append(sum(size for _, size in entries))
            if self.calls == 3:  # the first entry of the third call is throttled
                self.accepted.append(batch.key[1:].copy())
                raise PartialFailure("throttled", failed=np.array([0]), reason="throttled")
            self.accepted.append(batch.key.copy())

    dest = BytesDestination()
    code, m, _ = await run(dest)
    assert code == 0
    assert max(dest.sizes) <= 10_000
    assert len(dest.sizes) >= RECORDS * 97 // 10_000
    assert np.unique(dest.keys()).size == dest.keys().size == RECORDS
    assert identity_holds(m)


class AtOnce(Destination):
    """A destination up to 50 records are written to at once (a local file): ``send_now``.
    ``refuse(call)`` may return an error that call raises, having taken the records before
    the failed positions (as a short write to a full disk does). One that lingers (a
    Parquet file) declares no at-once write."""

    def __init__(self, refuse: Any = None, linger: bool = False) -> None:
        super().__init__(max_records=100)
        self.limits = SinkLimits(max_records=100, linger=linger,
                                 at_once_records=0 if linger else 50)  # fmt: skip
        self.refuse = refuse
        self.now_calls = 0

    def send_now(self, payload: Payload) -> None:
        batch = payload.batch
        assert len(batch) <= 50, "only what the sink declared it takes at once"
        self.now_calls += 1
        error = self.refuse(self.now_calls) if self.refuse is not None else None
        if isinstance(error, PartialFailure):
            self.accepted.append(batch.key[: len(batch) - len(error.failed)].copy())
        if error is not None:
            raise error
        self.accepted.append(batch.key.copy())


def small_batch(first: int, n: int) -> RecordBatch:
    ids = np.arange(first, first + n)
    return RecordBatch("bme280", ids % 10, ids * 1000, ids.astype(np.uint64), {})


def route_to(dest: Destination, metrics: Metrics, **delivery: Any) -> Route:
    from producer.domains.bme280.model import Bme280Schema

    fields = {"linger_s": 0, "backoff_base_s": 0.001, "backoff_max_s": 0.002, **delivery}
    return Route("bme280", Bme280Schema(np.arange(10)), dest, DeliverySettings(**fields),
                 metrics)  # fmt: skip


async def put_all(route: Route, *batches: RecordBatch) -> None:
    for batch in batches:
        route.accept(len(batch))
        assert await route.put(batch) is None


async def test_a_small_send_is_made_at_once_and_what_failed_is_retried_in_order() -> None:
    """With nothing queued or being sent, a sink's ``send_now`` takes a small batch at once
    (counted delivered before any lane runs); the part of a short write that failed goes to
    the lane, which retries it after a backoff (its first attempt counted), ahead of what came
    after it."""
    metrics = Metrics()
    full = PartialFailure("disk full", failed=np.arange(7, 10), reason="disk_full")
    dest = AtOnce(refuse=lambda call: full if call == 2 else None)
    route = route_to(dest, metrics)
    await put_all(route, small_batch(0, 5))
    assert (route.in_flight, dest.now_calls, dest.calls) == (0, 1, 0)
    await put_all(route, small_batch(5, 10))  # 5..11 written, 12..14 failed
    assert route.in_flight == 3
    lane = asyncio.create_task(route.run())
    await put_all(route, small_batch(15, 5))  # queued: a retry is ahead of it
    await route.close()
    await asyncio.wait_for(lane, 10)
    assert dest.keys().tolist() == list(range(20))
    assert route.in_flight == 0
    labels = {"stream": "bme280", "sink": "null"}
    assert metrics.value("synthstream_records_delivered_total", labels) == 20
    assert metrics.value("synthstream_send_retries_total",
                         {"sink": "null", "reason": "disk_full"}) == 1  # fmt: skip


@pytest.mark.parametrize("max_attempts", [1, 2])
async def test_a_failed_send_at_once_counts_as_an_attempt(max_attempts: int) -> None:
    """``max_attempts`` holds for records first tried at once: with one attempt they fail
    without a retry; with two, one retry (made by the lane, through ``send``)."""
    metrics = Metrics()
    dest = AtOnce(refuse=lambda call: RetryableError("busy", reason="busy"))

    async def always_busy(call: int, batch: RecordBatch) -> None:
        raise RetryableError("busy", reason="busy")

    dest.behaviour = always_busy
    route = route_to(dest, metrics, max_attempts=max_attempts)
    lane = asyncio.create_task(route.run())
    await put_all(route, small_batch(0, 4))
    await route.close()
    await asyncio.wait_for(lane, 10)
    assert (dest.now_calls, dest.calls) == (1, max_attempts - 1)
    labels = {"stream": "bme280", "sink": "null", "reason": "retries_exhausted"}
    assert metrics.value("synthstream_records_failed_total", labels) == 4
    assert route.in_flight == 0


async def test_a_sink_that_wants_fuller_sends_is_not_sent_at_once() -> None:
    """A sink that declares no at-once write (a Parquet file: a send is a row group, worth
    lingering for) gets its records through the lane, batched, even small ones."""
    dest = AtOnce(linger=True)
    route = route_to(dest, Metrics(), linger_s=0.05)
    lane = asyncio.create_task(route.run())
    for first in range(0, 30, 3):
        await put_all(route, small_batch(first, 3))
    await route.close()
    await asyncio.wait_for(lane, 10)
    assert dest.now_calls == 0
    assert dest.calls == 1, "ten puts, one send"
    assert dest.keys().tolist() == list(range(30))


async def test_a_send_at_once_waits_behind_a_send_under_way() -> None:
    """While the lane is sending, new records are queued behind it, not written at once:
    each key keeps its order."""
    metrics = Metrics()
    release = asyncio.Event()

    async def slow(call: int, batch: RecordBatch) -> None:
        await release.wait()

    dest = AtOnce()
    dest.behaviour = slow
    route = route_to(dest, metrics)
    lane = asyncio.create_task(route.run())
    await put_all(route, small_batch(0, 100))  # too many for send_now: the lane sends it
    for _ in range(100):  # (a deadline: the lane is in its send after a few steps)
        if route._sending:
            break
        await asyncio.sleep(0)
    assert route._sending
    await put_all(route, small_batch(100, 3))
    assert dest.now_calls == 0
    release.set()
    await route.close()
    await asyncio.wait_for(lane, 10)
    assert dest.keys().tolist() == list(range(103))


async def test_a_drain_that_takes_a_while_is_said_once_with_how_to_end_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stopped while a destination hangs: one ``draining`` line with the records in flight,
    the time left and the second signal; a finished backfill waiting on a slow sink says
    ``waiting_for_sinks`` once. A quick drain says nothing."""
    import structlog

    import producer.delivery

    monkeypatch.setattr(producer.delivery, "DRAIN_NOTICE_S", 0.1)
    sending = asyncio.Event()

    async def hang(call: int, batch: RecordBatch) -> None:
        sending.set()
        await asyncio.Event().wait()

    engine = Engine(settings(shutdown_timeout_s=0.5, queue_records=1000), Metrics(),
                    sinks={"null": Destination(hang)})  # fmt: skip
    stopper = Stopper()
    with structlog.testing.capture_logs() as logs:
        run_task = asyncio.create_task(engine.run(stopper))
        await sending.wait()
        stopper.stop("signal SIGTERM")
        await run_task
    draining = [e for e in logs if e["event"] == "draining"]
    assert len(draining) == 1
    assert draining[0]["in_flight"] > 0
    assert 0 < draining[0]["deadline_s"] <= 0.4
    assert "second signal" in draining[0]["hint"]

    async def slow(call: int, batch: RecordBatch) -> None:
        await asyncio.sleep(0.05)  # 12 calls: 0.6 s

    with structlog.testing.capture_logs() as logs:
        await run(Destination(slow, max_records=500))
    assert [e["event"] for e in logs].count("waiting_for_sinks") == 1
    with structlog.testing.capture_logs() as logs:
        await run(Destination())
    assert not [e for e in logs if e["event"] in ("draining", "waiting_for_sinks")]


async def test_kafka_sends_again_what_a_restarting_broker_answered_with_unknown_error() -> None:
    """aiokafka marks UnknownError (code -1, a broker restarting) not retriable: the sink
    hands those records back for another try, and fails for good only what cannot pass."""
    from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError, UnknownError

    from producer.streams import build_stream
    from sinks.kafka import KafkaSink, KafkaSinkSettings

    source = build_stream("bme280", settings()).source
    t0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
    batch = next(iter(source.advance(t0, t0 + 1_000, None).values()))
    assert len(batch) == 10
    answers: list[BaseException | None] = [UnknownError(), MessageSizeTooLargeError(), None,
                                           KafkaTimeoutError(), *[None] * 6]  # fmt: skip

    class Broker:  # aiokafka's producer as the sink uses it: send() gives a future
        async def send(self, topic: str, **message: Any) -> asyncio.Future[None]:
            future = asyncio.get_running_loop().create_future()
            answer = answers.pop(0)
            future.set_result(None) if answer is None else future.set_exception(answer)
            return future

    sink = KafkaSink(KafkaSinkSettings(create_topics=False), {"bme280": "readings"})
    sink._producer = Broker()
    with pytest.raises(PartialFailure) as caught:
        await sink.send(Payload(batch, source.channels["bme280"]))
    assert caught.value.failed.tolist() == [0, 3]
    assert {k: v.tolist() for k, v in caught.value.rejected.items()} == {
        "kafka_MessageSizeTooLargeError": [1]
    }
