"""Rate accuracy and scheduler lag of live runs at 33, 1,000 and 20,000 records/s.

Each run is the real engine in live mode (BME280 devices at a 10 s interval, as many devices
as the rate needs) for 60 s, delivering to a sink that JSON-encodes every record and notes
when it arrived. Printed per rate: records/s achieved in wall time after a 2 s warm-up, its
error against the target, scheduler lag p50/p99 (from the engine's own histogram) and
delivery lag p50/p99 (arrival at the sink minus due time, exact).
Targets: achieved within +/-0.5 % of target; lag p99 within the live tick (the latency
budget, ``SYNTHSTREAM_LIVE__TICK_MS``, 20 ms by default: records wait up to one tick) plus
5 ms.

    python -m bench.rate [SECONDS]
"""

from __future__ import annotations

import asyncio
import sys
import time

import numpy as np
import uvloop

from producer.app import Engine
from producer.clock import Stopper
from producer.config import load_settings
from producer.encoding import encode_jsonl
from producer.metrics import Metrics
from producer.sink import BaseSink, Payload, SinkLimits

WARMUP_S = 2.0


class TimingSink(BaseSink):
    """Encodes like a real JSON sink and notes arrival times."""

    name = "null"

    def __init__(self) -> None:
        self.limits = SinkLimits(max_records=10_000)
        self.arrivals: list[tuple[float, np.ndarray]] = []

    async def open(self) -> None:
        return None

    async def check(self) -> str:
        return "timing"

    async def send(self, payload: Payload) -> None:
        batch, schema = payload.batch, payload.schema
        encode_jsonl(schema, batch)
        self.arrivals.append((time.time(), batch.time_ms.copy()))

    async def aclose(self) -> None:
        return None


def histogram_quantile(metrics: Metrics, name: str, labels: dict[str, str], q: float) -> float:
    buckets: list[tuple[float, float]] = []
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name + "_bucket" and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                buckets.append((float(sample.labels["le"]), sample.value))
    buckets.sort()
    total = buckets[-1][1]
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return previous_bound
            share = (rank - previous_count) / max(count - previous_count, 1e-9)
            return previous_bound + (bound - previous_bound) * share
        previous_bound, previous_count = bound, count
    return previous_bound


async def one(rate: int, seconds: float) -> dict[str, float]:
    settings = load_settings(
        {
            "duration_s": seconds,
            "metrics": {"enabled": False},
            "log": {"level": "warning"},
            "delivery": {"linger_s": 0.0},
            "bme280": {
                "devices": rate * 10,
                "sinks": "null",
                "rate": {"interval_s": 10},
                "faults": {"drop_rate": 0, "duplicate_rate": 0},
            },
        }
    )
    sink = TimingSink()
    metrics = Metrics()
    engine = Engine(settings, metrics, sinks={"null": sink})
    started = time.time()
    await engine.run(Stopper())
    ended = started + seconds
    arrived = np.concatenate([np.full(t.size, at) for at, t in sink.arrivals])
    due = np.concatenate([t for _, t in sink.arrivals]) / 1000
    window = (arrived >= started + WARMUP_S) & (arrived < ended)
    achieved = window.sum() / (ended - started - WARMUP_S)
    delivery_lag = (arrived - due)[window] * 1000
    labels = {"stream": "bme280"}
    return {
        "target": float(rate),
        "achieved": float(achieved),
        "error_pct": float((achieved - rate) / rate * 100),
        "sched_p50_ms": histogram_quantile(
            metrics, "synthstream_scheduler_lag_seconds", labels, 0.5
        )
        * 1000,
        "sched_p99_ms": histogram_quantile(
            metrics, "synthstream_scheduler_lag_seconds", labels, 0.99
        )
        * 1000,
        "deliv_p50_ms": float(np.percentile(delivery_lag, 50)),
        "deliv_p99_ms": float(np.percentile(delivery_lag, 99)),
    }


def main() -> None:
    from producer import logs
    from producer.settings import LogSettings

    logs.configure(LogSettings(level="warning", format="json"))
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    print(f"live rate accuracy, {seconds:.0f} s per rate, BME280 at 10 s per device, JSON sink")
    print(
        f"{'target/s':>9} {'achieved/s':>11} {'error %':>8} {'sched p50':>10} {'sched p99':>10}"
        f" {'deliv p50':>10} {'deliv p99':>10}   (lags in ms)"
    )
    for rate in (33, 1_000, 20_000):
        r = uvloop.run(one(rate, seconds))
        print(
            f"{r['target']:>9,.0f} {r['achieved']:>11,.1f} {r['error_pct']:>+8.3f}"
            f" {r['sched_p50_ms']:>10.2f} {r['sched_p99_ms']:>10.2f}"
            f" {r['deliv_p50_ms']:>10.2f} {r['deliv_p99_ms']:>10.2f}"
        )
    print("targets: |error| <= 0.5 %, lag p99 <= the 20 ms tick + 5 ms")


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
