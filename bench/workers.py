"""What ``--workers`` buys on this machine: one worker against two, measured in turn.

1. Backfill: 1,000 BME280 devices (every 10 s) over one day to Parquet, wall time of the whole
   command (start-up included), best of ``ROUNDS`` alternating. Target: two workers in at most
   0.65x the time of one.
2. Live: the records/s a live run delivers when asked for more than it can make (BME280,
   ``LIVE_DEVICES`` devices every second), to files and to a real Kafka-protocol broker,
   from the run's own /metrics (one endpoint for all workers) over ``MEASURE_S`` after
   ``WARMUP_S``. Printed with the ratio of two workers to one.

    python -m bench.workers [--skip-kafka]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import nullcontext
from typing import Any

from bench.child import run_child
from bench.live import free_port, generated, scrape

ROUNDS = 2
LIVE_DEVICES = 1_200_000
WARMUP_S = 6.0
MEASURE_S = 12.0
BACKFILL = {"SYNTHSTREAM_BME280__DEVICES": "1000", "SYNTHSTREAM_SINKS__FILE__FORMAT": "parquet",
            "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "10"}  # fmt: skip


def delivered(samples: dict[str, float]) -> float:
    return sum(v for k, v in samples.items() if k.startswith("synthstream_records_delivered_total"))


def env(extra: dict[str, str]) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHSTREAM_")}
    return {**clean, "SYNTHSTREAM_LOG__FORMAT": "json", **extra}


def backfill(workers: int) -> tuple[float, float]:
    """(wall s, CPU s: user + sys of the command and of the workers it waited for)."""
    with tempfile.TemporaryDirectory() as out:
        _, elapsed, usage = run_child(
            [sys.executable, "-m", "producer", "run", "--backfill", "--start", "2024-03-01",
             "--end", "2024-03-02", "--sinks", "file", "--out", out, "--metrics-port", "0",
             "--workers", str(workers)],
            env(BACKFILL),
        )  # fmt: skip
        return elapsed, usage.ru_utime + usage.ru_stime


def live(workers: int, sink: str, extra: dict[str, str]) -> float:
    """Records/s the sink acknowledged over MEASURE_S."""
    import subprocess

    port = free_port()
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "producer", "run", "--sinks", sink, "--out", out,
             "--metrics-port", str(port), "--workers", str(workers)],
            env=env({"SYNTHSTREAM_BME280__DEVICES": str(LIVE_DEVICES),
                     "SYNTHSTREAM_BME280__RATE__INTERVAL_S": "1", **extra}),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:  # an outside process: poll its endpoint, within a deadline
                try:
                    if scrape(port).get("synthstream_workers", 1) >= 1 and generated(scrape(port)):
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the producer did not start generating")
                time.sleep(0.2)
            time.sleep(WARMUP_S)
            first, t0 = scrape(port), time.monotonic()
            time.sleep(MEASURE_S)
            last, t1 = scrape(port), time.monotonic()
        finally:
            proc.terminate()
            proc.wait(timeout=120)
    return (delivered(last) - delivered(first)) / (t1 - t0)


def main(argv: list[str]) -> None:
    print(f"workers on {len(os.sched_getaffinity(0))} usable cores; one and two workers in turn")
    times: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    for _ in range(ROUNDS):
        for workers in (1, 2):
            times[workers].append(backfill(workers))
    (one, one_cpu), (two, two_cpu) = min(times[1]), min(times[2])
    print(f"backfill 1,000 BME280 x 1 day to Parquet (8,640,000 records, best of {ROUNDS}): "
          f"1 worker {one:.1f} s, 2 workers {two:.1f} s: {two / one:.2f}x the time "
          "(target <= 0.65x)")  # fmt: skip
    cores = len(os.sched_getaffinity(0))
    busy = one_cpu / one
    print(f"  1 worker keeps {busy:.2f} cores busy (CPU {one_cpu:.1f} s over {one:.1f} s: its "
          f"loop generates while a thread encodes Parquet); 2 workers spend {two_cpu:.1f} s of "
          f"CPU ({two_cpu / one_cpu - 1:+.0%}). On {cores} cores two workers take at least "
          f"{busy / cores:.2f}x the time of one (the same CPU spread over every core), "
          f"{two_cpu / cores / one:.2f}x with the CPU they add")  # fmt: skip
    brokers: list[tuple[str, Any, dict[str, str]]] = [("file", nullcontext(None), {})]
    if "--skip-kafka" not in argv:
        from tests.services import kafka_broker

        brokers.append(("kafka", kafka_broker(), {}))
    for sink, service, extra in brokers:
        with service as bootstrap:
            if bootstrap:
                extra = {"SYNTHSTREAM_SINKS__KAFKA__BOOTSTRAP_SERVERS": bootstrap}
            rates = {w: live(w, sink, extra) for w in (1, 2)}
        print(f"live to {sink}, asked for {LIVE_DEVICES:,}/s: 1 worker {rates[1]:,.0f} rec/s, "
              f"2 workers {rates[2]:,.0f} rec/s: {rates[2] / rates[1]:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
