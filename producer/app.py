"""The run: build everything from settings, schedule, deliver, shut down, account.

One task group owns every task. The scheduler is one loop for all streams: it asks each
stream's rate model for the records due since its last tick, generates them as one batch,
injects faults and hands the batch to each of the stream's routes. Live runs tick on wall
time within a latency budget, ``live.tick_ms`` (20 ms): a wake comes when the first record
due has waited that long (and no sooner than that after the last wake), and takes every
record due by then, at its exact event time; the cost is per wake, not per record, and at
low rates one wake takes what several would have. The ticks of the next quarter second are
prepared in one go (generated, through the faults, encoded where a sink can: producer.ticks)
and a wake only hands over what is due. Backfills tick
through event time in chunks as fast as the queues accept them, or at ``speed`` times real
time, and may hand over to live at "now" with the same entity state. On a stop (signal,
duration, max records, end of a backfill) the scheduler stops first, the queues drain
because their input ended, and the sinks close, all under one deadline; the exit status
says whether anything stayed undelivered.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import sys
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from producer.clock import Clock, Stopper, WallClock
from producer.config import Settings
from producer.delivery import Route, backoff_s, drain
from producer.errors import SinkUnreachable
from producer.faults import FaultOutput
from producer.generators import Lookahead
from producer.logs import progress_bar, progress_text, quiet
from producer.metrics import Metrics
from producer.plugins import SinkContext, sink_kinds
from producer.records import KindCounts
from producer.server import MetricsServer
from producer.sink import Payload, Sink, SinkError
from producer.streams import Channel, Stream, build_stream
from producer.ticks import CATCH_UP_RECORDS, Prepared, plan_ticks, prepare, restore

if TYPE_CHECKING:
    from tqdm import tqdm

log = structlog.get_logger("synthstream")

BACKFILL_CHUNK_RECORDS = 200_000
PROGRESS_S = 0.5  # a worker tells its parent how far its backfill is this often
MAX_CHUNK_MS = 31 * 86_400_000  # sparse streams (hourly data sets) still tick in big chunks
BEHIND_WARN_MS = 2_000  # a live run this far behind the wall clock says so, once
EXIT_OK = 0
EXIT_UNDELIVERED = 1


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def destinations(settings: Settings, sink: str) -> dict[str, str]:
    """Each channel's address on ``sink`` (a topic, a Kinesis stream, a path, a table): the
    sink's settings decide, with the stream's own default (``SinkSettings.address``)."""
    sink_settings = settings.sink(sink)
    out = {}
    for stream in settings.streams:
        stream_settings = settings.stream(stream)
        for channel in stream_settings.channels(stream):
            suggested = stream_settings.destination(sink, channel)
            out[channel] = sink_settings.address(stream, channel, suggested)
    return out


def build_sinks(
    settings: Settings, names: Iterable[str], metrics: Metrics | None = None,
    clock: Clock | None = None,
) -> dict[str, Sink]:  # fmt: skip
    shard = settings.shard_spec
    suffix = "" if shard.count == 1 else f"-shard{shard.index}of{shard.count}"
    sinks: dict[str, Sink] = {}
    for name in dict.fromkeys(names):
        context = SinkContext(destinations(settings, name), suffix, settings.out, metrics,
                              clock or WallClock())  # fmt: skip
        sinks[name] = settings.sink(name).build(context)
    return sinks


CLOSE_TIMEOUT_S = 5.0  # a sink's close (a producer's flush) past the drain: bounded


async def _close(name: str, sink: Sink) -> None:
    """Close a sink within ``CLOSE_TIMEOUT_S``: a broker that is gone cannot hold the exit."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await sink.aclose()
    except TimeoutError:
        log.warning("sink_close_timed_out", sink=name, after_s=CLOSE_TIMEOUT_S)


@dataclass
class Outcome:
    exit_code: int
    generated: int
    undelivered: int


class Engine:
    def __init__(
        self, settings: Settings, metrics: Metrics | None = None,
        sinks: dict[str, Sink] | None = None, clock: Clock | None = None,
    ) -> None:  # fmt: skip
        """``sinks`` replaces the sinks built from settings (by name), e.g. in tests; ``clock``
        is the only source of "now" (the wall clock unless given)."""
        self.settings = settings
        self.clock = clock or WallClock()
        self.metrics = metrics or Metrics()
        backfill = settings.backfill  # (the event time the run starts at: a live run's now)
        origin = None if backfill.enabled and backfill.start else self.clock.now_ms()
        self.streams: list[Stream] = [build_stream(name, settings, origin)
                                      for name in settings.streams]  # fmt: skip
        for stream in self.streams:  # live ticks take slices of what was made ahead
            stream.source = Lookahead(stream.source, settings.live.lookahead_ms)
        self.kinds = KindCounts()
        sink_names = [s for name in settings.streams for s in settings.stream(name).sinks]
        self.sinks = (
            sinks
            if sinks is not None
            else build_sinks(settings, sink_names, self.metrics, self.clock)
        )
        for stream in self.streams:
            for channel in stream.channels:
                for kind in channel.faults.kinds:  # each stage's kinds on /metrics from 0
                    self.metrics.child(self.metrics.faults_injected, channel.name, kind)
                for sink_name in dict.fromkeys(settings.stream(stream.name).sinks):
                    channel.routes.append(
                        Route(
                            channel.name,
                            stream.source.channels[channel.name],
                            self.sinks[sink_name],
                            settings.delivery,
                            self.metrics,
                            self.clock,
                        )
                    )
            for channel_name, count in stream.source.entities().items():
                self.metrics.entities.labels(channel_name).set(count)
            for channel in stream.channels:  # every channel's series from the start, at 0
                for counter in (self.metrics.dropped_by_fault, self.metrics.duplicated_by_fault):
                    self.metrics.child(counter, channel.name)
        self.metrics.watch_kinds(self.kinds)
        self.generated = 0  # records the sources made (what --max-records counts)
        self.counted = 0  # ... plus fault duplicates: the summary's and /metrics' generated
        self.cursor_ms = 0
        self.last_made_ms = 0  # the event time of the latest record made
        self.worker = False  # a worker of --workers: its parent logs the port that answers
        self.bar: tqdm[Any] | None = None  # a backfill's progress bar, open until the end
        self.live = False
        self.nudged: asyncio.Future[None] | None = None  # done: wake now (a control action)
        # A worker of ``--workers`` tells its parent where it is (producer.workers).
        self.report: Callable[[dict[str, Any]], None] = lambda message: None
        self.summary: dict[str, Any] = {}
        self.behind_ms = 0  # a live run: how far behind the wall clock it is
        self._warned_behind = False

    @property
    def channels(self) -> list[Channel]:
        return [channel for stream in self.streams for channel in stream.channels]

    @property
    def routes(self) -> list[Route]:
        return [route for channel in self.channels for route in channel.routes]

    # ------------------------------------------------------------------ scheduling
    async def _tick(self, t0: int, t1: int) -> bool:
        """Generate and route everything due in ``[t0, t1)`` (a backfill's chunk). False once
        max_records is hit."""
        limit = self.settings.max_records
        tick = prepare(self.streams, t0, t1, None if limit is None else limit - self.generated)
        await self._hand_over(tick, live=False)
        return limit is None or self.generated < limit

    async def _hand_over(self, tick: Prepared, live: bool) -> None:
        """Count a prepared tick's records and queue them on the routes."""
        for out in tick.outputs:
            batch, channel = out.made, out.channel
            if batch is not None:
                self.generated += len(batch)
                self.kinds.add(channel.name, out.kinds, batch)
                if len(batch) and self.settings.max_records is not None:  # (what it needs:
                    # a numpy max on a live tick's few records is a cold 40 us)
                    self.last_made_ms = max(self.last_made_ms, int(batch.time_ms.max()))
            lag_of = int(batch.time_ms[0]) if live and batch is not None and len(batch) else None
            await self._route(channel, out.result, lag_of, out.ahead)
        self.metrics.deferred.set(self.metrics.event_time, tick.t1 / 1000)

    async def _route(
        self, channel: Channel, result: FaultOutput, lag_of: int | None,
        ahead: dict[Route, Payload] | None = None,
    ) -> None:  # fmt: skip
        now = self.clock.now_ms() / 1000
        m = self.metrics
        name = channel.name
        # Counted in one synchronous step, so /metrics never sees a half-done transition.
        deferred = m.deferred  # (counts per tick: added up at the scrape, see Deferred)
        if result.generated:
            self.counted += result.generated
            m.observe_generated(name, result.generated, now)
            if result.dropped:
                deferred.inc(m.child(m.dropped_by_fault, name), result.dropped)
            if result.duplicated:
                deferred.inc(m.child(m.duplicated_by_fault, name), result.duplicated)
        for entry in result.truth:
            deferred.inc(m.child(m.faults_injected, name, entry.kind), len(entry.records))
        channel.record_ground_truth(result.truth)
        for route in channel.routes:
            route.accept(result.accepted)
        if lag_of is not None:
            deferred.observe(m.child(m.scheduler_lag, name), max(0.0, now - lag_of / 1000))
            if len(result.batch):  # live: how late each record is handed to the sinks
                m.emission_latency.observe_later(name, now, result.batch.time_ms)
        if len(result.batch):
            for route in channel.routes:
                left = await route.put(result.batch, ahead.get(route) if ahead else None)
                if left is not None:  # a stop came while waiting for room in the queue
                    route.fail(len(left), "stopped", "the run stopped before these were queued",
                               quiet=route.reader_gone)  # fmt: skip

    async def _release_held(self) -> None:
        """At the end of a run, what faults still hold (late, replayed) goes out now."""
        for channel in self.channels:
            held = channel.faults.flush()
            if held is not None:
                await self._route(channel, FaultOutput(held), None)

    def nudge(self) -> None:
        if self.nudged is not None and not self.nudged.done():
            self.nudged.set_result(None)

    def floor_ms(self) -> int:
        """The earliest event time still to be made: what a control action may change."""
        return max(self.cursor_ms, self.clock.now_ms()) if self.live else self.cursor_ms

    def _next_due(self, t: int) -> int:
        return min(stream.source.next_due(t) for stream in self.streams)

    def _target_rates(self, t: int) -> dict[str, float]:
        return {k: v for stream in self.streams for k, v in stream.source.target_rates(t).items()}

    def _catch_up_ms(self, t: int, tick_ms: int) -> int:
        """The event time that holds about ``CATCH_UP_RECORDS`` at the target rates (at least
        a tick): the most a live tick takes when the run is behind."""
        rate = sum(self._target_rates(t).values())
        return max(tick_ms, round(CATCH_UP_RECORDS / max(rate, 1e-3) * 1000))

    def _set_targets(self, t: int) -> None:
        for channel, rate in self._target_rates(t).items():
            self.metrics.target_rate.labels(channel).set(rate)

    async def run_live(self, stopper: Stopper, start_ms: int, until_ms: int | None) -> None:
        cursor = start_ms  # handed over up to here
        self.live = True
        tick_ms = round(self.settings.live.tick_ms)
        limit = self.settings.max_records
        last_wake = targets_at = self.clock.now_ms()
        span_ms = self._catch_up_ms(cursor, tick_ms)
        plan: deque[Prepared] = deque()  # prepared, not handed over yet (producer.ticks)
        while not stopper.stopped:
            now = self.clock.now_ms()
            if plan:
                wake = plan[0].t1 - 1
            else:  # (wake: the first one not prepared, when nothing is due that soon)
                left = None if limit is None else limit - self.generated
                wake = plan_ticks(plan, self.streams, self._next_due, cursor, last_wake, now,
                                  until_ms, left, tick_ms, span_ms)  # fmt: skip
                wake = plan[0].t1 - 1 if plan else max(wake, now + 1)
            if wake > now:
                # Sleep in slices of at most 1 s so that targets and rates stay fresh.
                self.nudged = asyncio.get_running_loop().create_future()
                await stopper.sleep(min(wake - now, 1000) / 1000, self.nudged)
                continue
            if now >= targets_at:  # rates move by the hour: once a second is fresh enough
                self._set_targets(plan[0].t1)
                span_ms = self._catch_up_ms(plan[0].t1, tick_ms)
                targets_at = now + 1000
            while plan and plan[0].t1 - 1 <= now and not stopper.stopped:
                tick = plan.popleft()
                await self._hand_over(tick, live=True)
                cursor = self.cursor_ms = tick.t1
                last_wake = max(last_wake, tick.t1 - 1)
            wall = self.clock.now_ms()
            self._behind(wall - cursor, tick_ms)
            if wall - cursor > tick_ms:  # behind: a turn of the loop between
                await asyncio.sleep(0)  # bursts (/metrics, signals, the sinks' lanes)
            if limit is not None and self.generated >= limit:
                stopper.stop("max_records")  # (the stream is whole up to its last record)
                self.cursor_ms = min(cursor, self.last_made_ms + 1)
            elif until_ms is not None and (cursor >= until_ms or wall >= until_ms + tick_ms):
                stopper.stop("duration")  # (wall time: a run that is behind stops too)
        if plan:  # prepared, not due when the run stopped: as if never made
            restore(plan[0].before)

    def _behind(self, behind_ms: int, tick_ms: int) -> None:
        """How far the live run is behind the wall clock: on /metrics, and one warning line
        the first time it is more than ``BEHIND_WARN_MS`` (it was asked for more than this
        process makes)."""
        behind_ms = max(0, behind_ms - tick_ms)  # (a tick's wait is the latency budget)
        self.behind_ms = behind_ms
        self.metrics.deferred.set(self.metrics.live_behind, behind_ms / 1000)
        if behind_ms > BEHIND_WARN_MS and not self._warned_behind:
            self._warned_behind = True
            rate = sum(self._target_rates(self.cursor_ms).values())
            log.warning("live_behind", behind_s=round(behind_ms / 1000, 1),
                        target_per_s=round(rate, 1), hint="asked for more than this process "
                        "makes: fewer entities, a lower rate or --workers")  # fmt: skip

    async def run_backfill(
        self,
        stopper: Stopper,
        start_ms: int,
        end_ms: int | None,
        speed: float | None,
        progress: bool,
    ) -> int:
        """Tick through ``[start, end)`` of event time; with no end, until caught up to now."""
        self._set_targets(start_ms)
        rate = sum(max(r, 1e-3) for r in self._target_rates(start_ms).values())
        chunk = int(min(MAX_CHUNK_MS, max(1_000, BACKFILL_CHUNK_RECORDS / rate * 1000)))
        if speed is not None:
            chunk = max(1, min(chunk, int(speed * 100)))  # pace in ~0.1 s real-time steps
        total_ms = (end_ms if end_ms is not None else self.clock.now_ms()) - start_ms
        # The bar closes after the sinks do (Engine.run): its last line has every byte.
        bar = self.bar = progress_bar(total_ms, progress)
        started = reported_s = self.clock.monotonic()
        cursor, written = start_ms, 0
        while not stopper.stopped:
            end = end_ms if end_ms is not None else self.clock.now_ms()
            if cursor >= end:
                break
            t1 = min(cursor + chunk, end)
            if speed is not None:
                await stopper.sleep(
                    (t1 - start_ms) / 1000 / speed - (self.clock.monotonic() - started)
                )
                if stopper.stopped:
                    break
            more = await self._tick(cursor, t1)
            bar.update(t1 - cursor)
            now_s = self.clock.monotonic()
            if now_s >= reported_s + PROGRESS_S:
                written = self.bytes_written()
                self.report({"cursor_ms": t1, "records": self.counted, "bytes": written})
                reported_s = now_s
            bar.set_postfix_str(progress_text(iso(t1), self.counted, written), refresh=False)
            # Cut by --max-records within the chunk: whole up to its last record.
            cursor = t1 if more else min(t1, self.last_made_ms + 1)
            self.cursor_ms = cursor
            if not more:
                stopper.stop("max_records")
            await asyncio.sleep(0)
        return cursor

    # ------------------------------------------------------------------ lifecycle
    async def run(self, stopper: Stopper, server: MetricsServer | None = None) -> Outcome:
        s = self.settings
        for sink in self.sinks.values():
            with quiet("aiokafka"):
                await sink.open()  # ConfigError here: nothing has been generated yet
        try:
            await self._probe_sinks(stopper)
        except BaseException:
            for sink in self.sinks.values():
                await sink.aclose()
            raise
        started = self.clock.monotonic()
        backfill = s.backfill
        start_ms = (
            round(backfill.start.timestamp() * 1000)
            if backfill.enabled and backfill.start
            else self.clock.now_ms()
        )
        rates = self._target_rates(start_ms)
        streams = {}
        for st in self.streams:
            entities = st.source.entities()
            streams[st.name] = {
                "entities": next(iter(entities.values())) if len(entities) == 1 else entities,
                "sinks": list(dict.fromkeys(s.stream(st.name).sinks)),
            }
        window = {}
        if backfill.enabled and backfill.end:
            window["window_end"] = iso(round(backfill.end.timestamp() * 1000))
        log.info(
            "synthstream_started",
            mode="backfill" if backfill.enabled else "live",
            origin=iso(start_ms),
            **window,
            streams=streams,
            target_per_s={channel: round(rate, 3) for channel, rate in rates.items()},
            shard=s.shard,
            seed=s.seed,
            profile=s.profile,
            **({} if self.worker else {"metrics_port": server.port if server else None}),
        )
        log.debug("synthstream_settings", settings=s.redacted())  # all of them: `config`
        for route in self.routes:  # `| head`: the reader chose to stop, so do we
            route.on_reader_gone = functools.partial(stopper.stop, "output_closed")
            route.stop = stopper.requested  # waiting for room ends at a stop
        # What start-up made (settings, modules, catalogs, lookup tables) lives as long as
        # the run: out of the collector's way, a collection looks at what ticks make only
        # (the collector had been a quarter of a live run's CPU, walking all of it).
        gc.collect()
        gc.freeze()
        try:
            async with asyncio.TaskGroup() as group:
                workers = [group.create_task(route.run()) for route in self.routes]
                try:
                    await self._schedule(stopper, start_ms)
                    await self._release_held()
                finally:
                    await drain(self.routes, workers, stopper,
                                self.settings.delivery.shutdown_timeout_s)  # fmt: skip
        finally:
            for name, sink in self.sinks.items():
                await _close(name, sink)
            if self.bar is not None:  # what the sinks wrote, to the last byte
                written = self.bytes_written()
                self.report({"cursor_ms": self.cursor_ms, "records": self.counted,
                             "bytes": written})  # fmt: skip
                self.bar.set_postfix_str(progress_text(iso(self.cursor_ms), self.counted,
                                                       written), refresh=False)  # fmt: skip
                self.bar.close()
        self._log_dataset()
        return self._summary(stopper, self.clock.monotonic() - started)

    async def _probe_sinks(self, stopper: Stopper) -> None:
        """Every network sink answers (as ``synthstream check`` asks) before a record is made,
        or the run ends at once with one line and status 1; ``wait_for_sinks_s`` waits that
        long for it, probing with backoff (a stop signal ends the wait)."""
        wait = self.settings.wait_for_sinks_s
        deadline = self.clock.monotonic() + wait
        for name, sink in self.sinks.items():
            if not sink_kinds()[name].NETWORK:
                continue
            attempt = 0
            while True:
                with quiet("aiokafka", "botocore", "httpx"):
                    try:
                        await sink.check()
                        break
                    except Exception as exc:
                        error = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
                        said = exc if isinstance(exc, SinkError) else SinkError(error)
                remaining = deadline - self.clock.monotonic()
                if remaining <= 0 or stopper.stopped or not said.waitable:
                    hint = said.hint or (f"waited {wait:g} s" if wait else
                                         "start it, or wait for it with --wait-for-sinks "
                                         "SECONDS")  # fmt: skip
                    raise SinkUnreachable(f"{name} sink not reachable ({error}); {hint}")
                self.metrics.sink_unreachable(name, error, wait, first=attempt == 0)
                await stopper.sleep(min(remaining, backoff_s(attempt, 0.2, 5.0) + 0.05))
                attempt += 1
            if attempt:
                log.info("sink_reachable", sink=name, after_attempts=attempt + 1)

    def bytes_written(self) -> int:
        """What the sinks that count bytes (files, S3) have written so far."""
        return sum(int(sink.written().get("bytes", 0)) for sink in self.sinks.values())

    def _log_dataset(self) -> None:
        """A named data set (``backfill.dataset``, a stream's preset): one line saying what
        was written, from what the sinks say they wrote."""
        backfill = self.settings.backfill
        if backfill.dataset is None:
            return
        assert backfill.start is not None
        written = {name: sink.written() for name, sink in self.sinks.items()}
        files = [f for report in written.values() for f in report.get("files", [])]
        size = sum(int(report.get("bytes", 0)) for report in written.values())
        log.info(
            "dataset_written",
            dataset=backfill.dataset,
            records=self.generated,
            entities={st.name: sum(st.source.entities().values()) for st in self.streams},
            date_range=[backfill.start.isoformat(), (backfill.end or backfill.start).isoformat()],
            files=files,
            size_mb=round(size / 2**20, 1),
        )

    async def _schedule(self, stopper: Stopper, start_ms: int) -> None:
        s = self.settings
        backfill = s.backfill
        cursor = start_ms
        if backfill.enabled:
            end_ms = round(backfill.end.timestamp() * 1000) if backfill.end else None
            if end_ms is None and not backfill.then_live:
                end_ms = self.clock.now_ms()
            show = backfill.shows_progress(sys.stderr.isatty())
            cursor = await self.run_backfill(stopper, start_ms, end_ms, backfill.speed, show)
            if not backfill.then_live or stopper.stopped:
                if not stopper.stopped:  # (a stop again would count as a second signal)
                    stopper.stop("backfill_complete")
                return
            if self.bar is not None:  # live from here: the bar ends with the backfill
                self.bar.close()
                self.bar = None
            log.info("backfill_caught_up", event_time=iso(cursor), records=self.generated)
        until = None if s.duration_s is None else self.clock.now_ms() + round(s.duration_s * 1000)
        self._set_targets(cursor)
        self.report({"live_ms": cursor})
        await self.run_live(stopper, cursor, until)

    def _summary(self, stopper: Stopper, elapsed_s: float) -> Outcome:
        m = self.metrics
        streams = {}
        undelivered = 0
        for channel in self.channels:
            label = {"stream": channel.name}
            per_sink = {}
            for route in channel.routes:
                # One ledger: the summary reads the counters /metrics shows.
                sink_labels = {"stream": channel.name, "sink": route.sink.name}
                delivered = int(m.value("synthstream_records_delivered_total", sink_labels))
                failed = int(m.total("synthstream_records_failed_total", sink_labels))
                in_flight = int(m.value("synthstream_records_in_flight", sink_labels))
                if not route.reader_gone:  # what a closed pipe refused was not wanted
                    undelivered += failed + in_flight
                per_sink[route.sink.name] = {
                    "delivered": delivered,
                    "failed": failed,
                    "in_flight": in_flight,
                }
                redelivered = int(m.value("synthstream_records_redelivered_total", sink_labels))
                if redelivered:
                    per_sink[route.sink.name]["redelivered"] = redelivered
            streams[channel.name] = {
                "generated": int(m.value("synthstream_records_generated_total", label)),
                "dropped_by_fault": int(
                    m.value("synthstream_records_dropped_by_fault_total", label)
                ),
                "duplicated_by_fault": int(
                    m.value("synthstream_records_duplicated_by_fault_total", label)
                ),
                "sinks": per_sink,
            }
        code = EXIT_OK if undelivered == 0 else EXIT_UNDELIVERED
        self.summary = {
            "reason": stopper.reason or "stopped",
            "elapsed_s": round(elapsed_s, 3),
            "event_time_reached": iso(self.cursor_ms) if self.cursor_ms else None,
            **({"behind_s": round(self.behind_ms / 1000, 3)} if self.live else {}),
            "streams": streams,
            "undelivered": undelivered,
            "exit_code": code,
        }
        log.info("synthstream_finished", **self.summary)
        return Outcome(code, self.generated, undelivered)
