"""Ticks made ahead of their hand-over (producer.ticks): undoing what was prepared and not
handed over, lines encoded ahead equal to lines encoded at the send, and emission latency
kept for later equal to latency observed at once."""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
from prometheus_client import generate_latest

from producer.config import load_settings
from producer.encoding import encode_jsonl
from producer.metrics import EMISSION_BUCKETS, BatchHistogram, Metrics
from producer.sink import Payload
from producer.streams import Stream, build_stream
from producer.ticks import PLAN_RECORDS, Prepared, plan_ticks, prepare, restore
from sinks.file import FileSink, FileSinkSettings

START = round(datetime(2024, 12, 31, 23, 59, 58, tzinfo=UTC).timestamp() * 1000)  # New Year
LATE = {"late_rate": 0.5, "late_mean_s": 0.5, "late_max_s": 2.0, "duplicate_rate": 0.1}


def stream() -> Stream:
    tree = {"streams": "bme280", "seed": 3,
            "bme280": {"devices": 50, "rate": {"interval_s": 1}, "faults": LATE}}  # fmt: skip
    return build_stream("bme280", load_settings(tree, environ={}))


def planned(s: Stream, count: int) -> list[Prepared]:
    return [prepare([s], START + 20 * i, START + 20 * (i + 1), None) for i in range(count)]


def held_keys(s: Stream) -> list[int]:
    flushed = s.channels[0].faults.flush()
    return [] if flushed is None else sorted(flushed.key.tolist())


def test_a_stop_puts_the_holdings_back_as_after_the_last_tick_handed_over() -> None:
    handed = held_keys_after(40)
    s = stream()
    ticks = planned(s, 120)  # 80 ticks prepared beyond what was handed over
    restore(ticks[40].before)  # what the first tick not handed over found
    assert held_keys(s) == handed
    again = stream()
    planned(again, 120)
    assert held_keys(again) != handed, "the prepared ticks did hold other records"


def held_keys_after(count: int) -> list[int]:
    s = stream()
    planned(s, count)
    keys = held_keys(s)
    assert keys, "late records are held across ticks"
    return keys


def test_a_stop_before_any_tick_was_handed_over_leaves_nothing_held() -> None:
    s = stream()
    ticks = planned(s, 100)
    restore(ticks[0].before)
    assert held_keys(s) == []


def test_lines_encoded_ahead_are_the_lines_encoded_at_the_send(tmp_path: Path) -> None:
    s = stream()
    sink = FileSink(FileSinkSettings(dir=tmp_path))
    schema = s.source.channels["bme280"]
    seen = 0
    for tick in planned(s, 200):
        for out in tick.outputs:
            batch = out.result.batch
            sink.encode(batch, schema)
            fresh = batch.take(np.arange(len(batch)))  # the same records, nothing encoded
            assert not fresh.memo
            assert encode_jsonl(schema, batch) == encode_jsonl(schema, fresh)
            seen += len(batch)
    assert seen > 100


def test_a_ticks_records_on_both_sides_of_a_roll_go_to_two_files(tmp_path: Path) -> None:
    """A live tick is written in one piece when it falls in one file's window, and cut at
    the roll when it does not, whatever order its records are in (a late one first)."""
    s = stream()
    sink = FileSink(FileSinkSettings(dir=tmp_path, roll_interval_s=1))
    schema = s.source.channels["bme280"]
    made = prepare([s], START + 900, START + 1_100, None).outputs[0].result.batch
    batch = made.take(np.argsort(-made.time_ms, kind="stable"))  # across the roll, reversed
    assert len(batch) <= 256
    assert len({t // 1000 for t in batch.time_ms.tolist()}) == 2
    sink.send_now(Payload(batch, schema))
    first = made.take(slice(0, 2))  # both in the first second: into the file open for it
    assert {t // 1000 for t in first.time_ms.tolist()} == {START // 1000}
    sink.send_now(Payload(first, schema))
    asyncio.run(sink.aclose())
    by_window = {}
    for f in (tmp_path / "bme280").iterdir():
        times = [orjson.loads(line)["timestamp"] for line in f.read_bytes().splitlines()]
        assert len({t[:19] for t in times}) == 1, "one file, one second"
        by_window[times[0][:19]] = len(times)
    second = sum(1 for t in made.time_ms.tolist() if t // 1000 == START // 1000 + 1)
    assert sorted(by_window.values()) == sorted([len(made) - second + 2, second])


def test_latency_kept_for_later_equals_latency_observed_at_once() -> None:
    now_s = [START / 1000 + 0.004 * i for i in range(50)]
    times = [np.arange(START + i, START + i + 5 * (i % 4), 5, dtype=np.int64) for i in range(50)]
    at_once = BatchHistogram("a", "a", "stream", EMISSION_BUCKETS)
    later = BatchHistogram("a", "a", "stream", EMISSION_BUCKETS)
    later.FOLD_AT = 7  # folds while observing, and the rest at the scrape
    for now, t in zip(now_s, times, strict=True):
        at_once.observe_many("x", np.maximum(0.0, now - t / 1000.0))
        later.observe_later("x", now, t)
    want, got = next(iter(at_once.collect())), next(iter(later.collect()))
    assert [(s.name, s.labels, s.value) for s in got.samples] == [
        (s.name, s.labels, s.value) for s in want.samples
    ]


def test_counts_deferred_to_the_scrape_read_as_counts_made_at_once() -> None:
    """A live tick's counters, gauges and histograms, added up when the registry is read
    (and folded while observing once enough wait), read as if made one by one."""
    at_once, later = Metrics(), Metrics()
    later.deferred.FOLD_AT = 7
    for i in range(50):
        lag = 0.004 * (i % 9)
        at_once.child(at_once.generated, "s").inc(i)
        later.deferred.inc(later.child(later.generated, "s"), i)
        at_once.child(at_once.scheduler_lag, "s").observe(lag)
        later.deferred.observe(later.child(later.scheduler_lag, "s"), lag)
        at_once.event_time.set(i)
        later.deferred.set(later.event_time, i)
        if i == 30:  # a scrape in between sees what was counted so far, and only once
            assert ours(later) == ours(at_once)
    assert later.value("synthstream_records_generated_total", {"stream": "s"}) == 1225
    assert ours(later) == ours(at_once)
    assert b"synthstream_scheduler_lag_seconds_count" in b"".join(ours(later))


def ours(metrics: Metrics) -> list[bytes]:
    """The product's own series on a scrape (not the process's CPU and memory)."""
    body = generate_latest(metrics.registry).splitlines()
    return [line for line in body if line.startswith(b"synthstream_") and b"_created" not in line]


def test_a_run_that_is_behind_catches_up_in_bounded_ticks_and_bursts() -> None:
    """Ten seconds behind at 100,000 records/s: ticks of at most ``span_ms`` of event time,
    a burst ends once it made ``PLAN_RECORDS`` (then the loop turns), and bursts planned one
    after another make exactly the records of the window, in order, as one tick does."""
    fleet = {"devices": 100_000, "rate": {"interval_s": 1},
             "faults": {"drop_rate": 0, "duplicate_rate": 0}}  # fmt: skip
    tree = {"streams": "bme280", "seed": 3, "bme280": fleet}
    settings = load_settings(tree, environ={})
    behind, now, span = build_stream("bme280", settings), START + 10_000, 400
    plan: deque[Prepared] = deque()
    cursor, keys, bursts = START, [], 0
    while cursor < now:
        wake = plan_ticks(plan, [behind], behind.source.next_due, cursor, cursor - 1, now,
                          None, None, 20, span)  # fmt: skip
        assert plan, "each burst makes progress"
        assert wake <= now or now - cursor < 1_000, "behind: the next burst is due at once"
        burst = 0
        while plan:
            tick = plan.popleft()
            made = sum(len(out.made) for out in tick.outputs if out.made is not None)
            assert tick.t1 - cursor <= span
            burst += made
            keys += [k for out in tick.outputs for k in out.result.batch.key.tolist()]
            cursor = tick.t1
        assert burst <= PLAN_RECORDS + span * 100, "a burst stops at about its records"
        bursts += 1
    assert bursts >= 10 * 100_000 // (PLAN_RECORDS + span * 100)
    at_once = prepare([build_stream("bme280", settings)], START, cursor, None)
    assert keys == [k for out in at_once.outputs for k in out.result.batch.key.tolist()]
