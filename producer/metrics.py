"""Every metric's name and labels, in one place, with the events that move them.

The accounting identity, per stream and sink, holds at every scrape because every event
below updates its counters without an ``await`` in between, and ``/metrics`` is served on the
same event loop:

    generated = delivered + dropped_by_fault + failed + in_flight

Counts made many times a second (per live tick, per send) wait in ``Deferred`` and are
added up when the registry is read, before any series is collected: a scrape still sees
them all at one instant.

``generated`` counts every record that entered the pipeline, duplicates injected by faults
included; ``duplicated_by_fault`` counts those copies separately.
"""

from __future__ import annotations

import platform
from collections import deque
from collections.abc import Iterator
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from producer import __version__
from producer.records import KindCounts

log = structlog.get_logger("synthstream")
Labelled = TypeVar("Labelled", Counter, Gauge, Histogram)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
LAG_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.004,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    5,
    30,
)


EMISSION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.05, 0.1, 0.25,
                    0.5, 1, 2.5, 5, 10)  # fmt: skip


class Deferred(Collector):
    """Counts the engine makes many times a second (per live tick, per send), kept as plain
    numbers and added to their series when the registry is read: a dict update instead of a
    locked increment each. A live wake runs cold (its code was evicted while it slept), and
    there every call costs several times what it costs warm. Registered first, so a scrape
    folds them in before any series is collected: the scrape sees them all at one instant."""

    FOLD_AT = 4096  # observations kept before they are added up

    def __init__(self) -> None:
        self._adds: dict[Any, float] = {}
        self._sets: dict[Any, float] = {}
        self._observed: dict[Any, list[float]] = {}
        self._waiting = 0

    def inc(self, child: Counter, amount: float) -> None:
        adds = self._adds
        adds[child] = adds.get(child, 0) + amount

    def set(self, child: Gauge, value: float) -> None:
        self._sets[child] = value

    def observe(self, child: Histogram, value: float) -> None:
        kept = self._observed.get(child)
        if kept is None:
            kept = self._observed[child] = []
        kept.append(value)
        self._waiting += 1
        if self._waiting >= self.FOLD_AT:
            self.fold()

    def fold(self) -> None:
        adds, self._adds = self._adds, {}
        sets, self._sets = self._sets, {}
        observed, self._observed, self._waiting = self._observed, {}, 0
        for counter, amount in adds.items():
            counter.inc(amount)
        for gauge, value in sets.items():
            gauge.set(value)
        for histogram, values in observed.items():
            for value in values:
                histogram.observe(value)

    def collect(self) -> Iterator[CounterMetricFamily]:
        self.fold()
        return iter(())


class BatchHistogram(Collector):
    """A histogram fed a whole array at once (numpy), for a value per record at any rate:
    the cost is per batch, not per record. ``observe_later`` only keeps the arrays (a live
    wake's few records; a numpy call costs more than its records there) and they are added
    up in bulk at the next scrape, or once enough are waiting."""

    FOLD_AT = 4096  # arrays kept before they are added up

    def __init__(self, name: str, doc: str, label: str, buckets: tuple[float, ...]) -> None:
        self.name, self.doc, self.label = name, doc, label
        self.bounds = np.asarray(buckets, dtype=np.float64)
        self._counts: dict[str, Any] = {}
        self._sums: dict[str, float] = {}
        self._later: dict[str, list[tuple[float, npt.NDArray[np.int64]]]] = {}
        self._waiting = 0

    def observe_many(self, value: str, amounts: npt.NDArray[np.float64]) -> None:
        if not len(amounts):
            return
        at = np.searchsorted(self.bounds, amounts, side="left")  # first bound >= amount
        counts = np.bincount(at, minlength=self.bounds.size + 1)
        if value in self._counts:
            self._counts[value] += counts
        else:
            self._counts[value] = counts.astype(np.int64)
        self._sums[value] = self._sums.get(value, 0.0) + float(np.sum(amounts))

    def observe_later(self, value: str, now_s: float, times_ms: npt.NDArray[np.int64]) -> None:
        """Observe ``now_s - times_ms / 1000`` (at least 0) for each time, at the next fold."""
        self._later.setdefault(value, []).append((now_s, times_ms))
        self._waiting += 1
        if self._waiting >= self.FOLD_AT:
            self.fold()

    def fold(self) -> None:
        """Add up what ``observe_later`` kept."""
        later, self._later, self._waiting = self._later, {}, 0
        for value, kept in later.items():
            times = np.concatenate([t for _, t in kept])
            nows = np.repeat([now for now, _ in kept], [t.size for _, t in kept])
            self.observe_many(value, np.maximum(0.0, nows - times / 1000.0))

    def collect(self) -> Iterator[HistogramMetricFamily]:
        self.fold()
        family = HistogramMetricFamily(self.name, self.doc, labels=[self.label])
        for value, counts in self._counts.items():
            cumulative = np.cumsum(counts).tolist()
            buckets = [(f"{b:g}", c) for b, c in zip(self.bounds.tolist(), cumulative,
                                                      strict=False)]  # fmt: skip
            buckets.append(("+Inf", cumulative[-1]))
            family.add_metric([value], buckets, self._sums[value])
        yield family


class Metrics:
    """The product's metrics on a registry of its own (tests build a fresh one each)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        p = "synthstream_"
        self.deferred = Deferred()
        r.register(self.deferred)
        # process_cpu_seconds_total, process_resident_memory_bytes, open fds (Linux /proc).
        ProcessCollector(registry=r)
        self.generated = Counter(
            p + "records_generated",
            "Records that entered the pipeline (incl. injected duplicates).",
            ["stream"],
            registry=r,
        )
        self.delivered = Counter(
            p + "records_delivered",
            "Records acknowledged by a sink.",
            ["stream", "sink"],
            registry=r,
        )
        self.failed = Counter(
            p + "records_failed",
            "Records a sink will never get (permanent error, retries "
            "exhausted, queue full, shutdown deadline).",
            ["stream", "sink", "reason"],
            registry=r,
        )
        self.dropped_by_fault = Counter(
            p + "records_dropped_by_fault",
            "Records dropped on purpose by fault injection.",
            ["stream"],
            registry=r,
        )
        self.duplicated_by_fault = Counter(
            p + "records_duplicated_by_fault",
            "Extra copies added by fault injection.",
            ["stream"],
            registry=r,
        )
        self.faults_injected = Counter(
            p + "faults_injected",
            "Records touched by each kind of injected fault.",
            ["stream", "kind"],
            registry=r,
        )
        self.in_flight = Gauge(
            p + "records_in_flight",
            "Records routed to a sink and not yet delivered or failed.",
            ["stream", "sink"],
            registry=r,
        )
        self.queue_depth = Gauge(
            p + "queue_depth_records",
            "Records waiting in a sink's queue.",
            ["stream", "sink"],
            registry=r,
        )
        self.send_latency = Histogram(
            p + "send_latency_seconds",
            "Time of one acknowledged send call.",
            ["sink"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.sink_probe_failures = Counter(
            p + "sink_probe_failures",
            "Start-up probes of a sink that failed (the run waits, up to --wait-for-sinks).",
            ["sink"],
            registry=r,
        )
        self.http_responses = Counter(
            p + "http_responses",
            "HTTP answers (status code, or connect/timeout) per sink.",
            ["sink", "code"],
            registry=r,
        )
        self.emission_latency = BatchHistogram(
            p + "emission_latency_seconds",
            "Live: wall time from each record's event time to its hand-off to the sinks "
            "(the tick's latency budget, SYNTHSTREAM_LIVE__TICK_MS, plus the run's own lag).",
            "stream", EMISSION_BUCKETS,
        )  # fmt: skip
        r.register(self.emission_latency)
        self.redelivered = Counter(
            p + "records_redelivered",
            "Records sent again after an attempt whose outcome was unknown (a timeout after "
            "sending): the destination may hold them twice.",
            ["stream", "sink"],
            registry=r,
        )
        self.retries = Counter(
            p + "send_retries",
            "Send attempts that will be retried.",
            ["sink", "reason"],
            registry=r,
        )
        self.scheduler_lag = Histogram(
            p + "scheduler_lag_seconds",
            "How late the oldest record of a tick was generated "
            "(wall time minus due time; live mode).",
            ["stream"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.target_rate = Gauge(
            p + "target_rate_records_per_second",
            "Intended rate of this process.",
            ["stream"],
            registry=r,
        )
        self.achieved_rate = Gauge(
            p + "achieved_rate_records_per_second",
            "Generated records/s over the last 10 s of wall time.",
            ["stream"],
            registry=r,
        )
        self.control_actions = Counter(
            p + "control_actions",
            "Live control's actions: settings (what=set) and episodes started (what=kind).",
            ["stream", "what"],
            registry=r,
        )
        self.entities = Gauge(
            p + "entities",
            "Entities of this process (its shard).",
            ["stream"],
            registry=r,
        )
        self.event_time = Gauge(
            p + "event_time_seconds",
            "Event time the scheduler has reached (Unix seconds).",
            registry=r,
        )
        self.live_behind = Gauge(
            p + "live_behind_seconds",
            "How far a live run's event time is behind the wall clock (0: keeping up).",
            registry=r,
        )
        self.build = Info(p + "build", "Version of synthstream.", registry=r)
        self.build.info({"version": __version__, "python": platform.python_version()})
        self._windows: dict[str, RateWindow] = {}
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._kinds = KindCollector()
        r.register(self._kinds)

    def watch_kinds(self, counts: KindCounts) -> None:
        """Export the engine's generated records by kind (event types, fraud patterns)."""
        self._kinds.counts = counts

    # ------------------------------------------------------------ observable events
    # Each event a user may need to see is one method here: it counts and, where a person
    # should read it, logs (repeats of a kind fold into one line with a count, see logs).

    def records_failed(
        self, stream: str, sink: str, reason: str, records: int, error: str, quiet: bool = False
    ) -> None:
        """Records a sink will never get. ``quiet``: counted, not logged (a reader that left
        on purpose, e.g. ``| head``)."""
        self.child(self.failed, stream, sink, reason).inc(records)
        if not quiet:
            log.error("records_failed", stream=stream, sink=sink, records=records,
                      reason=reason, error=error)  # fmt: skip

    def send_retried(
        self, stream: str, sink: str, reason: str, records: int, attempt: int, delay_s: float,
        error: str,
    ) -> None:  # fmt: skip
        """A send failed in a way worth another attempt, which comes after ``delay_s``."""
        self.child(self.retries, sink, reason).inc()
        log.warning("send_retry", stream=stream, sink=sink, records=records, attempt=attempt,
                    delay_s=round(delay_s, 3), reason=reason, error=error)  # fmt: skip

    def http_answered(
        self, sink: str, code: str, rejected: dict[str, object] | None = None
    ) -> None:
        """An HTTP sink's answer (a status, or how it failed: timeout, refused); a rejection
        (a 4xx that no retry can fix) is also logged with what the server said."""
        self.child(self.http_responses, sink, code).inc()
        if rejected is not None:
            log.error("http_rejected", sink=sink, **rejected)

    def sink_unreachable(self, sink: str, error: str, waiting_s: float, first: bool) -> None:
        """A sink's start-up probe failed (logged once per wait, counted each time)."""
        self.child(self.sink_probe_failures, sink).inc()
        if first:
            log.warning("sink_unreachable", sink=sink, error=error, waiting_s=waiting_s)

    def observe_generated(self, stream: str, count: int, now_s: float) -> None:
        deferred = self.deferred
        deferred.inc(self.child(self.generated, stream), count)
        window = self._windows.get(stream)
        if window is None:
            window = self._windows[stream] = RateWindow(10.0)
        deferred.set(self.child(self.achieved_rate, stream), window.add(now_s, count))

    def rate_now(self, stream: str, now_s: float) -> float:
        """Generated records/s over the last 10 s (0 before any)."""
        window = self._windows.get(stream)
        return 0.0 if window is None else window.add(now_s, 0)

    def child(self, metric: Labelled, *labels: str) -> Labelled:
        """``metric.labels(*labels)``, looked up once: live ticks ask many times a second."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0 when it was never set): for tests and the summary."""
        sample = self.registry.get_sample_value(name, labels or {})
        return 0.0 if sample is None else sample

    def total(self, name: str, labels: dict[str, str]) -> float:
        """The sum of a sample over every other label (``failed`` over all its reasons)."""
        return sum(
            sample.value
            for metric in self.registry.collect()
            for sample in metric.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )


class KindCollector(Collector):
    """``synthstream_records_by_kind_total{stream, kind}``, read at scrape time from what the
    engine counts as it hands records on (on the loop that serves /metrics)."""

    def __init__(self) -> None:
        self.counts = KindCounts()

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "synthstream_records_by_kind",
            "Generated records by domain kind (event type, fraud pattern), before faults.",
            labels=["stream", "kind"],
        )
        for (stream, kind), value in sorted(self.counts.counts.items()):
            family.add_metric([stream, kind], value)
        yield family


class RateWindow:
    """Counts over a sliding window of wall time, in one-second buckets."""

    def __init__(self, span_s: float) -> None:
        self.span = span_s
        self.buckets: deque[tuple[int, int]] = deque()
        self.total = 0
        self.start: float | None = None

    def add(self, now_s: float, count: int) -> float:
        if self.start is None:
            self.start = now_s
        second = int(now_s)
        if self.buckets and self.buckets[-1][0] == second:
            self.buckets[-1] = (second, self.buckets[-1][1] + count)
        else:
            self.buckets.append((second, count))
        self.total += count
        while self.buckets and self.buckets[0][0] <= second - self.span:
            self.total -= self.buckets.popleft()[1]
        covered = min(self.span, max(now_s - self.start, 1.0))
        return self.total / covered
