"""Generation + JSON encoding throughput of the BME280 stream on one core.

Prints records/s for generation alone, JSON encoding alone, and both, for 1,000 devices in
backfill-sized batches (one hour of event time per call) and in live-sized batches (one
second). Target: generation + JSON >= 250,000 records/s.
"""

from __future__ import annotations

import time

import numpy as np

from producer.domains.bme280.kind import Bme280Settings
from producer.domains.bme280.model import Bme280Generator
from producer.encoding import encode_jsonl
from producer.generators import entity_keys
from producer.rates import FixedInterval
from producer.records import RecordBatch
from producer.timeline import HOUR_MS

T0 = 1_704_067_200_000
DEVICES = 1000


def measure(window_ms: int, total_ms: int) -> tuple[float, float, int]:
    ids = np.arange(DEVICES, dtype=np.int64)
    keys = entity_keys(1, "bme280", ids)
    gen = Bme280Generator(Bme280Settings(devices=DEVICES), ids, keys)
    rate = FixedInterval(ids, keys, 10_000)
    gen_s = 0.0
    json_s = 0.0
    count = 0
    for t in range(T0, T0 + total_ms, window_ms):
        started = time.perf_counter()
        batch: RecordBatch = gen.generate(rate.due(t, t + window_ms))
        middle = time.perf_counter()
        data = encode_jsonl(gen.schema, batch)
        gen_s += middle - started
        json_s += time.perf_counter() - middle
        count += len(batch)
        del data
    return gen_s, json_s, count


def main() -> None:
    print("bme280 generation + JSON encoding, 1,000 devices, one core")
    print(f"{'batch':>18} {'records':>10} {'gen rec/s':>12} {'json rec/s':>12} {'both rec/s':>12}")
    for label, window, total in (
        ("1 h (backfill)", HOUR_MS, 6 * HOUR_MS),
        ("1 s (live)", 1000, 600_000),
        ("10 ms (live)", 10, 120_000),
    ):
        gen_s, json_s, n = measure(window, total)
        print(
            f"{label:>18} {n:>10,} {n / gen_s:>12,.0f} {n / json_s:>12,.0f} "
            f"{n / (gen_s + json_s):>12,.0f}"
        )
    print("target: generation + JSON >= 250,000 records/s")


if __name__ == "__main__":
    main()
